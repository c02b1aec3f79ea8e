"""Fuzzing the layer extractor with hostile tars: nothing may be written outside the destination.

Each example extracts a generated tar (``..`` names, absolute names, symlink chains, links to the outside,
hardlinks, duplicate entries, a directory replaced by a file and back, device nodes, whiteouts, long names, PAX
headers with odd values) into ``<tmp>/root`` next to ``<tmp>/sentinel``. Afterwards ``<tmp>`` holds only those
two, the sentinel is unchanged, no file descriptor is left open, and the extraction either succeeded or raised a
DockyardError (the module's documented errors: Unsafe, InvalidArgument, CorruptContent, SystemFailure).
Needs root: device nodes, whiteouts (0/0 character devices), chown and trusted.* xattrs.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import hard_limit
from dockyard.errors import DockyardError
from dockyard.snapshots.store import SnapshotStore

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown, trusted xattrs)")]

SENTINEL = "@SENTINEL@"  # replaced by the absolute path of the sentinel directory in each example
_COMPONENTS = ["a", "b", "c", "..", ".", "", "sentinel", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh..wh.plnk", ".wh.",
               ".wh..", "x" * 255, "y" * 256, "é", "\udcff"]
_name = st.one_of(
    st.lists(st.sampled_from(_COMPONENTS), min_size=1, max_size=5).map("/".join),
    st.lists(st.sampled_from(_COMPONENTS), min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)),
    st.sampled_from(["../sentinel/owned", "../../x", "a/../../sentinel/f", "/../sentinel/f", SENTINEL + "/f",
                     "a/" * 60 + "deep", "a/b/c/../../../../x", "./", "/", ".."]),
)
_link = st.one_of(
    _name,
    st.sampled_from(["/", "..", "../..", "../sentinel", "../../sentinel", SENTINEL, SENTINEL + "/keep", "/proc/self",
                     "/proc/self/root", "/etc", "a", "a/b", "b/../..", "/" + "../" * 10 + "tmp", "", "\x00x"]),
)
_pax_keys = st.sampled_from(["mtime", "atime", "uid", "gid", "size", "path", "linkpath", "SCHILY.xattr.user.x",
                             "SCHILY.xattr.trusted.overlay.opaque", "SCHILY.xattr.security.capability",
                             "SCHILY.xattr.", "SCHILY.xattr.bogus", "uname"])
_pax_values = st.sampled_from(["0", "-1", "1e300", "inf", "nan", "abc", "", "99999999999999999999", "1.5", "y",
                               "../sentinel/p", SENTINEL + "/p", "\x00"])
_entry = st.fixed_dictionaries({
    "type": st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                             tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"x"[0:1], tarfile.GNUTYPE_SPARSE]),
    "name": _name,
    "link": _link,
    "data": st.binary(max_size=64),
    "mode": st.sampled_from([0o644, 0o755, 0o4755, 0o000, 0o7777, 0o1777]),
    "uid": st.sampled_from([0, 1000, 65534, 2**21 - 1]),
    "dev": st.sampled_from([(0, 0), (1, 3), (8, 0), (4095, 1048575)]),
    "mtime": st.sampled_from([0, 1, 2**33 - 1, 1700000000]),
    "pax": st.dictionaries(_pax_keys, _pax_values, max_size=2),
})


def _tar(entries: list[dict], sentinel: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["name"].replace(SENTINEL, sentinel))
            ti.type = e["type"]
            ti.linkname = e["link"].replace(SENTINEL, sentinel)
            ti.mode = e["mode"]
            ti.uid = ti.gid = e["uid"]
            ti.devmajor, ti.devminor = e["dev"]
            ti.mtime = e["mtime"]
            ti.pax_headers = {k: v.replace(SENTINEL, sentinel) for k, v in e["pax"].items()}
            data = e["data"] if ti.type in (tarfile.REGTYPE, tarfile.CONTTYPE) else b""
            ti.size = len(data)
            try:
                tf.addfile(ti, io.BytesIO(data) if data else None)
            except (ValueError, tarfile.HeaderError, UnicodeError):
                continue  # the writer refuses it (NUL in a name...): not an archive anyone can send
    return buf.getvalue()


def _snapshot(d: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(d):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st_ = os.lstat(p)
            data = Path(p).read_bytes() if os.path.isfile(p) and not os.path.islink(p) else b""
            out[os.path.relpath(p, d)] = (st_.st_mode, st_.st_uid, st_.st_size, st_.st_mtime_ns, data,
                                          os.readlink(p) if os.path.islink(p) else "")
    return out


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def check(entries: list[dict], allow_devices: bool, base: Path) -> None:
    top = Path(tempfile.mkdtemp(dir=base))
    try:
        root, sentinel = top / "root", top / "sentinel"
        root.mkdir()
        sentinel.mkdir()
        (sentinel / "keep").write_bytes(b"keep")
        (sentinel / "d").mkdir()
        os.symlink("keep", sentinel / "ln")
        before = _snapshot(sentinel)
        data = _tar(entries, str(sentinel))
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        fds = _open_fds()
        with hard_limit():
            try:  # the snapshot store's own entry point: opens the tar, extracts, drains, syncs
                SnapshotStore._extract(io.BytesIO(data), root_fd, allow_devices, sync=True)
            except DockyardError as e:
                assert "\n" not in str(e)
        assert _open_fds() == fds, "the extractor leaked file descriptors"
        os.close(root_fd)
        assert sorted(os.listdir(top)) == ["root", "sentinel"], f"written outside the root: {os.listdir(top)}"
        assert _snapshot(sentinel) == before, "the sentinel next to the root changed"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _e(type: bytes, name: str, link: str = "", **kw: object) -> dict:
    e = {"type": type, "name": name, "link": link, "data": b"", "mode": 0o644, "uid": 0, "dev": (0, 0),
         "mtime": 0, "pax": {}}
    e.update(kw)
    return e


@settings(max_examples=settings.default.max_examples // 2)
@given(entries=st.lists(_entry, min_size=1, max_size=8), allow_devices=st.booleans())
# crashes found by this test (a ValueError/OverflowError traceback instead of CorruptContent):
@example(entries=[_e(tarfile.REGTYPE, "a", pax={"mtime": "nan"})], allow_devices=False)
@example(entries=[_e(tarfile.DIRTYPE, "a", pax={"atime": "inf"})], allow_devices=False)
@example(entries=[_e(tarfile.FIFOTYPE, "a", pax={"mtime": "1e300"})], allow_devices=False)
@example(entries=[_e(tarfile.REGTYPE, "a", pax={"uid": "99999999999999999999"})], allow_devices=False)
@example(entries=[_e(tarfile.REGTYPE, "a"), _e(tarfile.LNKTYPE, "b", pax={"linkpath": "a\x00"})],
         allow_devices=False)
@example(entries=[{"type": tarfile.SYMTYPE, "name": "a", "link": SENTINEL, "data": b"", "mode": 0o777, "uid": 0,
           "dev": (0, 0), "mtime": 0, "pax": {}},
          {"type": tarfile.REGTYPE, "name": "a/keep", "link": "", "data": b"owned", "mode": 0o644, "uid": 0,
           "dev": (0, 0), "mtime": 0, "pax": {}}], allow_devices=True)
@example(entries=[{"type": tarfile.SYMTYPE, "name": "a", "link": "..", "data": b"", "mode": 0o777, "uid": 0,
           "dev": (0, 0), "mtime": 0, "pax": {}},
          {"type": tarfile.LNKTYPE, "name": "b", "link": "a/sentinel/keep", "data": b"", "mode": 0o644, "uid": 0,
           "dev": (0, 0), "mtime": 0, "pax": {}}], allow_devices=True)
def test_hostile_layers_stay_inside(entries: list[dict], allow_devices: bool, tmp_path: Path) -> None:
    check(entries, allow_devices, tmp_path)


_symlink_chain = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "a/b", "b/c"]),
                                    st.sampled_from(["a", "b", "c", "..", "../..", "/", SENTINEL, "a/../..",
                                                     "c/../../sentinel", "/a/b"])), min_size=1, max_size=6)


@settings(max_examples=settings.default.max_examples // 2)
@given(links=_symlink_chain, target=st.sampled_from(["a/f", "b/f", "c/f", "a/b/f", "b/c/d/f", "a/keep", "c/.wh.keep",
                                        "b/.wh..wh..opq", "a/d/x"]))
def test_symlink_chains_stay_inside(links: list[tuple[str, str]], target: str, tmp_path: Path) -> None:
    """Symlinks (chains, loops, links to the sentinel) then a file written through them."""
    base = {"data": b"", "mode": 0o777, "uid": 0, "dev": (0, 0), "mtime": 0, "pax": {}}
    entries = [dict(base, type=tarfile.SYMTYPE, name=n, link=t) for n, t in links]
    entries.append(dict(base, type=tarfile.REGTYPE, name=target, link="", data=b"owned", mode=0o644))
    entries.append(dict(base, type=tarfile.LNKTYPE, name="h", link=target))
    check(entries, True, tmp_path)
