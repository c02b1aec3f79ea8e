"""docker-py (PyPI docker 7.x) against ``dockyard system service``."""

from __future__ import annotations

import io
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
