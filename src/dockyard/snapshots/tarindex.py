"""Whether a layer tar can be stored as an EROFS *index* over itself (``mkfs.erofs --tar=i``), decided by reading
its headers only.

An index image keeps the tar as the layer's data (no second copy): the metadata image made by mkfs.erofs points
into it. mkfs.erofs never writes to the host's file system (its only output is the image), so it cannot be made to
escape; what matters is that the tree it builds is the tree the safe extractor (``extract.Extractor``) would have
made. ``scan`` accepts only tars whose meaning is plain and identical for both: clean relative names, every parent
listed earlier as a directory, no entry replacing another, hard links to earlier regular files, whiteouts of names
the layer does not also add, device nodes only where allowed, symlinks 0777, no sparse files, no overlay xattrs, no PAX global
headers. Anything else (a hostile tar among them) is not refused here: the caller falls back to the extractor,
which refuses or handles it exactly as before.
"""

from __future__ import annotations

import tarfile

from dockyard.rootless import active as _rootless
from dockyard.snapshots.extract import WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, _check_member

_DIR, _OTHER, _REG = 1, 2, 3


def scan(tf: tarfile.TarFile, *, allow_devices: bool) -> int | None:
    """The layer's size (file data and symlink targets) if every member of ``tf`` is plain, else None.
    Device nodes other than 0/0 are plain only with ``allow_devices`` (as root: the extractor makes them too).

    Reads ``tf`` to its end only when plain (the caller drains the stream either way)."""
    seen: dict[str, int] = {"": _DIR}
    size = 0
    try:
        for m in tf:
            if tf.pax_headers:  # a global header changes the following members: not for two parsers
                return None
            try:
                _check_member(m)
            except Exception:
                return None
            path = _clean(m.name)
            if path is None:
                return None
            if any(k.startswith(("SCHILY.xattr.trusted.overlay.", "SCHILY.xattr.user.overlay."))
                   or ("xattr" in k and not k.startswith("SCHILY.xattr.")) for k in m.pax_headers):
                return None
            if path == "":  # the root: only the attributes the extractor gives it (it ignores this entry)
                if not (m.isdir() and m.mode & 0o7777 == 0o755 and m.uid == 0 and m.gid == 0 and not m.pax_headers):
                    return None
                continue
            parent, _, base = path.rpartition("/")
            if seen.get(parent) != _DIR:
                return None  # a parent not listed first (implicit), or not a directory (a symlink to follow)
            if base.startswith(WHITEOUT_PREFIX):
                if not (m.isreg() and m.size == 0 and m.type != tarfile.CONTTYPE):
                    return None
                if base == WHITEOUT_OPAQUE:
                    if parent == "":
                        return None
                    continue
                name = base[len(WHITEOUT_PREFIX):]
                if base.startswith(WHITEOUT_META_PREFIX) or name in ("", ".", "..") or "/" in name:
                    return None
                target = f"{parent}/{name}" if parent else name
                if target in seen:
                    return None
                seen[target] = _OTHER
                continue
            old = seen.get(path)
            if m.isdir():
                if old is not None and old != _DIR:
                    return None
                seen[path] = _DIR
                continue
            if old is not None:
                return None
            if m.isreg():
                if m.issparse() or m.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                    return None
                seen[path] = _REG
                size += m.size
            elif m.issym():
                if m.mode & 0o7777 != 0o777:  # the extractor's symlinks are 0777 whatever the tar says
                    return None
                seen[path] = _OTHER
                size += len(m.linkname.encode("utf-8", "surrogateescape"))
            elif m.islnk():
                if seen.get(_clean(m.linkname) or "") != _REG:
                    return None
                seen[path] = _REG
            elif m.ischr() and m.devmajor == 0 and m.devminor == 0 or m.isfifo():
                seen[path] = _OTHER
            elif (m.ischr() or m.isblk()) and allow_devices and not _rootless():
                seen[path] = _OTHER
            else:
                return None  # refused or skipped device nodes, other types: the extractor decides
    except (tarfile.TarError, ValueError, OverflowError, UnicodeError):
        return None
    return size


def _clean(name: str) -> str | None:
    """``name`` without ``./`` and empty components; None if it is absolute or has a ``..``."""
    if name.startswith("/") or "\0" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)
