"""docker-py (PyPI docker 7.x) against ``dockyard system service``."""

from __future__ import annotations

import io
from typing import Any
import tarfile

import pytest

from tests.api.conftest import Service, name
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(svc: Service):
    docker = pytest.importorskip("docker")
    c = docker.DockerClient(base_url=f"unix://{svc.sock}", version="1.45", timeout=60)
    yield c
    c.close()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for n, data in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_run_logs_exec_archive(client) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "echo started; sleep 300"], detach=True, name=name())
    try:
        wait_for(lambda: b"started" in c.logs(), 15, what="the log line")
        c.reload()
        assert c.status == "running"
        r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], stream=True, demux=True)
        outs, errs = b"", b""
        for o, e in r.output:
            outs += o or b""
            errs += e or b""
        assert (outs, errs) == (b"out\n", b"err\n")
        assert c.exec_run(["sh", "-c", "exit 4"]).exit_code == 4
        assert c.put_archive("/tmp", _tar({"hello.txt": b"hi there\n"}))
        bits, st = c.get_archive("/tmp/hello.txt")
        data = b"".join(bits)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            assert tf.extractfile("hello.txt").read() == b"hi there\n"
        assert st["name"] == "hello.txt" and st["size"] == 9
    finally:
        c.remove(force=True)


def test_volumes_networks_build(client) -> None:
    v = client.volumes.create(name(), labels={"a": "b"})
    assert v.name in [x.name for x in client.volumes.list(filters={"label": "a=b"})]
    v.remove()
    n = client.networks.create(name(), driver="bridge")
    assert client.networks.get(n.id).name == n.name
    n.remove()
    ctx = _tar({"Dockerfile": b"FROM busybox\nRUN echo built > /b\nCMD [\"cat\", \"/b\"]\n"})
    tag = name() + ":py"
    img, logs = client.images.build(fileobj=io.BytesIO(ctx), custom_context=True, tag=tag)
    assert tag in img.tags
    assert any("Successfully built" in x.get("stream", "") for x in logs)
    assert client.containers.run(tag, remove=True) == b"built\n"
    client.images.remove(tag)


def test_attach_socket(client) -> None:
    """``APIClient.attach_socket``: the hijacked connection carries stdin in and multiplexed stdout/stderr out."""
    from docker.utils.socket import frames_iter

    c = client.containers.run("busybox", ["sh", "-c", "while read l; do echo out:$l; echo err:$l >&2; done"],
                              detach=True, stdin_open=True, name=name())
    try:
        s = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        sock = getattr(s, "_sock", s)
        sock.settimeout(20)
        sock.sendall(b"ping\n")
        got: dict[int, bytes] = {1: b"", 2: b""}
        frames = frames_iter(s, tty=False)
        while b"out:ping\n" not in got[1] or b"err:ping\n" not in got[2]:
            stream, data = next(frames)
            got[stream] += data
        assert got == {1: b"out:ping\n", 2: b"err:ping\n"}, got
        sock.shutdown(1)  # stdin closed: the loop's read ends and the container exits
        assert c.wait(timeout=20)["StatusCode"] == 0
        s.close()
    finally:
        c.remove(force=True)


def test_wait_removed_by_another_client(client, svc: Service) -> None:
    """``wait?condition=removed`` ends when the container is removed, here by the dockyard CLI on the same root
    (the service learns it from the events log)."""
    import subprocess
    import threading
    import time

    from tests.conftest import DOCKYARD

    c = client.containers.create("busybox", ["true"], name=name())
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(client.api.wait(c.id, condition="removed", timeout=30)))
    t.start()
    try:
        c.start()
        c.wait(timeout=20)
        assert t.is_alive()  # exited, not removed
        t0 = time.monotonic()
        subprocess.run([DOCKYARD, "--root", str(svc.root), "rm", c.id], check=True, capture_output=True)
        t.join(20)
        assert not t.is_alive() and out[0]["StatusCode"] == 0, out
        assert time.monotonic() - t0 < 5
    finally:
        subprocess.run([DOCKYARD, "--root", str(svc.root), "rm", "-f", c.id], capture_output=True)
        t.join(1)
