"""Snapshots stacked by the real overlayfs: whiteouts, opaque dirs, container diffs and root-only metadata."""

import io
import os
import shutil
import stat
import struct
import subprocess
import tarfile

import pytest

from dockyard.oci.mounts import Mount
from dockyard.snapshots.layer import write_layer
from dockyard.snapshots.store import SnapshotStore, rootfs_mounts
from dockyard.state.db import Store

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def tar_of(*entries: tuple) -> bytes:
    """(name, 'f', data) | (name, 'd') | (name, 'l', target), mtime fixed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, *rest in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_500_000_000
            if kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, rest[0]
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(rest[0]), 0o644
                tf.addfile(ti, io.BytesIO(rest[0]))
    return buf.getvalue()


class Mounter:
    def __init__(self) -> None:
        self.targets: list[str] = []

    def mount(self, mounts: list[Mount]) -> None:
        for m in mounts:
            os.makedirs(m.target, exist_ok=True)
            if m.type == "bind":
                subprocess.run(["mount", "--rbind", m.source, m.target], check=True)
                self.targets.append(m.target)
                if "ro" in m.options:
                    subprocess.run(["mount", "-o", "remount,bind,ro", m.target], check=True)
            else:
                subprocess.run(["mount", "-t", m.type, "-o", ",".join(m.options), m.source, m.target],
                               check=True)
                self.targets.append(m.target)

    def umount(self, target: str) -> None:
        subprocess.run(["umount", target], check=True)
        self.targets.remove(target)

    def cleanup(self) -> None:
        for t in reversed(self.targets):
            subprocess.run(["umount", "-l", t], check=False)
        self.targets.clear()


@pytest.fixture
def mounter():
    m = Mounter()
    yield m
    m.cleanup()


@pytest.fixture
def ss(tmp_path):
    return SnapshotStore(Store(root=str(tmp_path / "root")), backend="dir")  # the unpacked format itself


def container_dirs(tmp_path, name="c"):
    base = tmp_path / name
    for d in ("upper", "work", "rootfs"):
        (base / d).mkdir(parents=True)
    return str(base / "upper"), str(base / "work"), str(base / "rootfs")


def tree(top: str) -> dict[str, object]:
    """What a container sees: path -> file content / symlink target / 'dir'."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, top)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out


BASE = tar_of(("etc", "d"), ("etc/hostname", "f", b"base\n"), ("etc/gone", "f", b"x"), ("bin", "d"),
              ("bin/sh", "f", b"#!"), ("dir", "d"), ("dir/a", "f", b"a"), ("dir/b", "f", b"b"),
              ("lib", "l", "usr/lib"))
TOP = tar_of(("etc", "d"), ("etc/hostname", "f", b"top\n"), ("etc/.wh.gone", "f", b""), ("dir", "d"),
             ("dir/.wh..wh..opq", "f", b""), ("dir/c", "f", b"c"))


def test_two_layers_merged_with_whiteout_and_opaque_dir(ss, tmp_path, mounter):
    s1 = ss.apply_layer(None, io.BytesIO(BASE))
    s2 = ss.apply_layer(s1.chain_id, io.BytesIO(TOP))
    gone = os.lstat(os.path.join(s2.path, "etc", "gone"))
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(os.path.join(s2.path, "dir"), "trusted.overlay.opaque") == b"y"

    upper, work, rootfs = container_dirs(tmp_path)
    mounter.mount(rootfs_mounts(ss.lowerdirs(s2.chain_id), upper, work, rootfs))
    assert tree(rootfs) == {"etc": "dir", "etc/hostname": b"top\n", "bin": "dir", "bin/sh": b"#!",
                            "dir": "dir", "dir/c": b"c", "lib": ("link", "usr/lib")}


def test_container_diff_round_trips_through_a_layer(ss, tmp_path, mounter):
    s1 = ss.apply_layer(None, io.BytesIO(BASE))
    s2 = ss.apply_layer(s1.chain_id, io.BytesIO(TOP))
    upper, work, rootfs = container_dirs(tmp_path)
    mounter.mount(rootfs_mounts(ss.lowerdirs(s2.chain_id), upper, work, rootfs))
    # what a container might do
    os.unlink(os.path.join(rootfs, "bin", "sh"))                       # whiteout of a lower file
    shutil.rmtree(os.path.join(rootfs, "etc"))                           # whiteout of a lower dir
    os.makedirs(os.path.join(rootfs, "etc"))                             # ... recreated: opaque
    with open(os.path.join(rootfs, "etc", "new"), "w") as f:
        f.write("new")
    with open(os.path.join(rootfs, "dir", "c"), "a") as f:                # copy-up of a changed file
        f.write("more")
    os.symlink("/etc/new", os.path.join(rootfs, "link-to-new"))
    expected = tree(rootfs)
    mounter.umount(rootfs)

    buf = io.BytesIO()
    diff_id, _ = write_layer(upper, buf)
    names = {m.name for m in tarfile.open(fileobj=io.BytesIO(buf.getvalue()))}
    assert {"bin/.wh.sh", "etc/.wh..wh..opq", "etc/new", "dir/c", "link-to-new"} <= names
    assert not any("trusted.overlay" in k for m in tarfile.open(fileobj=io.BytesIO(buf.getvalue()))
                   for k in m.pax_headers)

    s3 = ss.apply_layer(s2.chain_id, io.BytesIO(buf.getvalue()), expected_diff_id=diff_id)
    # the applied layer carries the same overlay markers the upper dir had
    wh = os.lstat(os.path.join(s3.path, "bin", "sh"))
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(os.path.join(s3.path, "etc"), "trusted.overlay.opaque") == b"y"
    assert write_layer(s3.path, io.BytesIO())[0] == diff_id

    # read-only overlay of the three layers shows exactly what the container saw
    ro = str(tmp_path / "ro")
    mounter.mount(rootfs_mounts(ss.lowerdirs(s3.chain_id), None, None, ro))
    assert tree(ro) == expected
    with pytest.raises(OSError):
        open(os.path.join(ro, "etc", "new"), "w")


def test_scratch_container_on_the_empty_dir(ss, tmp_path, mounter):
    upper, work, rootfs = container_dirs(tmp_path)
    mounter.mount(ss.rootfs_mounts(None, upper, work, rootfs))
    assert os.listdir(rootfs) == []
    with open(os.path.join(rootfs, "hello"), "w") as f:
        f.write("hi")
    assert os.path.isfile(os.path.join(upper, "hello"))
    assert os.listdir(ss.empty_dir()) == []


def test_single_layer_read_only_is_a_bind(ss, tmp_path, mounter):
    s1 = ss.apply_layer(None, io.BytesIO(BASE))
    target = str(tmp_path / "ro")
    mounts = rootfs_mounts(ss.lowerdirs(s1.chain_id), None, None, target)
    assert [m.type for m in mounts] == ["bind"]
    mounter.mount(mounts)
    assert tree(target)["etc/gone"] == b"x"
    with pytest.raises(OSError):
        open(os.path.join(target, "new"), "w")


def test_root_metadata_survives_apply_and_write(ss, tmp_path):
    cap = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)  # cap_net_raw+ep
    src = tmp_path / "src"
    (src / "tmp").mkdir(parents=True)
    (src / "usr" / "bin").mkdir(parents=True)
    ping = src / "usr" / "bin" / "ping"
    ping.write_bytes(b"\x7fELF")
    os.chown(ping, 0, 0)
    os.setxattr(ping, "security.capability", cap)
    su = src / "usr" / "bin" / "su"
    su.write_bytes(b"\x7fELF")
    os.chown(su, 0, 42)
    os.chmod(su, 0o4755)
    os.chmod(src / "tmp", 0o1777)
    os.chown(src / "tmp", 1000, 1000)
    os.symlink("su", src / "usr" / "bin" / "su-link")
    os.chown(src / "usr" / "bin" / "su-link", 7, 8, follow_symlinks=False)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    for p in (ping, su, src / "tmp", src / "usr" / "bin", src / "usr"):
        os.utime(p, (1_400_000_000, 1_400_000_000))

    buf = io.BytesIO()
    diff_id, _ = write_layer(str(src), buf)
    s = ss.apply_layer(None, io.BytesIO(buf.getvalue()), expected_diff_id=diff_id)
    fs = s.path
    assert os.getxattr(os.path.join(fs, "usr/bin/ping"), "security.capability") == cap
    st = os.stat(os.path.join(fs, "usr/bin/su"))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o4755, 0, 42)
    st = os.stat(os.path.join(fs, "tmp"))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime) == (0o1777, 1000, 1000, 1_400_000_000)
    st = os.lstat(os.path.join(fs, "usr/bin/su-link"))
    assert (st.st_uid, st.st_gid) == (7, 8)
    assert int(os.stat(os.path.join(fs, "usr/bin")).st_mtime) == 1_400_000_000
    st = os.lstat(os.path.join(fs, "null"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert write_layer(fs, io.BytesIO()) == (diff_id, len(buf.getvalue()))


def test_whiteout_keeps_owner_and_mtime(ss):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("d/.wh.x")
        ti.uid, ti.gid, ti.mtime, ti.mode = 5, 6, 1_300_000_000, 0o600
        tf.addfile(ti)
    s = ss.apply_layer(None, io.BytesIO(buf.getvalue()))
    st = os.lstat(os.path.join(s.path, "d", "x"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert (st.st_uid, st.st_gid, st.st_mtime) == (5, 6, 1_300_000_000)
    out = io.BytesIO()
    write_layer(s.path, out)
    m = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(out.getvalue()))}["d/.wh.x"]
    assert (m.uid, m.gid, m.mtime, m.mode, m.size) == (5, 6, 1_300_000_000, 0o600, 0)
