"""Walking, copying and archiving trees through directory fds, never through a symlink.

A container can change its files while the engine reads or writes them (``commit`` of a running container, ``cp``,
``export``, a volume another container uses). Path strings are re-resolved by the kernel at every call, so a
directory swapped for a symlink to ``/`` between a check and a use would send a path-based walker onto the host.
Here every directory is entered with ``openat(parent_fd, name, O_NOFOLLOW | O_DIRECTORY)``, every file is opened
with ``O_NOFOLLOW | O_NONBLOCK`` relative to its parent's fd and checked with fstat, and every file made is made
with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (or mkdirat/symlinkat/mknodat) relative to an fd: a swapped entry is read
as the symlink it now is, or skipped, never followed.

- ``walk(dir_fd)`` yields ``Entry`` objects (relative path, parent fd, lstat), parents before children, names in
  byte order;
- ``copy(src_parent, name, dst_parent, name)`` / ``copy_contents(src_fd, dst_fd)``: cp -a between two fds;
- ``add_to_tar(tf, parent_fd, name, arcname)``: a tree as PAX entries (numeric owners, xattrs, hard links).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from dockyard.fsutil import raise_fd_limit
from dockyard.rootpath import DIR_FLAGS, fd_path

CHUNK = 1 << 20
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINK_FDS = 512
_DEEP = 256  # levels after which the soft fd limit is lifted to the hard one


class Changed(OSError):
    """An entry changed type while it was being read (a running container swapped it)."""


@dataclass
class Entry:
    rel: str                 # "a/b" relative to the walk's root
    name: str                # "b"
    parent_fd: int           # the directory holding it; valid while this entry is being handled
    st: os.stat_result       # lstat (for a directory: fstat of ``fd``)
    fd: int | None = None    # a directory's own fd, valid until the walk leaves it

    def open(self) -> int:
        """Open this regular file for reading; Changed if it is no longer the file that was listed."""
        return open_file(self.parent_fd, self.name, self.st)

    def readlink(self) -> str:
        return os.readlink(self.name, dir_fd=self.parent_fd)

    def xattr_target(self) -> int | str:
        return self.fd if self.fd is not None else f"{fd_path(self.parent_fd)}/{self.name}"


def open_file(parent_fd: int, name: str, expect: os.stat_result | None = None) -> int:
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOENT, errno.ENXIO):
            raise Changed(e.errno, "changed while being read", name) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (expect is not None and (st.st_ino, st.st_dev) != (expect.st_ino,
                                                                                         expect.st_dev)):
        os.close(fd)
        raise Changed(errno.EINVAL, "changed while being read", name)
    os.set_blocking(fd, True)
    return fd


def open_dir(parent_fd: int, name: str) -> int | None:
    """Enter directory ``name`` without following it; None if it is not a directory (any more)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
            return None
        raise


def _names(dir_fd: int) -> list[str]:
    return sorted(os.listdir(dir_fd), key=os.fsencode)


def walk(dir_fd: int, rel: str = "", *, one_fs: bool = False) -> Iterator[Entry]:
    """Every entry below ``dir_fd``, sorted, parents before children. ``one_fs``: do not enter mount points.
    Iterative (a container can make a tree thousands of levels deep): one open fd per level being walked."""
    dev = os.fstat(dir_fd).st_dev if one_fs else None
    stack: list[tuple[int, str, Iterator[str]]] = [(dir_fd, rel, iter(_names(dir_fd)))]
    try:
        while stack:
            fd, base, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if stack:  # the walk's own fds; the caller's dir_fd stays open
                    os.close(fd)
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            p = f"{base}/{name}" if base else name
            if not stat.S_ISDIR(st.st_mode):
                yield Entry(p, name, fd, st)
                continue
            cfd = open_dir(fd, name)
            if cfd is None:  # swapped for something else since the lstat: take what is there now
                try:
                    yield Entry(p, name, fd, os.stat(name, dir_fd=fd, follow_symlinks=False))
                except FileNotFoundError:
                    pass
                continue
            try:
                st = os.fstat(cfd)
                if dev is not None and st.st_dev != dev:
                    os.close(cfd)
                    continue  # a mount point: not part of the tree
                yield Entry(p, name, fd, st, cfd)
                if len(stack) == _DEEP:
                    raise_fd_limit()
                stack.append((cfd, p, iter(_names(cfd))))
            except BaseException:
                os.close(cfd)
                raise
    finally:
        for fd, _, _ in stack[1:]:
            os.close(fd)


def xattrs(target: int | str, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Extended attributes of an fd or of a path (a path's last component is not followed)."""
    follow = isinstance(target, int)
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError:
        return {}
    out: dict[str, bytes] = {}
    for n in sorted(names):
        if skip and n.startswith(skip):
            continue
        try:
            out[n] = os.getxattr(target, n, follow_symlinks=follow)
        except OSError:
            continue
    return out


class ExactReader:
    """Reads exactly ``size`` bytes of an fd. A file that shrank while being archived is an error when
    ``strict`` (a layer), else padded with NULs (a cp/export of a running container, as tar does)."""

    def __init__(self, fd: int, size: int, name: str, strict: bool = True) -> None:
        self.fd, self.left, self.name, self.strict = fd, size, name, strict

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self.left:
            n = self.left
        out = bytearray()
        while len(out) < n:
            b = os.read(self.fd, n - len(out))
            if not b:
                if self.strict:
                    raise OSError(f"{self.name} shrank while being archived")
                out.extend(bytes(n - len(out)))
                break
            out.extend(b)
        self.left -= len(out)
        return bytes(out)


# -- archives ---------------------------------------------------------------------------------------------------

def tar_info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    ti.size = 0
    return ti


def add_to_tar(tf: tarfile.TarFile, parent_fd: int, name: str, arcname: str, *, one_fs: bool = False,
               root_entry: bool = True) -> None:
    """Append ``name`` (below ``parent_fd``; not followed) and, for a directory, everything under it (without
    an entry for the directory itself when not ``root_entry``)."""
    links: dict[tuple[int, int], str] = {}
    st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        _add_entry(tf, Entry(name, name, parent_fd, st), arcname, links)
        return
    fd = open_dir(parent_fd, name)
    if fd is None:
        raise Changed(errno.ENOTDIR, "changed while being read", name)
    try:
        if root_entry:
            _add_entry(tf, Entry(name, name, parent_fd, os.fstat(fd), fd), arcname, links)
        prefix = "" if arcname in ("", ".") else arcname.rstrip("/") + "/"
        for e in walk(fd, one_fs=one_fs):
            _add_entry(tf, e, prefix + e.rel, links)
    finally:
        os.close(fd)


def _add_entry(tf: tarfile.TarFile, e: Entry, arcname: str, links: dict[tuple[int, int], str]) -> None:
    st = e.st
    mode = st.st_mode
    ti = tar_info(arcname, st)
    pax = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
           for k, v in xattrs(e.xattr_target(), ("trusted.overlay.",)).items()} if not stat.S_ISLNK(mode) else {}
    ti.pax_headers = pax
    if stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
        tf.addfile(ti)
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            ti.type, ti.linkname = tarfile.LNKTYPE, links[key]
            tf.addfile(ti)
            return
        try:
            fd = e.open()
        except Changed:
            return  # gone or swapped while archiving: not part of this snapshot
        try:
            ti.type = tarfile.REGTYPE
            ti.size = st.st_size
            tf.addfile(ti, ExactReader(fd, st.st_size, arcname, strict=False))  # type: ignore[arg-type]
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            links[key] = arcname
    elif stat.S_ISLNK(mode):
        try:
            ti.linkname = e.readlink()
        except OSError:
            return
        ti.type = tarfile.SYMTYPE
        tf.addfile(ti)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tf.addfile(ti)
    elif stat.S_ISFIFO(mode):
        ti.type = tarfile.FIFOTYPE
        tf.addfile(ti)
    # sockets have no tar form


# -- copies -----------------------------------------------------------------------------------------------------

class Copier:
    """cp -a through fds. ``owners``: keep numeric owners (else the files belong to the caller, as ``docker cp``
    without -a); ``devices``: copy device nodes (else they are refused); ``merge``: a directory copied onto an
    existing directory fills it (a non-directory there is replaced, never written through)."""

    def __init__(self, *, owners: bool = True, devices: bool = True, merge: bool = True) -> None:
        self.owners, self.devices, self.merge = owners, devices, merge
        self._links: dict[tuple[int, int], int] = {}

    def close(self) -> None:
        for fd in self._links.values():
            os.close(fd)
        self._links.clear()

    def __enter__(self) -> Copier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def copy(self, src_parent: int, src_name: str, dst_parent: int, dst_name: str) -> None:
        """Copy ``src_name`` (not followed) to ``dst_name``; a symlink at ``dst_name`` is replaced."""
        st = os.stat(src_name, dir_fd=src_parent, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            self._copy_leaf(src_parent, src_name, st, dst_parent, dst_name)
            return
        sfd = open_dir(src_parent, src_name)
        if sfd is None:
            raise Changed(errno.ENOTDIR, "changed while being copied", src_name)
        try:
            dfd = self._make_dir(dst_parent, dst_name)
            try:
                self.copy_contents(sfd, dfd)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def copy_contents(self, src_fd: int, dst_fd: int) -> None:
        """Copy everything in directory ``src_fd`` into ``dst_fd``, then give ``dst_fd`` its attributes.
        Iterative, one pair of fds per level: any depth."""
        stack: list[tuple[int, int, Iterator[str]]] = [(src_fd, dst_fd, iter(_names(src_fd)))]
        try:
            while stack:
                sfd, dfd, names = stack[-1]
                name = next(names, None)
                if name is None:
                    stack.pop()
                    self._attrs_fd(dfd, os.fstat(sfd))
                    self._xattrs_to(sfd, dfd)
                    if stack:
                        os.close(sfd)
                        os.close(dfd)
                    continue
                try:
                    st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode):
                        self._copy_leaf(sfd, name, st, dfd, name)
                        continue
                    csfd = open_dir(sfd, name)
                    if csfd is None:
                        continue  # swapped while copying
                except (Changed, FileNotFoundError):
                    continue  # gone or swapped while copying
                try:
                    cdfd = self._make_dir(dfd, name)
                except BaseException:
                    os.close(csfd)
                    raise
                if len(stack) == _DEEP:
                    raise_fd_limit()
                stack.append((csfd, cdfd, iter(_names(csfd))))
        finally:
            for sfd, dfd, _ in stack[1:]:
                os.close(sfd)
                os.close(dfd)

    def _copy_leaf(self, src_parent: int, src_name: str, st: os.stat_result, dst_parent: int,
                   dst_name: str) -> None:
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return
        if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and not self.devices:
            raise PermissionError(errno.EPERM, "device nodes cannot be copied here", src_name)
        self._clear(dst_parent, dst_name)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            os.link(fd_path(self._links[key]), dst_name, dst_dir_fd=dst_parent, follow_symlinks=True)
            return
        if stat.S_ISREG(mode):
            self._copy_file(src_parent, src_name, st, dst_parent, dst_name)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src_name, dir_fd=src_parent), dst_name, dir_fd=dst_parent)
            self._attrs_at(dst_parent, dst_name, st, link=True)
        else:
            if stat.S_ISFIFO(mode):
                os.mkfifo(dst_name, 0o600, dir_fd=dst_parent)
            else:
                os.mknod(dst_name, (mode & ~0o7777) | 0o600, st.st_rdev, dir_fd=dst_parent)
            self._attrs_at(dst_parent, dst_name, st, link=False)
            self._xattrs_to(f"{fd_path(src_parent)}/{src_name}", f"{fd_path(dst_parent)}/{dst_name}")
        if st.st_nlink > 1 and len(self._links) < _MAX_LINK_FDS and not stat.S_ISLNK(mode):
            self._links[key] = os.open(dst_name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst_parent)

    def _make_dir(self, parent: int, name: str) -> int:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            fd = open_dir(parent, name)
            if fd is not None:
                if self.merge:
                    return fd
                os.close(fd)
                raise
            os.unlink(name, dir_fd=parent)  # a file or a symlink: replaced, never followed
            os.mkdir(name, 0o700, dir_fd=parent)
        fd = open_dir(parent, name)
        if fd is None:
            raise Changed(errno.ENOTDIR, "changed while being copied", name)
        return fd

    @staticmethod
    def _clear(parent: int, name: str) -> None:
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "cannot overwrite directory with non-directory", name)
        os.unlink(name, dir_fd=parent)

    def _copy_file(self, src_parent: int, src_name: str, st: os.stat_result, dst_parent: int,
                   dst_name: str) -> None:
        fi = open_file(src_parent, src_name, st)
        try:
            fo = os.open(dst_name, _NEW_FILE, 0o600, dir_fd=dst_parent)
            try:
                _copy_data(fi, fo)
                self._attrs_fd(fo, os.fstat(fi))
                self._xattrs_to(fi, fo)
            finally:
                os.close(fo)
        finally:
            os.close(fi)

    def _attrs_fd(self, fd: int, st: os.stat_result) -> None:
        if self.owners:
            os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid/setgid
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))

    def _attrs_at(self, parent: int, name: str, st: os.stat_result, link: bool) -> None:
        if self.owners:
            os.chown(name, st.st_uid, st.st_gid, dir_fd=parent, follow_symlinks=False)
        if not link:
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent)  # a node just made: nothing to follow
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent, follow_symlinks=False)

    @staticmethod
    def _xattrs_to(src: int | str, dst: int | str) -> None:
        for n, v in xattrs(src, ("trusted.overlay.",)).items():
            try:
                os.setxattr(dst, n, v, follow_symlinks=isinstance(dst, int))
            except OSError:
                pass  # the destination's filesystem may not take it (user.* on tmpfs, trusted.* ...)


def _copy_data(fi: int, fo: int) -> None:
    while True:
        try:
            n = os.copy_file_range(fi, fo, CHUNK)
        except OSError:  # across filesystems on older kernels: plain read/write
            n = -1
        if n == 0:
            return
        if n < 0:
            while buf := os.read(fi, CHUNK):
                view = memoryview(buf)
                while view:
                    view = view[os.write(fo, view):]
            return
