"""Safe, streaming extraction of one layer tar into an empty directory, in overlayfs format.

Nothing outside the destination may ever be touched, whatever the archive says. Every operation is relative to a
directory file descriptor inside the destination and never follows a symlink in its last component:

- entry names are cleaned lexically; a name whose ``..`` climbs above the root is refused (``Unsafe``), a leading
  ``/`` is ignored (as Docker does);
- parent directories are opened one component at a time with ``O_NOFOLLOW``; a symlink found on the way (created
  by an earlier entry) is resolved *inside* the root, like securejoin: absolute targets start at the root and
  ``..`` stops there;
- a file, link or node replacing an existing entry first removes that entry (so a symlink is replaced, never
  written through);
- hardlinks must point inside the root and link the target itself (a symlink, not what it points to);
- device nodes are refused when ``allow_devices`` is false (the 0/0 character device, a whiteout, is always fine).

OCI whiteouts become overlayfs ones: ``.wh.<name>`` -> a 0/0 character device ``<name>``; ``.wh..wh..opq`` -> the
xattr ``trusted.overlay.opaque=y`` on its directory. As root, numeric owners, modes (setuid, sticky), xattrs from
``SCHILY.xattr.*`` PAX records and mtimes are restored; directory modes and mtimes are set last.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.errors import CorruptContent, InvalidArgument, Unsafe, from_oserror
from dockyard.rootless import active as _rootless

CHUNK = 1 << 20
WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"

# overlay's markers: trusted.* as root; a user namespace cannot set trusted.*, so rootless overlays are mounted
# with ``userxattr`` and their layers carry user.overlay.* (image xattrs of either prefix are never copied)
_OVERLAY_PREFIXES = ("trusted.overlay.", "user.overlay.") if _rootless() else ("trusted.overlay.",)
OPAQUE_XATTR = "user.overlay.opaque" if _rootless() else "trusted.overlay.opaque"
_XATTR_PAX = "SCHILY.xattr."
_MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CACHE_MAX = 128


def clean_name(name: str) -> list[str]:
    """Lexically cleaned components of an archive path; Unsafe if it climbs above the root."""
    absolute = name.startswith("/")
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            elif not absolute:  # "/../x" is "/x", as filepath.Clean has it
                raise Unsafe(f'archive entry "{name}" is outside of the layer root')
        else:
            parts.append(p)
    return parts


def _clamp(parts: Iterable[str]) -> list[str]:
    out: list[str] = []
    for p in parts:
        if p in ("", "."):
            continue
        if p == "..":
            if out:
                out.pop()
        else:
            out.append(p)
    return out


@dataclass
class _DirMeta:
    mode: int
    atime_ns: int
    mtime_ns: int


class Extractor:
    """Extracts tar members into the directory open at ``root_fd`` (which it does not close)."""

    def __init__(self, root_fd: int, *, allow_devices: bool = True) -> None:
        self.root_fd = root_fd
        self.allow_devices = allow_devices
        self.is_root = os.geteuid() == 0
        self._cache: OrderedDict[str, int] = OrderedDict()  # canonical relative dir path -> open fd
        self._stale: list[int] = []  # fds dropped from the cache; closed before the next entry
        self._dirs: dict[str, _DirMeta] = {}
        self.size = 0  # bytes of file data and symlink targets, as Docker counts a layer's size

    # -- public -----------------------------------------------------------------------------------------------

    def extract(self, tf: tarfile.TarFile) -> None:
        try:
            for m in tf:
                self._trim_cache()
                try:
                    _check_member(m)
                    self._member(tf, m)
                except OSError as e:
                    raise from_oserror(f"cannot extract {m.name!r}", e) from None
                except (ValueError, OverflowError) as e:  # a value no system call takes; _check_member's net
                    raise CorruptContent(f"invalid layer archive: entry {m.name!r}: {e}") from None
            self._finish_dirs()
        except tarfile.TarError as e:
            raise CorruptContent(f"invalid layer archive: {e}") from None
        finally:
            self.close()

    def close(self) -> None:
        self._drop_cache()
        self._close_stale()

    # -- directory resolution ---------------------------------------------------------------------------------

    def _trim_cache(self) -> None:
        """Between entries: close fds dropped while handling the last one and keep the cache small."""
        self._close_stale()
        while len(self._cache) > _CACHE_MAX:
            _, fd = self._cache.popitem(last=False)
            os.close(fd)

    def _drop_cache(self) -> None:
        # the current entry may still use some of these fds (its parent, a link target): close them later
        self._stale.extend(self._cache.values())
        self._cache.clear()

    def _close_stale(self) -> None:
        for fd in self._stale:
            os.close(fd)
        self._stale.clear()

    def _resolve_dir(self, parts: list[str], entry: str) -> tuple[int, list[str]]:
        """Open directory ``parts`` (creating missing ones 0755), resolving symlinks scoped to the root.

        Returns the fd (owned by the cache) and the canonical path. Fds stay valid until the next entry."""
        key = "/".join(parts)
        fd = self._cache.get(key)
        if fd is not None:
            self._cache.move_to_end(key)
            return fd, parts
        todo = list(reversed(parts))
        cur: list[str] = []
        fd = self.root_fd
        hops = 0
        while todo:
            comp = todo.pop()
            nxt = cur + [comp]
            k = "/".join(nxt)
            cfd = self._cache.get(k)
            if cfd is None:
                try:
                    cfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:  # a parent the archive does not list: 0755, as Docker makes it
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    cfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                    os.fchmod(cfd, 0o755)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.lstat(comp, dir_fd=fd)
                    if not stat.S_ISLNK(st.st_mode):
                        raise InvalidArgument(f"cannot extract {entry!r}: {k} is not a directory") from None
                    hops += 1
                    if hops > _MAX_SYMLINKS:
                        raise Unsafe(f"cannot extract {entry!r}: too many levels of symbolic links") from None
                    target = os.readlink(comp, dir_fd=fd)
                    base = [] if target.startswith("/") else cur
                    rest = list(reversed(todo))
                    todo = list(reversed(_clamp(base + target.split("/") + rest)))
                    cur, fd = [], self.root_fd
                    continue
                self._cache[k] = cfd
            else:
                self._cache.move_to_end(k)
            cur, fd = nxt, cfd
        return fd, cur

    def _open_strict(self, parts: list[str]) -> int | None:
        """Open a directory by its canonical path without following anything; None if it is not one now."""
        fd = os.open(".", _DIR_FLAGS, dir_fd=self.root_fd)
        for comp in parts:
            try:
                nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                os.close(fd)
                return None
            os.close(fd)
            fd = nfd
        return fd

    # -- members ----------------------------------------------------------------------------------------------

    def _member(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_name(m.name)
        if not parts:
            return  # the root itself: the snapshot directory keeps its own attributes
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts, m)
            return
        pfd, canon = self._resolve_dir(parts[:-1], m.name)
        if m.isdir():
            self._mkdir(pfd, base, canon + [base], m)
        elif m.isreg():
            self._file(tf, pfd, base, m)
        elif m.issym():
            self._replace(pfd, base, lambda: os.symlink(m.linkname, base, dir_fd=pfd))
            self.size += len(os.fsencode(m.linkname))
            self._attrs_path(pfd, base, m)
        elif m.islnk():
            self._hardlink(pfd, base, m)
        elif m.ischr() or m.isblk():
            if not (m.ischr() and m.devmajor == 0 and m.devminor == 0) and not self.allow_devices:
                raise Unsafe(f"device node {m.name!r} is not allowed in this layer")
            if _rootless() and not (m.ischr() and m.devmajor == 0 and m.devminor == 0):
                return  # a user namespace may not make device nodes: skipped, as moby's and containers/storage's
                # extractors do in one (debootstrap's /dev/console; a container's /dev is its own anyway)
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            dev = os.makedev(m.devmajor, m.devminor)
            self._replace(pfd, base, lambda: os.mknod(base, kind | (m.mode & 0o777), dev, dir_fd=pfd))
            self._attrs_path(pfd, base, m)
        elif m.isfifo():
            self._replace(pfd, base, lambda: os.mkfifo(base, m.mode & 0o777, dir_fd=pfd))
            self._attrs_path(pfd, base, m)
        # other types (sockets cannot be in a tar; GNU volume/multivolume headers) are skipped

    def _whiteout(self, parts: list[str], m: tarfile.TarInfo) -> None:
        base = parts[-1]
        if base == WHITEOUT_OPAQUE:
            fd, _ = self._resolve_dir(parts[:-1], m.name)
            os.setxattr(fd, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # aufs metadata (.wh..wh.plnk etc.): meaningless here
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise InvalidArgument(f"invalid whiteout entry {m.name!r}")
        pfd, _ = self._resolve_dir(parts[:-1], m.name)
        self._replace(pfd, name, lambda: os.mknod(name, stat.S_IFCHR, 0, dir_fd=pfd))
        if self.is_root:
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        os.utime(name, ns=self._times(m), dir_fd=pfd, follow_symlinks=False)  # keeps write_layer stable

    def _replace(self, pfd: int, name: str, create) -> None:  # type: ignore[no-untyped-def]
        """Run ``create`` (which fails with EEXIST if ``name`` exists); on EEXIST remove what is there, retry."""
        try:
            create()
        except FileExistsError:
            self._remove(pfd, name)
            create()

    def _remove(self, pfd: int, name: str) -> None:
        st = os.lstat(name, dir_fd=pfd)
        if stat.S_ISDIR(st.st_mode):
            self._drop_cache()  # cached fds may point into the removed tree
            rmtree_at(pfd, name)
        else:
            os.unlink(name, dir_fd=pfd)

    def _mkdir(self, pfd: int, base: str, canon: list[str], m: tarfile.TarInfo) -> None:
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = os.lstat(base, dir_fd=pfd)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(base, dir_fd=pfd)
                os.mkdir(base, 0o700, dir_fd=pfd)
        key = "/".join(canon)
        fd = self._cache.get(key)
        if fd is None:
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            self._cache[key] = fd
        if self.is_root:
            os.fchown(fd, m.uid, m.gid)
        self._xattrs_fd(fd, m)
        atime_ns, mtime_ns = self._times(m)
        self._dirs.pop(key, None)
        self._dirs[key] = _DirMeta(m.mode & 0o7777, atime_ns, mtime_ns)

    def _file(self, tf: tarfile.TarFile, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        try:
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, base)
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            if m.size:
                if m.issparse():
                    src = tf.extractfile(m)
                    assert src is not None
                    while chunk := src.read(CHUNK):
                        _write_all(fd, chunk)
                    os.ftruncate(fd, m.size)
                else:
                    left = m.size
                    fobj = tf.fileobj
                    assert fobj is not None
                    while left:
                        chunk = fobj.read(min(left, CHUNK))
                        if not chunk:
                            raise CorruptContent(f"unexpected end of layer archive in {m.name!r}")
                        _write_all(fd, chunk)
                        left -= len(chunk)
                self.size += m.size
            if self.is_root:
                os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears setuid bits
            self._xattrs_fd(fd, m)          # after chown, which clears security.capability
            ns = self._times(m)
            os.utime(fd, ns=ns)
        finally:
            os.close(fd)

    def _hardlink(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        try:
            tparts = clean_name(m.linkname)
        except Unsafe:
            tparts = []
        if not tparts:
            raise Unsafe(f'hardlink "{m.name}" points outside of the layer root: "{m.linkname}"')
        tfd, _ = self._resolve_dir(tparts[:-1], m.name)
        tbase = tparts[-1]

        def link() -> None:
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

        try:
            self._replace(pfd, base, link)
        except FileNotFoundError:
            raise InvalidArgument(f"hardlink {m.name!r} points to {m.linkname!r}, which is not in the layer"
                                  ) from None
        except PermissionError:
            raise InvalidArgument(f"hardlink {m.name!r} cannot point to directory {m.linkname!r}") from None

    # -- attributes -------------------------------------------------------------------------------------------

    @staticmethod
    def _times(m: tarfile.TarInfo) -> tuple[int, int]:
        mtime_ns = _time_ns(m.mtime, m.name)
        atime = m.pax_headers.get("atime")
        return (_time_ns(atime, m.name) if atime else mtime_ns), mtime_ns

    @staticmethod
    def _xattrs(m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
        if not m.pax_headers:
            return []
        out = []
        for k, v in m.pax_headers.items():
            if k.startswith(_XATTR_PAX):
                name = k[len(_XATTR_PAX):]
                if name.startswith(_OVERLAY_PREFIXES):
                    continue  # overlay's own markers come only from whiteout entries
                out.append((name, v.encode("utf-8", "surrogateescape")))
        return out

    def _xattrs_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        for name, value in self._xattrs(m):
            _setxattr(fd, name, value, True)

    def _attrs_path(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs and times of a non-regular entry, never following it if it is a symlink."""
        if self.is_root:
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if not m.issym():
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)  # a node we just created: nothing to follow
        xattrs = self._xattrs(m)
        if xattrs:
            p = f"/proc/self/fd/{pfd}/{base}"
            for name, value in xattrs:
                _setxattr(p, name, value, False)
        os.utime(base, ns=self._times(m), dir_fd=pfd, follow_symlinks=False)

    def _finish_dirs(self) -> None:
        for key in sorted(self._dirs, key=lambda k: -k.count("/")):
            meta = self._dirs[key]
            fd = self._open_strict(key.split("/"))
            if fd is None:
                continue
            try:
                os.fchmod(fd, meta.mode)
                os.utime(fd, ns=(meta.atime_ns, meta.mtime_ns))
            finally:
                os.close(fd)


_ID_MAX = 2**32 - 2  # (uid_t)-1 means "unchanged" to chown
_TIME_NS_MAX = 2**63 - 1


def _check_member(m: tarfile.TarInfo) -> None:
    """Refuse entry values no system call can take (PAX records may carry anything): NUL bytes in names,
    owners outside uid_t, times that are not numbers or do not fit a 64-bit nanosecond count."""
    if "\0" in m.name or "\0" in m.linkname:
        raise CorruptContent(f"invalid layer archive: entry {m.name!r} has a NUL byte in its name or link")
    if not (0 <= m.uid <= _ID_MAX and 0 <= m.gid <= _ID_MAX):
        raise CorruptContent(f"invalid layer archive: entry {m.name!r} has an invalid owner {m.uid}:{m.gid}")
    _time_ns(m.mtime, m.name)
    atime = m.pax_headers.get("atime")
    if atime:
        _time_ns(atime, m.name)


def _time_ns(value: float | int | str, name: str) -> int:
    """A tar time (seconds, maybe fractional, maybe PAX text) in nanoseconds; CorruptContent if it is none."""
    try:
        ns = int(float(value) * 1e9)  # int() of inf/nan raises OverflowError/ValueError
    except (ValueError, OverflowError):
        ns = _TIME_NS_MAX + 1
    if not -_TIME_NS_MAX <= ns <= _TIME_NS_MAX:
        raise CorruptContent(f"invalid layer archive: entry {name!r} has an invalid time {value!r}")
    return ns


def _setxattr(target: int | str, name: str, value: bytes, follow: bool) -> None:
    try:
        os.setxattr(target, name, value, follow_symlinks=follow)
    except OSError as e:
        # filesystems without xattrs, or user.* on symlinks: best effort, as Docker does
        if e.errno not in (errno.ENOTSUP, errno.EPERM):
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def rmtree_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` (a directory) inside ``dir_fd`` without following symlinks (iterative: any depth)."""
    from dockyard.fsutil import rmtree_at as _rmtree_at

    _rmtree_at(dir_fd, name)
