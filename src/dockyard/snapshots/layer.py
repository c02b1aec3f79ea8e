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
from typing import BinaryIO

from dockyard.snapshots.extract import _OVERLAY_PREFIXES, OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

CHUNK = 1 << 20
_SKIP_XATTRS = (*_OVERLAY_PREFIXES, "security.selinux")


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


def _xattrs(target: int | str) -> dict[str, str]:
    from dockyard.fdtree import xattrs

    return {"SCHILY.xattr." + n: v.decode("utf-8", "surrogateescape") for n, v in xattrs(target, _SKIP_XATTRS).items()}


def _info(name: str, st: os.stat_result, mtime: int, type_: bytes) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = mtime
    ti.size = 0
    return ti


# The files the runtime creates, empty, as targets of the engine's bind mounts when an image lacks them (Docker
# keeps them in its init layer): not a container's changes, so neither in a commit nor in a RUN step's layer.
MOUNT_TARGETS = frozenset({"etc/hostname", "etc/hosts", "etc/resolv.conf"})


def write_layer(srcdir: str, out: BinaryIO, *, epoch: int | None = None,
                skip_empty: frozenset[str] = frozenset()) -> tuple[str, int]:
    """Write the layer tar of ``srcdir`` to ``out``; returns ``(diff_id, size)`` of the bytes written.
    ``skip_empty`` (e.g. ``MOUNT_TARGETS``): relative paths left out when they are empty regular files, and so is
    a directory holding them that has nothing else in the tree (``etc/`` copied up only because they were made)."""
    sink = _HashingWriter(out)
    parents = {p.rpartition("/")[0] for p in skip_empty} - {""}
    deferred: tuple[str, tarfile.TarInfo] | None = None   # such a directory, written once something else is in it
    links: dict[tuple[int, int], str] = {}
    tf = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",  # type: ignore[call-overload]
                      errors="surrogateescape")
    from dockyard.fdtree import Changed, ExactReader, walk
    from dockyard.rootpath import open_root

    root_fd = open_root(srcdir)
    try:
        for e in walk(root_fd):
            rel, st = e.rel, e.st
            if deferred is not None and not rel.startswith(deferred[0] + "/"):
                deferred = None  # it held nothing but mount targets
            if rel in skip_empty and stat.S_ISREG(st.st_mode) and st.st_size == 0:
                continue
            if deferred is not None:
                tf.addfile(deferred[1])
                deferred = None
            target = e.xattr_target()  # the entry itself, never a path that could be followed
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
            pax = _xattrs(target)
            if stat.S_ISDIR(mode):
                ti = _info(rel, st, mtime, tarfile.DIRTYPE)
                opaque = pax.pop("SCHILY.xattr." + OPAQUE_XATTR, None)
                try:
                    opaque_v = os.getxattr(target, OPAQUE_XATTR)
                except OSError:
                    opaque_v = b""
                ti.pax_headers = pax
                if rel in parents and opaque_v != b"y" and opaque != "y":
                    deferred = (rel, ti)
                    continue
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
                try:
                    fd = e.open()
                except Changed:  # removed or swapped while the layer was written (a commit with --pause=false)
                    if links.get((st.st_dev, st.st_ino)) == rel:
                        del links[(st.st_dev, st.st_ino)]
                    continue
                try:
                    tf.addfile(ti, ExactReader(fd, st.st_size, rel))  # type: ignore[arg-type]
                finally:
                    os.close(fd)
            elif stat.S_ISLNK(mode):
                ti = _info(rel, st, mtime, tarfile.SYMTYPE)
                try:
                    ti.linkname = e.readlink()
                except OSError:
                    continue
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
        os.close(root_fd)
        tf.close()
    sink.flush()
    return "sha256:" + sink.h.hexdigest(), sink.size
