"""Copy-up keeps what an image directory holds: owners, modes, times, symlinks, hard links, fifos, device nodes and
extended attributes; and it copies only into an empty volume. Needs root (chown, mknod)."""

from __future__ import annotations

import os
import stat

import pytest

from dockyard.volumes.copyup import copy_up

pytestmark = pytest.mark.e2e


def test_copy_up_keeps_everything(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    (dst).mkdir()
    f = src / "d" / "f"
    f.write_bytes(b"x" * 100_000)
    os.chown(f, 1234, 567)
    os.chmod(f, 0o4750)
    os.utime(f, ns=(1_000_000_000, 2_000_000_000))
    os.link(f, src / "hard")
    os.symlink("/etc/passwd", src / "abs-link")  # copied as a link, never followed
    os.mkfifo(src / "fifo", 0o640)
    os.mknod(src / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.setxattr(f, "user.note", b"kept")
    os.chmod(src / "d", 0o705)
    os.chown(src, 42, 43)
    os.chmod(src, 0o750)
    assert copy_up(str(src), str(dst))
    g = dst / "d" / "f"
    st = os.lstat(g)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (1234, 567, 0o4750, 2_000_000_000)
    assert g.read_bytes() == b"x" * 100_000
    assert os.lstat(dst / "hard").st_ino == st.st_ino
    assert os.readlink(dst / "abs-link") == "/etc/passwd"
    assert stat.S_ISFIFO(os.lstat(dst / "fifo").st_mode)
    assert os.lstat(dst / "null").st_rdev == os.makedev(1, 3)
    assert os.getxattr(g, "user.note") == b"kept"
    assert stat.S_IMODE(os.lstat(dst / "d").st_mode) == 0o705
    root = os.lstat(dst)  # the volume's root takes the image directory's owner and mode
    assert (root.st_uid, root.st_gid, stat.S_IMODE(root.st_mode)) == (42, 43, 0o750)


def test_copy_up_only_into_an_empty_volume(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "a").write_text("image")
    (dst / "b").write_text("mine")
    assert not copy_up(str(src), str(dst))
    assert sorted(os.listdir(dst)) == ["b"]
    assert not copy_up(str(tmp_path / "missing"), str(dst))
    (tmp_path / "file").write_text("")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not copy_up(str(tmp_path / "file"), str(empty))  # only a directory is copied
