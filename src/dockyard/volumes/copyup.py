"""Docker's volume copy-up: an empty volume mounted over an image directory gets that directory's contents.

``copy_up(src, dst)`` runs on the host, in the container's monitor, once the container's root is mounted: ``src``
is the image's directory as the container sees it (resolved inside the root with ``engine.fspath.secure_join``),
``dst`` the volume's mountpoint. Like Docker it copies only into an *empty* volume and then gives the volume's root
the owner and mode of the image directory. Everything is kept: owners, modes (setuid, sticky), times, symlinks
(never followed), hard links (within the copy), device nodes, fifos and extended attributes where the volume's
filesystem takes them.
"""

from __future__ import annotations

import os
import stat

CHUNK = 1 << 20


def is_empty(path: str) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def copy_up(src: str, dst: str) -> bool:
    """Copy the contents of directory ``src`` into ``dst`` if ``dst`` is empty; True if it copied."""
    try:
        sst = os.lstat(src)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(sst.st_mode) or not is_empty(dst):
        return False
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    _copy_dir(src, dst, links, dirs)
    for d, st in reversed(dirs):  # directory attributes last: their times change while they fill
        _attrs(d, st, is_link=False)
    _attrs(dst, sst, is_link=False)
    _xattrs(src, dst)
    return True


def _copy_dir(src: str, dst: str, links: dict[tuple[int, int], str],
              dirs: list[tuple[str, os.stat_result]]) -> None:
    with os.scandir(src) as it:
        entries = list(it)
    for e in entries:
        s = e.path
        d = os.path.join(dst, e.name)
        st = os.lstat(s)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(d, 0o700)
            _copy_dir(s, d, links, dirs)
            dirs.append((d, st))
            _xattrs(s, d)
            continue
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and not stat.S_ISDIR(mode) and key in links:
            os.link(links[key], d, follow_symlinks=False)
            continue
        if stat.S_ISREG(mode):
            _copy_file(s, d)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(d, mode, st.st_rdev)
        else:  # sockets are not copied (Docker's copier skips them too)
            continue
        if st.st_nlink > 1:
            links[key] = d
        _attrs(d, st, is_link=stat.S_ISLNK(mode))
        if not stat.S_ISLNK(mode):
            _xattrs(s, d)


def _copy_file(src: str, dst: str) -> None:
    fi = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            while True:
                try:
                    n = os.copy_file_range(fi, fo, CHUNK)
                except OSError:  # across filesystems on older kernels: plain read/write
                    n = -1
                if n == 0:
                    break
                if n < 0:
                    while True:
                        buf = os.read(fi, CHUNK)
                        if not buf:
                            break
                        view = memoryview(buf)
                        while view:
                            view = view[os.write(fo, view):]
                    break
        finally:
            os.close(fo)
    finally:
        os.close(fi)


def _attrs(path: str, st: os.stat_result, is_link: bool) -> None:
    os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    if not is_link:
        os.chmod(path, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid/setgid
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for n in names:
        try:
            os.setxattr(dst, n, os.getxattr(src, n, follow_symlinks=False), follow_symlinks=False)
        except OSError:
            pass  # the volume's filesystem may not take it (user.* on tmpfs, trusted.* ...)
