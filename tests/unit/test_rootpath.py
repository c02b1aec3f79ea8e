"""rootpath/fdtree: container paths resolved inside the root, with openat2 and with the fd-walking fallback."""

from __future__ import annotations

import os
import tarfile

import pytest

from dockyard import fdtree, rootpath


@pytest.fixture(params=["openat2", "walking"])
def mode(request, monkeypatch):
    if request.param == "walking":
        monkeypatch.setattr(rootpath, "_openat2_state", [None])
    return request.param


def _tree(tmp_path):
    root = tmp_path / "root"
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "inside").write_text("inside\n")
    (root / "abs").symlink_to(str(host))            # absolute: restarts at the root
    (root / "up").symlink_to("../../../../..")       # .. stops at the root
    (root / "etc" / "passwd").symlink_to("/etc/inside")
    (root / "loop").symlink_to("loop")
    return root, host


def test_open_in_root_never_leaves_the_root(tmp_path, mode) -> None:
    root, host = _tree(tmp_path)
    rfd = rootpath.open_root(str(root))
    try:
        assert rootpath.read_regular(rfd, "/etc/passwd") == b"inside\n"
        assert rootpath.read_regular(rfd, "/up/etc/inside") == b"inside\n"
        assert rootpath.read_regular(rfd, "/abs/secret") is None  # <root>/<host path>/secret does not exist
        with pytest.raises(OSError):
            os.close(rootpath.open_in_root(rfd, "/loop/x", os.O_RDONLY))
        with pytest.raises(FileNotFoundError):  # <root>/<host path> does not exist
            rootpath.open_in_root(rfd, "/abs/new", os.O_WRONLY | os.O_CREAT, 0o644)
        inside = root / str(host).lstrip("/")
        inside.mkdir(parents=True)
        os.close(rootpath.open_in_root(rfd, "/abs/new", os.O_WRONLY | os.O_CREAT, 0o644))
        assert (inside / "new").exists()
        assert rootpath.exists_in_root(rfd, "/up/abs/new", follow=True)
    finally:
        os.close(rfd)
    assert not (host / "new").exists()


def test_mkdir_all_and_read_regular_refuses_devices(tmp_path, mode) -> None:
    root, host = _tree(tmp_path)
    (root / "dev").mkdir()
    os.mknod(root / "dev" / "zero", 0o666 | 0o020000, os.makedev(1, 5))
    (root / "etc" / "group").symlink_to("/dev/zero")
    rfd = rootpath.open_root(str(root))
    try:
        fd = rootpath.mkdir_all(rfd, "/abs/a/b")
        os.close(fd)
        assert (root / str(host).lstrip("/") / "a" / "b").is_dir()
        assert not (host / "a").exists()
        with pytest.raises(rootpath.NotRegular):
            rootpath.read_regular(rfd, "/etc/group")
        (root / "big").write_bytes(b"x" * 2000)
        with pytest.raises(rootpath.NotRegular):
            rootpath.read_regular(rfd, "/big", max_size=1000)
    finally:
        os.close(rfd)


def test_walk_copy_and_tar_do_not_follow_links(tmp_path) -> None:
    root, host = _tree(tmp_path)
    (root / "d").mkdir()
    (root / "d" / "f").write_text("f")
    os.link(root / "d" / "f", root / "d" / "g")
    rfd = rootpath.open_root(str(root))
    try:
        rels = [e.rel for e in fdtree.walk(rfd)]
        assert "abs" in rels and not any(r.startswith("abs/") for r in rels)
        out = tmp_path / "out"
        out.mkdir()
        ofd = rootpath.open_root(str(out))
        with fdtree.Copier() as c:
            c.copy(rfd, "d", ofd, "d")
            c.copy(rfd, "abs", ofd, "abs")
        os.close(ofd)
        assert (out / "d" / "f").read_text() == "f"
        assert os.stat(out / "d" / "f").st_ino == os.stat(out / "d" / "g").st_ino
        assert os.readlink(out / "abs") == str(host)
        with tarfile.open(tmp_path / "t.tar", "w", format=tarfile.PAX_FORMAT) as tf:
            fdtree.add_to_tar(tf, rfd, ".", ".")
        with tarfile.open(tmp_path / "t.tar") as tf:
            names = tf.getnames()
            assert "d/f" in names and "abs" in names and not any("secret" in n for n in names)
            assert tf.getmember("d/g").islnk()
    finally:
        os.close(rfd)
