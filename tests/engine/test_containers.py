"""The engine's container verbs called directly (real store, real containers): what both edges, the CLI and
the API, are built on. Containers are made with the engine itself; the `root` fixture removes them."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def store(root, busybox):
    from dockyard.state.db import Store

    s = Store(str(root))
    yield s
    s.close()


def _spec(*cmd: str, **kw):
    from dockyard.engine.options import ContainerSpec

    return ContainerSpec(image="busybox", cmd=list(cmd) or None, network_mode=kw.pop("network_mode", "none"), **kw)


def _run(store, name: str, *cmd: str, **kw):
    """Create and start as a long-running caller does (the API service): the monitor is started by a fresh
    process (engine.spawn), never forked from this one (pytest may hold threads and many descriptors)."""
    from dockyard.engine import local
    from dockyard.engine.spawn import ProcessSpawner

    c = local.create(store, _spec(*cmd, **kw), name)
    local.start(store, c, spawner=ProcessSpawner(store.root))
    return c


def _wait_exited(store, ref: str) -> None:
    from dockyard.engine import local

    wait_for(lambda: not local.resolve(store, ref).running, what=f"{ref} to exit")


def test_create_applies_runs_checks_for_every_edge(store):
    from dockyard.engine import local
    from dockyard.engine.options import Resources, RestartPolicy
    from dockyard.errors import InvalidArgument, NotFound

    with pytest.raises(InvalidArgument, match="Conflicting options: --restart and --rm"):
        local.create(store, _spec("true", auto_remove=True, restart=RestartPolicy(name="always")))
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        local.create(store, _spec("true", resources=Resources(memory=1024)))
    with pytest.raises(InvalidArgument, match="always set the Memory limit"):
        local.create(store, _spec("true", resources=Resources(memory_swap=1 << 30)))
    with pytest.raises(InvalidArgument, match="needs to be an absolute path"):
        local.create(store, _spec("true", workdir="rel"))
    with pytest.raises(NotFound, match="network nosuchnet not found"):
        local.create(store, _spec("true", network_mode="nosuchnet"))
    from dockyard.engine.filters import list_containers

    assert list_containers(store, all=True) == []  # nothing was recorded


def test_list_filters(store):
    from dockyard.engine import local
    from dockyard.engine.filters import list_containers
    from dockyard.errors import InvalidArgument, NotFound

    a = _run(store, "web1", "sleep", "60", labels={"tier": "web"})
    b = _run(store, "job1", "sh", "-c", "exit 3")
    _wait_exited(store, "job1")
    c = local.create(store, _spec("true"), "new1")

    def names(**kw):
        return [r.name for r in list_containers(store, **kw)]

    assert names() == ["web1"]
    assert names(all=True) == ["new1", "job1", "web1"]
    assert names(filters=[("status", "exited")]) == ["job1"]
    assert names(filters=[("exited", "3")]) == ["job1"]
    assert names(all=True, filters=[("label", "tier=web")]) == ["web1"]
    assert names(all=True, filters=[("name", "^/job")]) == ["job1"]
    assert names(all=True, filters=[("id", c.id[:10])]) == ["new1"]
    assert names(all=True, filters=[("before", "new1")]) == ["job1", "web1"]
    assert names(all=True, filters=[("since", "web1")]) == ["new1", "job1"]
    assert names(all=True, filters=[("ancestor", "busybox")]) == ["new1", "job1", "web1"]
    assert names(all=True, filters=[("network", "none")]) == ["new1", "job1", "web1"]
    assert names(all=True, filters=[("status", "running"), ("status", "created")]) == ["new1", "web1"]
    row = list_containers(store, filters=[("name", "web1")], size=True)[0]
    assert row.id == a.id and row.command == ["sleep", "60"] and row.state == "running"
    assert row.size_rw is not None and row.size_root_fs >= row.size_rw
    with pytest.raises(InvalidArgument, match="invalid filter 'bogus'"):
        list_containers(store, filters=[("bogus", "1")])
    with pytest.raises(InvalidArgument, match="invalid filter 'status=nope'"):
        list_containers(store, filters=[("status", "nope")])
    with pytest.raises(NotFound):
        list_containers(store, filters=[("before", "nosuch")])
    assert b.id != a.id


def test_inspect_data_is_dockers_shape(store):
    from dockyard.engine.view import inspect
    from dockyard.errors import NotFound

    c = _run(store, "insp", "sleep", "60", labels={"k": "v"})
    d = inspect(store, "insp", size=True)
    assert d["Id"] == c.id and d["Name"] == "/insp" and d["State"]["Running"] is True
    assert d["State"]["Pid"] > 0 and d["Config"]["Labels"]["k"] == "v" and d["Config"]["Cmd"] == ["sleep", "60"]
    assert d["HostConfig"]["NetworkMode"] == "none" and "SizeRw" in d and d["ExecIDs"] is None
    with pytest.raises(NotFound, match="No such container: nosuch"):
        inspect(store, "nosuch")


def test_logs_iterator_stream_tail_since_and_follow(store):
    from dockyard.engine.logs import logs

    _run(store, "talker", "sh", "-c", "echo out1; echo err1 >&2; echo out2; sleep 0.3; echo late")
    entries = list(logs(store, "talker", follow=True))  # follow ends when the container has stopped
    # stdout and stderr are two pipes: their relative order is not kept, the order within each is
    assert [e.data for e in entries if e.stream == "stdout"] == [b"out1\n", b"out2\n", b"late\n"]
    assert [e.data for e in entries if e.stream == "stderr"] == [b"err1\n"]
    assert [e.data for e in logs(store, "talker", tail=1)] == [b"late\n"]
    assert list(logs(store, "talker", since=entries[-1].ts + 1 if entries[-1].ts else 4e9)) == []
    assert entries[0].time.endswith("Z")


def test_archive_put_get_stat_and_changes(store):
    from dockyard.engine import archive
    from dockyard.errors import NotFound

    _run(store, "files", "sleep", "60")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"hello engine\n"
        ti = tarfile.TarInfo("greeting")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    archive.archive_put(store, "files", "/tmp", buf)
    st = archive.archive_stat(store, "files", "/tmp/greeting")
    assert st.name == "greeting" and st.size == 13 and st.mode & 0o777 == 0o644
    out = io.BytesIO()
    archive.archive_get(store, "files", "/tmp/greeting", out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        assert tf.extractfile("greeting").read() == b"hello engine\n"
    kinds = {ch.path: ch.letter for ch in archive.changes(store, "files")}
    assert kinds.get("/tmp/greeting") == "A" and kinds.get("/tmp") == "C"
    with pytest.raises(NotFound, match="Could not find the file /nope in container files"):
        archive.archive_get(store, "files", "/nope", io.BytesIO())


def test_exec_create_start_inspect(store):
    from dockyard.engine import exec as ex
    from dockyard.errors import Conflict, NotFound

    c = _run(store, "execd", "sleep", "60")
    rec = ex.exec_create(store, "execd", ["sh", "-c", "echo $FOO; exit 4"], env=["FOO=bar"])
    r, w = os.pipe()
    pid = ex.exec_start(store, rec.id, stdout=w)
    os.close(w)
    assert ex.exec_inspect(store, rec.id).running
    status = ex.wait_exit(pid)
    ex.exec_finished(store, rec.id, status)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"bar\n"
    done = ex.exec_inspect(store, rec.id)
    assert not done.running and done.exit_code == 4 and done.container_id == c.id
    from dockyard.engine.view import inspect

    assert inspect(store, "execd")["ExecIDs"] == [rec.id]
    with pytest.raises(Conflict, match="has already run"):
        ex.exec_start(store, rec.id)
    with pytest.raises(NotFound, match="No such exec instance"):
        ex.exec_inspect(store, "0" * 64)
    stopped = _run(store, "stopped", "true")
    _wait_exited(store, "stopped")
    with pytest.raises(Conflict, match="is not running"):
        ex.exec_create(store, stopped.id, ["true"])


def test_exec_right_after_start_waits_for_the_monitor_to_start_it(store):
    """The store says running once the container is created; its monitor starts it an instant later (for an
    attached run, once the attach asks). An exec in between waits for the start instead of failing."""
    import threading

    from dockyard.engine import attach as proto
    from dockyard.engine import exec as ex
    from dockyard.engine import local
    from dockyard.engine.spawn import ProcessSpawner

    c = local.create(store, _spec("sleep", "60"), "held")
    local.start(store, c, wait_attach=True, spawner=ProcessSpawner(store.root))  # created, held for its attach
    rec = ex.exec_create(store, "held", ["echo", "in"])
    r, w = os.pipe()
    got: list = []
    t = threading.Thread(target=lambda: got.append(_try(ex.exec_start, store, rec.id, stdout=w)))
    t.start()
    t.join(0.3)
    assert t.is_alive() and not got  # waiting, not failed
    sock = proto.connect(c.id, timeout=5)
    assert sock is not None
    try:
        sock.sendall(b"{}\n" + proto.frame(proto.START))
        t.join(10)
    finally:
        sock.close()
    os.close(w)
    assert got and isinstance(got[0], int), got
    assert ex.wait_exit(got[0]) == 0
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"in\n"


def _try(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except Exception as e:  # noqa: BLE001 - the test reports what the thread raised
        return e


def test_remove_of_several_goes_on_past_a_failure(store):
    from dockyard.engine import local
    from dockyard.errors import Conflict, NotFound

    _run(store, "busy", "sleep", "60")
    local.create(store, _spec("true"), "idle1")
    local.create(store, _spec("true"), "idle2")
    out = list(local.remove_many(store, ["idle1", "busy", "nosuch", "idle2"]))
    assert [o.ref for o in out] == ["idle1", "busy", "nosuch", "idle2"]
    assert out[0].error is None and out[3].error is None
    assert isinstance(out[1].error, Conflict) and "container is running" in str(out[1].error)
    assert isinstance(out[2].error, NotFound)
    from dockyard.engine.filters import list_containers

    assert [r.name for r in list_containers(store, all=True)] == ["busy"]
    forced = list(local.remove_many(store, ["busy"], force=True))
    assert forced[0].error is None and list_containers(store, all=True) == []


def test_prune_with_filters_reports_what_it_removed(store):
    from dockyard.engine import local

    keep = local.create(store, _spec("true", labels={"keep": "1"}), "keepme")
    gone = local.create(store, _spec("true"), "goner")
    report = local.prune(store, [("label!", "keep")])
    assert report.deleted == [gone.id]
    assert local.resolve(store, "keepme").id == keep.id


def test_start_failure_keeps_its_error_type_across_the_monitor(store, dy):
    """The monitor reports a start failure with its class: a missing image is a NotFound, not a bare error."""
    import sqlite3

    from dockyard.engine import local

    c = local.create(store, _spec("true"), "orphan")
    # the image goes while the container stays (as rmi -f of an image a stopped container uses)
    with sqlite3.connect(os.path.join(store.root, "dockyard.db")) as db:
        db.execute("UPDATE containers SET image_id=? WHERE id=?", ("sha256:" + "0" * 64, c.id))
    # a fresh process, as an edge is: the monitor is forked from it
    import subprocess
    import sys

    code = ("import sys; from dockyard.state.db import Store; from dockyard.engine import local\n"
            "s = Store(sys.argv[1])\ntry:\n    local.start(s, local.resolve(s, 'orphan'))\n"
            "except Exception as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code, store.root], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("NotFound No such image"), out
