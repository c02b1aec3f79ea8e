"""kill -9 in the middle of applying a layer leaves only a staging directory, which gc removes."""

import io
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from dockyard.snapshots.store import SnapshotStore
from dockyard.state.db import Store

pytestmark = pytest.mark.e2e

APPLY = (
    "import sys\n"
    "from dockyard.state.db import Store\n"
    "from dockyard.snapshots.store import SnapshotStore\n"
    "s = SnapshotStore(Store(root=sys.argv[1])).apply_layer(None, sys.stdin.buffer)\n"
    "print(s.chain_id)\n"
)


def big_tar(n: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(n):
            data = (b"%06d" % i) * 1000
            ti = tarfile.TarInfo(f"dir{i % 10}/file{i}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def staged_files(tmp: str) -> int:
    n = 0
    for name in os.listdir(tmp) if os.path.isdir(tmp) else []:
        if name.startswith("snap-"):
            for _, _, files in os.walk(os.path.join(tmp, name)):
                n += len(files)
    return n


def test_kill_9_during_apply(tmp_path):
    root = str(tmp_path / "root")
    ss = SnapshotStore(Store(root=root))
    data = big_tar(400)
    p = subprocess.Popen([sys.executable, "-c", APPLY, root], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert p.stdin is not None
        p.stdin.write(data[: len(data) // 2])  # half the layer, then the writer stalls
        p.stdin.flush()
        deadline = time.monotonic() + 30
        while staged_files(ss.store.tmp) < 50:
            assert p.poll() is None, p.stderr.read() if p.stderr else ""
            assert time.monotonic() < deadline, "the apply never started extracting"
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                try:
                    f.close()
                except BrokenPipeError:
                    pass

    # nothing visible: no row, no snapshot directory; only a staging dir
    assert ss.list() == []
    assert [n for n in os.listdir(ss.dir) if len(n) == 16] == []
    assert staged_files(ss.store.tmp) >= 50
    assert ss.gc(set()) == []
    assert [n for n in os.listdir(ss.store.tmp) if n.startswith("snap-")] == []
    with open("/proc/self/mountinfo") as f:  # an EROFS apply's staging tmpfs is unmounted too
        assert root not in f.read()
    # and the layer applies cleanly afterwards
    s = ss.apply_layer(None, io.BytesIO(data))
    with ss.mounted(s.chain_id):
        assert len(os.listdir(os.path.join(s.path, "dir3"))) == 40
