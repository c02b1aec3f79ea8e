"""Layers stored as an EROFS index over their own uncompressed tar (``mkfs.erofs --tar=i``, issue 16): the blob is
the data, the tree seen through the mount is the one the safe extractor makes, and any tar that is not plain
(hostile ones among them) goes through the extractor exactly as before."""

import hashlib
import io
import os
import stat
import subprocess
import tarfile

import pytest

from dockyard.errors import CorruptContent, Unsafe
from dockyard.snapshots import erofs
from dockyard.snapshots.store import SnapshotStore, rootfs_mounts
from dockyard.state.db import Store

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(erofs.unavailable() is not None or erofs.index_tool() is None,
                       reason="no EROFS or no mkfs.erofs with --tar (scripts/build-erofs-utils.sh)"),
]


def tar_file(path, *entries: tuple, root_entry: tuple | None = None) -> str:
    """Write a PAX tar of entries: (name, 'f', data, mode?, uid?) | (name, 'd', mode?) | (name, 'l', target) |
    (name, 'h', target) | (name, 'p') (fifo) | (name, 'c', major, minor); returns its path."""
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, *rest in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_500_000_000 + len(name)
            if kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, (rest[0] if rest else 0o755)
                tf.addfile(ti)
            elif kind == "l":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, rest[0], (rest[1] if len(rest) > 1 else 0o777)
                tf.addfile(ti)
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, rest[0]
                tf.addfile(ti)
            elif kind == "p":
                ti.type, ti.mode = tarfile.FIFOTYPE, 0o640
                tf.addfile(ti)
            elif kind == "c":
                ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, rest[0], rest[1], 0o600
                tf.addfile(ti)
            else:
                data = rest[0]
                ti.size, ti.mode = len(data), (rest[1] if len(rest) > 1 else 0o644)
                if len(rest) > 2:
                    ti.uid, ti.gid = rest[2], rest[2] + 1
                    ti.pax_headers = {"SCHILY.xattr.user.origin": "layer"}
                tf.addfile(ti, io.BytesIO(data))
    return str(path)


BASE = [
    ("etc", "d"), ("etc/conf", "f", b"a=1\n"), ("etc/keep", "f", b"keep\n"),
    ("bin", "d"), ("bin/tool", "f", b"#!tool\n" * 1000, 0o4755, 1234),
    ("bin/alias", "h", "bin/tool"), ("bin/sh", "l", "tool"), ("run", "d", 0o1777), ("run/fifo", "p"),
    ("dev", "d"), ("dev/null", "c", 1, 3), ("opt", "d"), ("opt/a", "f", b"lower\n"), ("opt/sub", "d"),
]
TOP = [
    ("etc", "d"), ("etc/.wh.keep", "f", b""), ("opt", "d"), ("opt/.wh..wh..opq", "f", b""),
    ("opt/new", "f", b"upper\n"), ("etc/conf", "f", b"a=2\n"),
]


def apply_files(ss: SnapshotStore, *paths: str) -> list[str]:
    parent = None
    chains = []
    for p in paths:
        with open(p, "rb") as f:
            parent = ss.apply_layer(parent, f).chain_id
        chains.append(parent)
    return chains


def walk(top: str) -> dict[str, tuple]:
    """Everything a container sees of a tree: type, mode, owner, size, times, link target, content, xattrs."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    extra = (hashlib.sha256(f.read()).hexdigest(), st.st_nlink)
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode):
                extra = st.st_rdev
            xattrs = {} if stat.S_ISLNK(st.st_mode) else {x: os.getxattr(p, x) for x in os.listxattr(p)}
            mtime = None if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns
            out[os.path.relpath(p, top)] = (st.st_mode, st.st_uid, st.st_gid, mtime, extra, xattrs)
    return out


def merged_view(ss: SnapshotStore, chain: str, target: str) -> dict[str, tuple]:
    with ss.mounted(chain) as lowers:
        os.makedirs(target, exist_ok=True)
        (m,) = rootfs_mounts(lowers, None, None, target, empty_dir=ss.empty_dir())
        subprocess.run(["mount", "-t", "overlay", "-o", ",".join(m.options), "overlay", target], check=True)
        try:
            return walk(target)
        finally:
            subprocess.run(["umount", target], check=True)


def test_a_plain_layer_keeps_its_tar_as_data_and_reads_as_extracted(tmp_path) -> None:
    base = tar_file(tmp_path / "base.tar", *BASE)
    top = tar_file(tmp_path / "top.tar", *TOP)
    idx = SnapshotStore(Store(root=str(tmp_path / "idx")), backend="erofs")
    ref = SnapshotStore(Store(root=str(tmp_path / "ref")), backend="dir")
    chains = apply_files(idx, base, top)
    ref_chains = apply_files(ref, base, top)
    assert chains == ref_chains
    for chain, src in zip(chains, (base, top)):
        d = os.path.dirname(idx.fs_path(chain))
        assert os.stat(os.path.join(d, erofs.TAR)).st_ino == os.stat(src).st_ino  # the blob itself, no copy
        assert sorted(os.listdir(d)) == ["fs", erofs.IMAGE, erofs.TAR]
    assert [s.size for s in sorted(idx.list())] == [s.size for s in sorted(ref.list())]
    with idx.mounted(chains[0]) as (lower,):
        got = walk(lower)
    with ref.mounted(ref_chains[0]) as (ref_lower,):
        want = walk(ref_lower)
    assert got == want
    assert got["bin/tool"][0] == stat.S_IFREG | 0o4755 and got["bin/tool"][1:3] == (1234, 1235)
    assert got["bin/tool"][5] == {"user.origin": b"layer"}
    view = merged_view(idx, chains[1], str(tmp_path / "m1"))
    assert view == merged_view(ref, ref_chains[1], str(tmp_path / "m2"))
    assert "etc/keep" not in view and "opt/a" not in view and "opt/sub" not in view and "opt/new" in view


@pytest.mark.parametrize("entries", [
    [("d", "d"), ("a", "l", "d"), ("a/x", "f", b"via a symlink\n")],      # a parent that is a symlink
    [("p/q/x", "f", b"implicit parents\n")],                               # parents the tar does not list
    [("./", "d", 0o777), ("x", "f", b"x\n")],                              # a root entry the extractor ignores
    [("d", "d"), ("d/x", "f", b"1\n"), ("d/x", "f", b"2\n")],              # an entry replaced
    [("x", "f", b"1\n"), ("x", "d")],                                      # a file replaced by a directory
    [("s", "l", "t", 0o644)],                                              # a symlink not 0777
])
def test_a_tar_that_is_not_plain_is_extracted_as_before(tmp_path, entries) -> None:
    src = tar_file(tmp_path / "l.tar", *entries)
    idx = SnapshotStore(Store(root=str(tmp_path / "idx")), backend="erofs")
    ref = SnapshotStore(Store(root=str(tmp_path / "ref")), backend="dir")
    (chain,) = apply_files(idx, src)
    (ref_chain,) = apply_files(ref, src)
    assert not os.path.exists(os.path.join(os.path.dirname(idx.fs_path(chain)), erofs.TAR))
    with idx.mounted(chain) as (lower,), ref.mounted(ref_chain) as (ref_lower,):
        assert walk(lower) == walk(ref_lower)
        assert stat.S_IMODE(os.stat(lower).st_mode) == 0o755


@pytest.mark.parametrize("name", ["../escape", "a/../../escape"])
def test_a_hostile_tar_read_from_a_blob_is_refused_as_before(tmp_path, name) -> None:
    src = tar_file(tmp_path / "evil.tar", (name, "f", b"pwned\n"))
    idx = SnapshotStore(Store(root=str(tmp_path / "idx")), backend="erofs")
    with pytest.raises(Unsafe, match="outside of the layer root"):
        apply_files(idx, src)
    assert idx.list() == []
    assert not (tmp_path / "escape").exists() and not (tmp_path / "idx" / "escape").exists()


def test_a_tar_cut_short_in_a_file_is_refused_as_before(tmp_path) -> None:
    src = tar_file(tmp_path / "cut.tar", ("d", "d"), ("d/big", "f", b"x" * 100_000))
    with open(src, "r+b") as f:
        f.truncate(512 * 3 + 50_000)  # headers (PAX + ustar for d, ustar for big) and half of big's data
    idx = SnapshotStore(Store(root=str(tmp_path / "idx")), backend="erofs")
    with pytest.raises(CorruptContent):
        apply_files(idx, src)
    assert idx.list() == []


def test_info_says_layer_tars_are_indexed_in_place(tmp_path) -> None:
    from tests.conftest import DOCKYARD

    p = subprocess.run([DOCKYARD, "--root", str(tmp_path / "root"), "info"], capture_output=True, text=True,
                       timeout=60)
    layers = [ln.strip() for ln in p.stdout.splitlines() if ln.strip().startswith("Layers:")]
    assert layers == ["Layers: erofs (one image file per layer, mounted from the file; an uncompressed layer tar is "
                      "the layer's data, indexed in place)"], p.stdout
