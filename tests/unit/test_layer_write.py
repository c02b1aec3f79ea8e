import hashlib
import io
import os
import tarfile

import pytest

from dockyard.snapshots.layer import write_layer


def make_tree(d) -> None:
    os.makedirs(d / "b" / "sub")
    os.makedirs(d / "a")
    (d / "a" / "file").write_bytes(b"hello\n")
    (d / "b" / "sub" / "x").write_bytes(bytes(range(256)) * 20)
    (d / "b" / "z").write_text("z")
    os.link(d / "a" / "file", d / "b" / "hard")
    os.symlink("../a/file", d / "b" / "link")
    os.chmod(d / "a" / "file", 0o4755)
    os.mkfifo(d / "fifo")
    for p in [d / "a" / "file", d / "b" / "sub" / "x", d / "b" / "z", d / "b", d / "a", d / "b" / "sub"]:
        os.utime(p, (1_600_000_000, 1_600_000_000))
    os.utime(d / "b" / "link", (1_600_000_000, 1_600_000_000), follow_symlinks=False)


def layer(d, **kw) -> tuple[bytes, str, int]:
    buf = io.BytesIO()
    diff_id, size = write_layer(str(d), buf, **kw)
    return buf.getvalue(), diff_id, size


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getmembers()


def test_digest_and_size_describe_the_bytes(tmp_path):
    make_tree(tmp_path)
    data, diff_id, size = layer(tmp_path)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert size == len(data) and size % 512 == 0


def test_same_tree_twice_gives_same_diff_id(tmp_path):
    t1, t2 = tmp_path / "one", tmp_path / "two"
    make_tree(t1)
    make_tree(t2)  # different inodes, ctimes, atimes; same content and mtimes
    os.utime(t1 / "fifo", (1_600_000_000, 1_600_000_000))
    os.utime(t2 / "fifo", (1_600_000_000, 1_600_000_000))
    d1, id1, _ = layer(t1)
    d2, id2, _ = layer(t2)
    assert d1 == d2 and id1 == id2
    assert layer(t1)[1] == id1  # and again


def test_entries_sorted_pax_numeric_owner_hardlink(tmp_path):
    make_tree(tmp_path)
    data, _, _ = layer(tmp_path)
    ms = members(data)
    names = [m.name for m in ms]
    assert names == ["a", "a/file", "b", "b/hard", "b/link", "b/sub", "b/sub/x", "b/z", "fifo"]
    assert all(m.uname == "" and m.gname == "" for m in ms)
    assert all(m.uid == os.getuid() and m.gid == os.getgid() for m in ms)
    by = {m.name: m for m in ms}
    assert by["a"].isdir() and by["a/file"].isreg() and by["a/file"].mode == 0o4755
    assert by["b/hard"].islnk() and by["b/hard"].linkname == "a/file" and by["b/hard"].size == 0
    assert by["b/link"].issym() and by["b/link"].linkname == "../a/file"
    assert by["fifo"].isfifo()
    assert by["a/file"].mtime == 1_600_000_000
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.extractfile("a/file").read() == b"hello\n"
    # PAX: a long name travels in a pax record, not a GNU longname header
    assert b"././@LongLink" not in data


def test_long_and_non_ascii_names_round_trip(tmp_path):
    long = "d" * 150
    (tmp_path / long).write_text("x")
    (tmp_path / "caf\u00e9").write_text("y")
    data, _, _ = layer(tmp_path)
    assert b"././@LongLink" not in data
    assert sorted(m.name for m in members(data)) == sorted(["caf\u00e9", long])


def test_epoch_clamps_newer_mtimes_only(tmp_path):
    (tmp_path / "old").write_text("o")
    (tmp_path / "new").write_text("n")
    os.utime(tmp_path / "old", (500, 500))
    os.utime(tmp_path / "new", (2_000_000_000, 2_000_000_000))
    data, _, _ = layer(tmp_path, epoch=1000)
    by = {m.name: m for m in members(data)}
    assert by["old"].mtime == 500 and by["new"].mtime == 1000


def test_user_xattrs_become_schily_records(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    try:
        os.setxattr(f, "user.bin", b"\x00\xff\x01")
        os.setxattr(f, "user.txt", b"hello")
    except OSError:
        pytest.skip("no user xattrs on this file system")
    data, _, _ = layer(tmp_path)
    (m,) = members(data)
    assert m.pax_headers["SCHILY.xattr.user.txt"] == "hello"
    raw = m.pax_headers["SCHILY.xattr.user.bin"].encode("utf-8", "surrogateescape")
    assert raw == b"\x00\xff\x01"


def test_empty_dir_gives_empty_layer(tmp_path):
    data, diff_id, size = layer(tmp_path)
    assert members(data) == [] and size == len(data)
