"""SnapshotStore: applying layer tars, chain IDs, removal, gc, crash leftovers and rootfs mount plans."""

import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import threading

import pytest

from dockyard.errors import Conflict, CorruptContent, InvalidArgument, NotFound
from dockyard.ids import chain_ids
from dockyard.oci.mounts import Mount
from dockyard.snapshots.layer import write_layer
from dockyard.snapshots.store import SnapshotStore, rootfs_mounts
from dockyard.state.db import Store


def tar_of(entries: list[tuple], trailing: bytes = b"") -> bytes:
    """entries: (name, kind, arg) with kind 'f' (arg=bytes), 'd', 'l' (symlink, arg=target), 'h' (hardlink)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, *rest in entries:
            arg = rest[0] if rest else None
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_500_000_000
            if kind == "f":
                ti.size = len(arg)
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(arg))
                continue
            if kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
            tf.addfile(ti)
    return buf.getvalue() + trailing


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


@pytest.fixture
def ss(tmp_path):
    return SnapshotStore(Store(root=str(tmp_path / "root")), backend="dir")  # the extractor's semantics, on disk


def staging_dirs(ss):
    return [n for n in os.listdir(ss.store.tmp) if n.startswith(("snap-", "gc-"))]


L1 = tar_of([("etc", "d"), ("etc/hostname", "f", b"one\n"), ("bin", "d"), ("bin/sh", "f", b"#!sh")])
L2 = tar_of([("etc/hostname", "f", b"two\n"), ("etc/.wh.gone", "f", b"")])


def test_apply_base_layer(ss):
    s = ss.apply_layer(None, io.BytesIO(L1))
    assert s.diff_id == sha(L1) and s.chain_id == s.diff_id and s.parent is None
    assert s.size == 8
    assert s.path == os.path.join(ss.store.root, "snapshots", s.chain_id[7:23], "fs")
    with open(os.path.join(s.path, "etc", "hostname"), "rb") as f:
        assert f.read() == b"one\n"
    assert ss.get(s.chain_id) == s
    assert staging_dirs(ss) == []


def test_chain_ids_and_lowerdirs(ss):
    s1 = ss.apply_layer(None, io.BytesIO(L1))
    s2 = ss.apply_layer(s1.chain_id, io.BytesIO(L2), expected_diff_id=sha(L2))
    assert s2.chain_id == chain_ids([sha(L1), sha(L2)])[1]
    assert s2.parent == s1.chain_id
    assert ss.lowerdirs(s2.chain_id) == [s2.path, s1.path]
    assert ss.lowerdirs(None) == []
    with pytest.raises(NotFound):
        ss.lowerdirs(sha(b"nope"))


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress, "zstd"])
def test_compressed_layers_have_the_uncompressed_diff_id(ss, compress):
    if compress == "zstd":
        if not shutil.which("zstd"):
            pytest.skip("zstd not installed")
        blob = subprocess.run(["zstd", "-c", "-q"], input=L1, capture_output=True, check=True).stdout
    else:
        blob = compress(L1)
    s = ss.apply_layer(None, io.BytesIO(blob), expected_diff_id=sha(L1))
    assert s.diff_id == sha(L1)
    assert os.path.isfile(os.path.join(s.path, "bin", "sh"))


def test_trailing_bytes_after_end_of_archive_are_hashed(ss):
    blob = L1 + b"\0" * 10240
    s = ss.apply_layer(None, io.BytesIO(gzip.compress(blob)))
    assert s.diff_id == sha(blob)


def test_diff_id_mismatch_is_corrupt_and_leaves_nothing(ss):
    with pytest.raises(CorruptContent, match="diff_id"):
        ss.apply_layer(None, io.BytesIO(L1), expected_diff_id=sha(b"other"))
    assert ss.list() == [] and staging_dirs(ss) == []
    assert [n for n in os.listdir(ss.dir) if len(n) == 16] == []


def test_damaged_gzip_is_corrupt(ss):
    blob = gzip.compress(L1)
    with pytest.raises(CorruptContent):
        ss.apply_layer(None, io.BytesIO(blob[: len(blob) // 2]))
    assert ss.list() == [] and staging_dirs(ss) == []


def test_not_a_tar_is_corrupt(ss):
    with pytest.raises(CorruptContent):
        ss.apply_layer(None, io.BytesIO(b"this is not a tar archive at all" * 40))


class Exploding(io.RawIOBase):
    def read(self, n=-1):
        raise AssertionError("the stream must not be read")


def test_existing_snapshot_is_returned_without_reading(ss):
    s = ss.apply_layer(None, io.BytesIO(L1))
    assert ss.apply_layer(None, Exploding(), expected_diff_id=sha(L1)) == s


def test_applying_again_without_expected_id_is_idempotent(ss):
    s = ss.apply_layer(None, io.BytesIO(L1))
    assert ss.apply_layer(None, io.BytesIO(L1)) == s
    assert len(ss.list()) == 1 and staging_dirs(ss) == []


def test_unknown_parent(ss):
    with pytest.raises(NotFound, match="snapshot"):
        ss.apply_layer(sha(b"x"), io.BytesIO(L2))


def test_remove_refuses_parent_and_allows_leaf(ss):
    s1 = ss.apply_layer(None, io.BytesIO(L1))
    s2 = ss.apply_layer(s1.chain_id, io.BytesIO(L2))
    with pytest.raises(Conflict):
        ss.remove(s1.chain_id)
    ss.remove(s2.chain_id)
    assert ss.get(s2.chain_id) is None and not os.path.exists(s2.path)
    ss.remove(s1.chain_id)
    ss.remove(s1.chain_id)  # missing is fine
    assert ss.list() == [] and staging_dirs(ss) == []


def test_gc_keeps_kept_and_their_parents(ss):
    s1 = ss.apply_layer(None, io.BytesIO(L1))
    s2 = ss.apply_layer(s1.chain_id, io.BytesIO(L2))
    other = ss.apply_layer(None, io.BytesIO(L2))
    assert ss.gc({s2.chain_id}) == [other.chain_id]
    assert {s.chain_id for s in ss.list()} == {s1.chain_id, s2.chain_id}
    assert os.path.isdir(s1.path) and not os.path.exists(other.path)
    assert sorted(ss.gc(set())) == sorted([s1.chain_id, s2.chain_id])
    assert ss.list() == [] and staging_dirs(ss) == []


def test_gc_removes_crash_leftovers(ss):
    s1 = ss.apply_layer(None, io.BytesIO(L1))
    # a staging dir of a killed apply, and a renamed-but-uncommitted snapshot dir
    os.makedirs(os.path.join(ss.store.tmp, "snap-dead", "fs", "etc"))
    os.makedirs(os.path.join(ss.dir, "0123456789abcdef", "fs"))
    ss.empty_dir()
    assert ss.gc({s1.chain_id}) == []
    assert staging_dirs(ss) == []
    assert not os.path.exists(os.path.join(ss.dir, "0123456789abcdef"))
    assert os.path.isdir(s1.path) and os.path.isdir(ss.empty_dir())


def test_uncommitted_dir_is_reused_by_a_later_apply(ss):
    """kill -9 between rename and commit: the complete dir exists without a row; applying again records it."""
    s = ss.apply_layer(None, io.BytesIO(L1))
    with ss.store.write() as cur:
        cur.execute("DELETE FROM snapshots")
    assert ss.apply_layer(None, io.BytesIO(L1)) == s
    assert staging_dirs(ss) == []


def test_concurrent_apply_in_threads(ss):
    results: list[object] = []
    barrier = threading.Barrier(3)

    def run():
        barrier.wait(timeout=10)
        try:
            results.append(ss.apply_layer(None, io.BytesIO(L1)))
        except Exception as e:  # pragma: no cover - shown by the assert
            results.append(e)

    ts = [threading.Thread(target=run) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert len(results) == 3 and all(r == results[0] for r in results), results
    assert len(ss.list()) == 1 and staging_dirs(ss) == []


def test_concurrent_apply_in_processes(ss, tmp_path):
    blob = tmp_path / "layer.tar.gz"
    big = tar_of([(f"d/f{i}", "f", os.urandom(2000)) for i in range(300)])
    blob.write_bytes(gzip.compress(big))
    code = (
        "import sys\n"
        "from dockyard.state.db import Store\n"
        "from dockyard.snapshots.store import SnapshotStore\n"
        "s = SnapshotStore(Store(root=sys.argv[1]), backend='dir').apply_layer(None, open(sys.argv[2], 'rb'))\n"
        "print(s.chain_id)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, ss.store.root, str(blob)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    assert {o[0].strip() for o in outs} == {sha(big)}
    assert len(ss.list()) == 1 and staging_dirs(ss) == []
    assert len(os.listdir(os.path.join(ss.get(sha(big)).path, "d"))) == 300


def test_write_then_apply_round_trip(ss, tmp_path):
    src = tmp_path / "src"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "dir" / "f").write_bytes(b"data" * 1000)
    os.link(src / "dir" / "f", src / "dir" / "sub" / "hard")
    os.symlink("/dir/f", src / "abs-link")
    os.chmod(src / "dir" / "f", 0o640)
    os.utime(src / "dir", (1_234_567_890, 1_234_567_890))
    buf = io.BytesIO()
    diff_id, _ = write_layer(str(src), buf)
    s = ss.apply_layer(None, io.BytesIO(buf.getvalue()), expected_diff_id=diff_id)
    fs = s.path
    st = os.stat(os.path.join(fs, "dir", "f"))
    assert st.st_mode & 0o7777 == 0o640 and st.st_nlink == 2
    assert os.stat(os.path.join(fs, "dir", "sub", "hard")).st_ino == st.st_ino
    assert os.readlink(os.path.join(fs, "abs-link")) == "/dir/f"
    assert int(os.stat(os.path.join(fs, "dir")).st_mtime) == 1_234_567_890
    # and writing the applied snapshot again yields the same layer
    assert write_layer(fs, io.BytesIO()) == (diff_id, len(buf.getvalue()))


# -- mount plans ---------------------------------------------------------------------------------------------


def test_rootfs_mounts_rw_overlay():
    (m,) = rootfs_mounts(["/s/top", "/s/bottom"], "/c/upper", "/c/work", "/c/rootfs")
    assert m.type == "overlay" and m.source == "overlay" and m.target == "/c/rootfs"
    assert m.options[:3] == ("lowerdir=/s/top:/s/bottom", "upperdir=/c/upper", "workdir=/c/work")
    assert "index=off" in m.options
    assert m.to_oci() == {"destination": "/c/rootfs", "type": "overlay", "source": "overlay",
                          "options": list(m.options)}
    assert Mount.from_oci(m.to_oci()) == m


def test_rootfs_mounts_scratch_uses_empty_dir(tmp_path):
    (m,) = rootfs_mounts([], "/c/upper", "/c/work", "/c/rootfs", empty_dir="/s/empty")
    assert m.options[0] == "lowerdir=/s/empty"
    (m,) = rootfs_mounts([], str(tmp_path / "upper"), str(tmp_path / "work"), "/c/rootfs")
    assert m.options[0] == f"lowerdir={tmp_path}/empty" and os.path.isdir(tmp_path / "empty")


def test_rootfs_mounts_read_only():
    (m,) = rootfs_mounts(["/s/top", "/s/bottom"], None, None, "/r")
    assert m.type == "overlay" and "ro" in m.options and "lowerdir=/s/top:/s/bottom" in m.options
    assert not any(o.startswith(("upperdir=", "workdir=")) for o in m.options)
    (m,) = rootfs_mounts(["/s/only"], None, None, "/r")
    assert m == Mount("bind", "/s/only", "/r", ("rbind", "ro")) and m.readonly
    (m,) = rootfs_mounts([], None, None, "/r", empty_dir="/s/empty")
    assert m.type == "bind" and m.source == "/s/empty"


def test_rootfs_mounts_errors():
    with pytest.raises(InvalidArgument):
        rootfs_mounts(["/a"], "/u", None, "/t")
    with pytest.raises(InvalidArgument):
        rootfs_mounts(["/a:b"], "/u", "/w", "/t")
    with pytest.raises(InvalidArgument, match="too many layers"):
        rootfs_mounts([f"/var/lib/dockyard/snapshots/{i:016x}/fs" for i in range(200)], "/u", "/w", "/t")


def test_store_rootfs_mounts_for_scratch(ss):
    (m,) = ss.rootfs_mounts(None, "/c/upper", "/c/work", "/c/rootfs")
    assert m.options[0] == "lowerdir=" + ss.empty_dir()


# -- odd but valid archives ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\0" * 1024, tar_of([])])
def test_empty_layers(ss, data):
    s = ss.apply_layer(None, io.BytesIO(data))
    assert s.diff_id == sha(data) and s.size == 0 and os.listdir(s.path) == []


def test_docker_empty_layer_diff_id(ss):
    # the well-known diff_id of Docker's empty layer (1024 zero bytes)
    s = ss.apply_layer(None, io.BytesIO(b"\0" * 1024))
    assert s.diff_id == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def test_entries_replacing_directories(ss):
    data = tar_of([("a", "d"), ("a/b", "d"), ("a/b/x", "f", b"x"), ("a/b", "f", b"now a file"),
                   ("t", "d"), ("t/f", "f", b"target"), ("d", "d"), ("d/y", "f", b"y"), ("d", "h", "t/f"),
                   ("a/c", "f", b"c")])
    s = ss.apply_layer(None, io.BytesIO(data))
    with open(os.path.join(s.path, "a", "b"), "rb") as f:
        assert f.read() == b"now a file"
    assert os.stat(os.path.join(s.path, "d")).st_ino == os.stat(os.path.join(s.path, "t", "f")).st_ino
    assert os.path.isfile(os.path.join(s.path, "a", "c"))


def test_duplicate_entries_last_wins(ss):
    data = tar_of([("f", "f", b"one"), ("f", "f", b"two"), ("d", "d"), ("d", "d"), ("d/x", "f", b"x")])
    s = ss.apply_layer(None, io.BytesIO(data))
    with open(os.path.join(s.path, "f"), "rb") as f:
        assert f.read() == b"two"
    assert os.listdir(os.path.join(s.path, "d")) == ["x"]


def test_many_directories_exceed_the_fd_cache(ss):
    entries = []
    for i in range(300):
        entries += [(f"d{i}", "d"), (f"d{i}/sub", "d")]
    for i in range(300):
        entries.append((f"d{i}/sub/f", "f", b"%d" % i))
    s = ss.apply_layer(None, io.BytesIO(tar_of(entries)))
    with open(os.path.join(s.path, "d123", "sub", "f"), "rb") as f:
        assert f.read() == b"123"
    assert int(os.stat(os.path.join(s.path, "d7", "sub")).st_mtime) == 1_500_000_000


def test_modes_do_not_depend_on_the_umask(ss):
    old = os.umask(0o077)
    try:
        s = ss.apply_layer(None, io.BytesIO(tar_of([("implicit/parent/f", "f", b"x")])))
    finally:
        os.umask(old)
    assert os.stat(s.path).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(s.path, "implicit", "parent")).st_mode & 0o777 == 0o755
    assert os.stat(os.path.join(s.path, "implicit", "parent", "f")).st_mode & 0o777 == 0o644
