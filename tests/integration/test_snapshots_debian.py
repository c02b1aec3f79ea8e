"""A real distribution layer (debian:bookworm from debootstrap, ~120 MB, ~6.6k entries) through the snapshot store."""

import gzip
import io
import os
import stat
import tarfile

import pytest

from dockyard.snapshots.layer import write_layer
from dockyard.snapshots.store import SnapshotStore
from dockyard.state.db import Store

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


@pytest.mark.parametrize("backend", ["dir", "erofs"])
def test_debian_layer_applies_completely_and_round_trips(debian_tar, tmp_path, backend):
    from dockyard.snapshots.erofs import unavailable

    if backend == "erofs" and unavailable():
        pytest.skip(unavailable())
    ss = SnapshotStore(Store(root=str(tmp_path / "root")), backend=backend)
    with open(debian_tar, "rb") as f:
        s = ss.apply_layer(None, f)
    with ss.mounted(s.chain_id):
        _check(ss, s, debian_tar)
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()


def _check(ss, s, debian_tar):
    fs = s.path
    with tarfile.open(debian_tar) as tf:
        members = tf.getmembers()
    for m in members:
        p = os.path.join(fs, m.name.removeprefix("./").rstrip("/")) if m.name not in (".", "./") else fs
        st = os.lstat(p)
        if m.issym():
            assert os.readlink(p) == m.linkname, m.name
        elif m.isdir():
            assert stat.S_ISDIR(st.st_mode), m.name
        elif m.isreg():
            assert stat.S_ISREG(st.st_mode) and st.st_size == m.size, m.name
        if not m.islnk():
            assert (st.st_uid, st.st_gid) == (m.uid, m.gid), m.name
            if not m.issym():
                assert stat.S_IMODE(st.st_mode) == m.mode, m.name
                assert int(st.st_mtime) == m.mtime, m.name
    assert os.readlink(os.path.join(fs, "bin")) == "usr/bin"
    assert os.stat(os.path.join(fs, "usr/bin/passwd")).st_mode & stat.S_ISUID

    # our own layer of the unpacked tree is stable through another apply
    buf = io.BytesIO()
    diff_id, _ = write_layer(fs, buf)
    s2 = ss.apply_layer(None, io.BytesIO(gzip.compress(buf.getvalue(), compresslevel=1)),
                        expected_diff_id=diff_id)
    with ss.mounted(s2.chain_id):
        assert write_layer(s2.path, io.BytesIO())[0] == diff_id
