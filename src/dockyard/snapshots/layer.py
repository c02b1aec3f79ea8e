"""Turn a directory (usually a container's overlay upper dir) into a deterministic OCI layer tar.

The same tree always gives the same bytes, hence the same diff_id: entries are sorted by path (depth first, names
in byte order), ``uname``/``gname`` are empty, numeric ``uid``/``gid`` are kept, mtimes are whole seconds and, with
``epoch`` (``SOURCE_DATE_EPOCH``), clamped to ``min(mtime, epoch)``; the format is PAX and xattrs travel as
``SCHILY.xattr.*`` records. Hardlinks inside the tree stay hardlinks.

overlayfs markers are translated to OCI ones (the reverse of ``extract``): a 0/0 character device becomes an empty
regular file ``.wh.<name>`` (mode 0600, the device's owner and mtime), and a directory with
``trusted.overlay.opaque=y`` is followed by an empty ``<dir>/.wh..wh..opq``. Other ``trusted.overlay.*`` xattrs and
``security.selinux`` (a host label) are not copied. Sockets are skipped, as in Docker.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.snapshots.extract import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

CHUNK = 1 << 20
_SKIP_XATTRS = ("trusted.overlay.", "security.selinux")


class _HashingWriter:
    """File-like sink that hashes and counts what passes through to ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.size += len(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


def _walk(root: str, rel: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every entry below ``root``, sorted, parents before children."""
    d = os.path.join(root, rel) if rel else root
    with os.scandir(d) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    for e in entries:
        p = f"{rel}/{e.name}" if rel else e.name
        st = e.stat(follow_symlinks=False)
        yield p, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, p)


def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, str] = {}
    for n in sorted(names):
        if n.startswith(_SKIP_XATTRS):
            continue
        try:
            v = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + n] = v.decode("utf-8", "surrogateescape")
    return out


def _info(name: str, st: os.stat_result, mtime: int, type_: bytes) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = mtime
    ti.size = 0
    return ti


def write_layer(srcdir: str, out: BinaryIO, *, epoch: int | None = None) -> tuple[str, int]:
    """Write the layer tar of ``srcdir`` to ``out``; returns ``(diff_id, size)`` of the bytes written."""
    sink = _HashingWriter(out)
    links: dict[tuple[int, int], str] = {}
    tf = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",  # type: ignore[call-overload]
                      errors="surrogateescape")
    try:
        for rel, st in _walk(srcdir):
            path = os.path.join(srcdir, rel)
            mtime = int(st.st_mtime)
            if epoch is not None and mtime > epoch:
                mtime = epoch
            mode = st.st_mode
            if stat.S_ISCHR(mode) and st.st_rdev == 0:  # overlay whiteout
                d, _, base = rel.rpartition("/")
                wh = _info((d + "/" if d else "") + WHITEOUT_PREFIX + base, st, mtime, tarfile.REGTYPE)
                wh.mode = 0o600
                tf.addfile(wh)
                continue
            if stat.S_ISSOCK(mode):
                continue
            pax = _xattrs(path)
            if stat.S_ISDIR(mode):
                ti = _info(rel, st, mtime, tarfile.DIRTYPE)
                opaque = pax.pop("SCHILY.xattr." + OPAQUE_XATTR, None)
                try:
                    opaque_v = os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False)
                except OSError:
                    opaque_v = b""
                ti.pax_headers = pax
                tf.addfile(ti)
                if opaque_v == b"y" or opaque == "y":
                    o = _info(rel + "/" + WHITEOUT_OPAQUE, st, mtime, tarfile.REGTYPE)
                    o.mode = stat.S_IMODE(st.st_mode) & 0o777
                    tf.addfile(o)
                continue
            if stat.S_ISREG(mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = links.get(key)
                if first is not None:
                    ti = _info(rel, st, mtime, tarfile.LNKTYPE)
                    ti.linkname = first
                    ti.pax_headers = pax
                    tf.addfile(ti)
                    continue
                links[key] = rel
            if stat.S_ISREG(mode):
                ti = _info(rel, st, mtime, tarfile.REGTYPE)
                ti.size = st.st_size
                ti.pax_headers = pax
                with open(path, "rb") as f:
                    tf.addfile(ti, _Exact(f, st.st_size, rel))
            elif stat.S_ISLNK(mode):
                ti = _info(rel, st, mtime, tarfile.SYMTYPE)
                ti.linkname = os.readlink(path)
                ti.pax_headers = pax
                tf.addfile(ti)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                ti = _info(rel, st, mtime, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                ti.pax_headers = pax
                tf.addfile(ti)
            elif stat.S_ISFIFO(mode):
                ti = _info(rel, st, mtime, tarfile.FIFOTYPE)
                ti.pax_headers = pax
                tf.addfile(ti)
    finally:
        tf.close()
    sink.flush()
    return "sha256:" + sink.h.hexdigest(), sink.size


class _Exact:
    """Reads exactly ``size`` bytes of a file (a file that changed size while being archived is an error)."""

    def __init__(self, f: BinaryIO, size: int, name: str) -> None:
        self.f, self.left, self.name = f, size, name

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            n = self.left
        data = self.f.read(n)
        if len(data) < n:
            raise OSError(f"{self.name} shrank while being archived")
        self.left -= len(data)
        return data
