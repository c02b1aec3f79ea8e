"""Both snapshotters (unpacked directories and EROFS layer images) behind one interface, on the real kernel:
whiteouts and opaque dirs through overlayfs, a container diff round-tripping into a layer, root metadata, layer
mounts shared by containers and released when the last one goes, nothing left in /proc/mounts."""

import io
import os
import shutil
import stat
import struct

import pytest

from dockyard.engine.rootfs import mount_root, unmount_root
from dockyard.snapshots import erofs
from dockyard.snapshots.layer import write_layer
from dockyard.snapshots.snapshotter import Snapshotter
from dockyard.snapshots.store import SnapshotStore
from dockyard.state.db import Store

from test_snapshots_overlay import BASE, TOP, tree

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


@pytest.fixture(params=["dir", "erofs"])
def ss(request, tmp_path):
    if request.param == "erofs" and erofs.unavailable():
        pytest.skip(f"no EROFS here: {erofs.unavailable()}")
    s: Snapshotter = SnapshotStore(Store(root=str(tmp_path / "root")), backend=request.param)
    yield s
    for mp in mounts_under(str(tmp_path)):  # teardown even on failure
        os.system(f"umount -l '{mp}' 2>/dev/null")


def mounts_under(prefix: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix + "/")]


def test_stored_as_the_backend_says(ss):
    s1 = ss.apply_layer(None, io.BytesIO(BASE))
    files = sorted(os.listdir(os.path.dirname(s1.path)))
    assert files == (["fs", "layer.erofs"] if ss.backend == "erofs" else ["fs"])
    assert ss.get(s1.chain_id) == s1 and ss.top_of([s1.diff_id]) == s1.chain_id
    assert s1.size == len(b"base\n" + b"x" + b"#!" + b"a" + b"b" + b"usr/lib")


def test_container_root_merges_layers_and_shares_layer_mounts(ss, tmp_path):
    s1 = ss.apply_layer(None, io.BytesIO(BASE))
    s2 = ss.apply_layer(s1.chain_id, io.BytesIO(TOP))
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    root_a = mount_root(ss.store, s2.chain_id, a)
    root_b = mount_root(ss.store, s1.chain_id, b)
    try:
        assert tree(root_a) == {"etc": "dir", "etc/hostname": b"top\n", "bin": "dir", "bin/sh": b"#!",
                                "dir": "dir", "dir/c": b"c", "lib": ("link", "usr/lib")}
        assert tree(root_b)["etc/gone"] == b"x"
        layer_mounts = [m for m in mounts_under(ss.dir)]
        assert len(layer_mounts) == (2 if ss.backend == "erofs" else 0)  # s1's image mounted once for both
        unmount_root(a)
        # b still stacks s1: its layer stays; s2's is released
        assert mounts_under(ss.dir) == ([os.path.join(os.path.dirname(s1.path), "fs")]
                                        if ss.backend == "erofs" else [])
        assert tree(root_b)["dir/a"] == b"a"
    finally:
        unmount_root(a)
        unmount_root(b)
    assert mounts_under(str(tmp_path)) == []


def test_container_diff_round_trips_through_a_layer(ss, tmp_path):
    s1 = ss.apply_layer(None, io.BytesIO(BASE))
    s2 = ss.apply_layer(s1.chain_id, io.BytesIO(TOP))
    cdir = str(tmp_path / "c")
    rootfs = mount_root(ss.store, s2.chain_id, cdir)
    try:
        os.unlink(os.path.join(rootfs, "bin", "sh"))
        shutil.rmtree(os.path.join(rootfs, "etc"))
        os.makedirs(os.path.join(rootfs, "etc"))
        with open(os.path.join(rootfs, "etc", "new"), "w") as f:
            f.write("new")
        with open(os.path.join(rootfs, "dir", "c"), "a") as f:  # copy-up from a layer
            f.write("more")
        expected = tree(rootfs)
    finally:
        unmount_root(cdir)
    buf = io.BytesIO()
    diff_id, _ = write_layer(os.path.join(cdir, "diff"), buf)
    s3 = ss.apply_layer(s2.chain_id, io.BytesIO(buf.getvalue()), expected_diff_id=diff_id)
    with ss.mounted(s3.chain_id) as lowers:
        assert lowers[0] == s3.path
        wh = os.lstat(os.path.join(s3.path, "bin", "sh"))
        assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
        assert os.getxattr(os.path.join(s3.path, "etc"), "trusted.overlay.opaque") == b"y"
        assert write_layer(s3.path, io.BytesIO())[0] == diff_id
    assert mounts_under(ss.dir) == []
    cdir2 = str(tmp_path / "c2")
    try:
        assert tree(mount_root(ss.store, s3.chain_id, cdir2)) == expected
    finally:
        unmount_root(cdir2)
    assert mounts_under(str(tmp_path)) == []


def test_root_metadata_survives(ss, tmp_path):
    cap = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
    src = tmp_path / "src"
    (src / "usr" / "bin").mkdir(parents=True)
    (src / "tmp").mkdir()
    ping = src / "usr" / "bin" / "ping"
    ping.write_bytes(b"\x7fELF")
    os.setxattr(ping, "security.capability", cap)
    su = src / "usr" / "bin" / "su"
    su.write_bytes(b"\x7fELF")
    os.chown(su, 0, 42)
    os.chmod(su, 0o4755)
    os.chmod(src / "tmp", 0o1777)
    os.chown(src / "tmp", 1000, 1000)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.utime(src / "tmp", (1_400_000_000, 1_400_000_000))
    buf = io.BytesIO()
    diff_id, _ = write_layer(str(src), buf)
    s = ss.apply_layer(None, io.BytesIO(buf.getvalue()), expected_diff_id=diff_id)
    with ss.mounted(s.chain_id):
        fs = s.path
        assert os.getxattr(os.path.join(fs, "usr/bin/ping"), "security.capability") == cap
        st = os.stat(os.path.join(fs, "usr/bin/su"))
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o4755, 0, 42)
        st = os.stat(os.path.join(fs, "tmp"))
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime) == (0o1777, 1000, 1000, 1_400_000_000)
        assert os.lstat(os.path.join(fs, "null")).st_rdev == os.makedev(1, 3)
        assert write_layer(fs, io.BytesIO()) == (diff_id, len(buf.getvalue()))


def test_remove_and_gc_leave_nothing(ss, tmp_path):
    s1 = ss.apply_layer(None, io.BytesIO(BASE))
    s2 = ss.apply_layer(s1.chain_id, io.BytesIO(TOP))
    with ss.mounted(s2.chain_id):
        pass
    with ss.mounts_lock():
        ss.mount_layers(s1.chain_id)  # a layer mount left behind (a crash before release)
    assert ss.gc(keep={s1.chain_id}) == [s2.chain_id]
    ss.remove(s1.chain_id)
    assert ss.list() == []
    assert mounts_under(str(tmp_path)) == []
    assert [n for n in os.listdir(ss.dir) if len(n) == 16] == []
    assert not any(n.startswith("snap-") for n in os.listdir(ss.store.tmp))


def test_bad_layer_leaves_no_staging_and_no_mount(ss, tmp_path):
    good = BASE
    with pytest.raises(Exception):
        ss.apply_layer(None, io.BytesIO(good), expected_diff_id="sha256:" + "0" * 64)
    assert ss.list() == []
    assert mounts_under(str(tmp_path)) == []
    assert not any(n.startswith("snap-") for n in os.listdir(ss.store.tmp))
