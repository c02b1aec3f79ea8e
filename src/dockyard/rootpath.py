"""Paths inside a container's root, resolved by the kernel as the container itself would see them.

Vocabulary: a *root* is a directory standing for a container's ``/`` (its mounted rootfs, a volume, an upper dir),
held open as a directory fd (``root_fd``). A *path in root* is any string from an image, a user or a container;
it is never joined to the host path of the root and handed to a path-based call, because a component may be (or
become, while a container runs) a symlink to a host path. Instead:

- ``open_in_root`` opens it with ``openat2(root_fd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)``: absolute
  symlink targets restart at the root and ``..`` stops there, all inside the kernel in one step; on kernels
  without openat2 (before 5.6) the same walk is done one component at a time with ``O_PATH | O_NOFOLLOW`` fds;
- ``mkdir_all`` creates missing directories with ``mkdirat`` relative to the fds of their parents;
- ``read_regular`` reads a small regular file (``/etc/passwd``) and refuses anything else (a device, a fifo, a
  file larger than the cap) without blocking;
- an fd can be used where the kernel wants a path through ``fd_path(fd)`` (``/proc/self/fd/<n>``), e.g. as a mount
  target: the mount lands on exactly the directory that was resolved (runc's lesson from CVE-2021-30465).

Example::

    root = open_root("/var/lib/dockyard/containers/<id>/rootfs")
    fd = open_in_root(root, "/etc/passwd", os.O_RDONLY)   # an /etc/passwd -> /etc/shadow-of-the-host link
                                                           # opens <rootfs>/etc/shadow-of-the-host, or ENOENT

Walking, copying and archiving whole trees through fds lives in ``dockyard.fdtree``.
"""

from __future__ import annotations

import errno
import os
import stat

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437  # the same number in the generic table (aarch64, riscv) and on x86_64
MAX_LINKS = 40
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

_openat2_state: list[object] = []  # [] unknown, [callable] usable, [None] not available


def fd_path(fd: int) -> str:
    """A path naming exactly what ``fd`` refers to, for calls that take only paths (mount, setxattr...)."""
    return f"/proc/self/fd/{fd}"


def open_root(path: str) -> int:
    """Open a root directory (a host path the engine owns, trusted) as an fd for the calls below."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _load_openat2():  # type: ignore[no-untyped-def]
    if _openat2_state:
        return _openat2_state[0]
    fn = None
    try:
        import ctypes

        if os.uname().machine in ("x86_64", "aarch64", "arm64", "riscv64", "loongarch64"):
            libc = ctypes.CDLL(None, use_errno=True)

            class OpenHow(ctypes.Structure):
                _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

            syscall = libc.syscall
            syscall.restype = ctypes.c_long

            def call(dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
                how = OpenHow(flags, mode, resolve)
                r = syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(path),
                            ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
                if r < 0:
                    e = ctypes.get_errno()
                    raise OSError(e, os.strerror(e), path.decode("utf-8", "surrogateescape"))
                return int(r)

            fn = call
    except (OSError, AttributeError, ImportError):
        fn = None
    _openat2_state.append(fn)
    return fn


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """The openat2 system call; OSError(ENOSYS) where this kernel or platform has none."""
    fn = _load_openat2()
    if fn is None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS), path)
    try:
        return fn(dirfd, os.fsencode(path), flags | os.O_CLOEXEC, mode, resolve)  # type: ignore[operator,no-any-return]
    except OSError as e:
        if e.errno == errno.ENOSYS:
            _openat2_state[:] = [None]
        raise


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """Open ``path`` as if ``root_fd`` were ``/``: every symlink (absolute or with ``..``) stays inside.

    ``flags`` are open(2)'s; with ``O_NOFOLLOW`` a symlink in the last component is not followed (with
    ``O_PATH`` it is opened itself, else ELOOP); with ``O_CREAT`` the file is made in the resolved parent.
    Raises OSError as open(2) would."""
    if not _split(path):
        path = "."
    try:
        return openat2(root_fd, path, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter refusing openat2
            raise
    return _open_walking(root_fd, path, flags, mode)


def _open_walking(root_fd: int, path: str, flags: int, mode: int) -> int:
    """open_in_root without openat2: one component at a time through O_PATH fds, never following a link."""
    todo = list(reversed(_split(path)))
    stack: list[int] = []  # fds of the directories from the root down to the current one
    hops = 0
    follow_last = not flags & os.O_NOFOLLOW
    try:
        if not todo:
            return os.open(".", flags | os.O_CLOEXEC, mode, dir_fd=root_fd)
        while todo:
            comp = todo.pop()
            cur = stack[-1] if stack else root_fd
            if comp == "..":
                if stack:
                    os.close(stack.pop())
                continue
            last = not todo
            try:
                pfd = os.open(comp, PATH_FLAGS, dir_fd=cur)
            except FileNotFoundError:
                if last and flags & os.O_CREAT:
                    return os.open(comp, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=cur)
                raise
            st = os.fstat(pfd)
            if stat.S_ISLNK(st.st_mode) and (not last or follow_last):
                os.close(pfd)
                hops += 1
                if hops > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(comp, dir_fd=cur)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop())
                todo.extend(reversed(_split(target)))
                continue
            if last:
                os.close(pfd)
                if flags & os.O_CREAT and flags & os.O_EXCL:
                    raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), path)
                return os.open(comp, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=cur)
            if not stat.S_ISDIR(st.st_mode):
                os.close(pfd)
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            stack.append(pfd)
        # the path ended in ".." or in a link to a directory that was already entered
        cur = stack[-1] if stack else root_fd
        return os.open(".", flags & ~(os.O_CREAT | os.O_EXCL) | os.O_CLOEXEC, mode, dir_fd=cur)
    finally:
        for fd in stack:
            os.close(fd)


def exists_in_root(root_fd: int, path: str, follow: bool = False) -> bool:
    try:
        os.close(open_in_root(root_fd, path, os.O_PATH | (0 if follow else os.O_NOFOLLOW)))
        return True
    except OSError:
        return False


def lstat_beneath(dir_fd: int, rel: str) -> os.stat_result | None:
    """lstat of ``rel`` below ``dir_fd`` without following any symlink on the way (None if there is nothing or
    a component is a link)."""
    try:
        fd = openat2(dir_fd, rel, os.O_PATH | os.O_NOFOLLOW, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EPERM):
            return None
        fd = _open_plain(dir_fd, rel)
        if fd is None:
            return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _open_plain(dir_fd: int, rel: str) -> int | None:
    parts = [p for p in rel.split("/") if p and p != "."]
    if ".." in parts:
        return None
    fd = os.open(".", os.O_PATH | os.O_CLOEXEC, dir_fd=dir_fd)
    for i, comp in enumerate(parts):
        try:
            nfd = os.open(comp, PATH_FLAGS | (os.O_DIRECTORY if i < len(parts) - 1 else 0), dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = nfd
    return fd


def mkdir_all(root_fd: int, path: str, mode: int = 0o755, _depth: int = 0) -> int:
    """Open directory ``path`` in the root (O_RDONLY|O_DIRECTORY), creating what is missing (``mode``) with
    mkdirat relative to the parent's fd. A symlink on the way is followed inside the root, as the container
    would; a non-directory on the way is ENOTDIR."""
    if _depth > MAX_LINKS:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
    try:
        return open_in_root(root_fd, path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        pass
    parts = path.rstrip("/").rsplit("/", 1)
    parent, base = (parts[0] or "/", parts[1]) if len(parts) == 2 else ("/", parts[0])
    if base in ("", ".", ".."):
        return open_in_root(root_fd, path, os.O_RDONLY | os.O_DIRECTORY)
    pfd = mkdir_all(root_fd, parent, mode, _depth + 1)
    try:
        try:
            os.mkdir(base, mode, dir_fd=pfd)
        except FileExistsError:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):  # a dangling link: make its target, inside the root
                target = os.readlink(base, dir_fd=pfd)
                return mkdir_all(root_fd, target if target.startswith("/") else f"{parent}/{target}", mode,
                                 _depth + 1)
        return os.open(base, DIR_FLAGS, dir_fd=pfd)
    finally:
        os.close(pfd)


def open_parent(root_fd: int, path: str, create: bool = False) -> tuple[int, str]:
    """(fd of the directory holding ``path``'s last component, resolved in the root; that component). The last
    component itself is not resolved: callers act on it with ``*at`` calls that do not follow it."""
    parts = path.rstrip("/").rsplit("/", 1)
    parent, base = (parts[0] or "/", parts[1]) if len(parts) == 2 else ("/", parts[0])
    if base in ("", ".", ".."):
        raise OSError(errno.EINVAL, "not a file name", path)
    if create:
        return mkdir_all(root_fd, parent), base
    return open_in_root(root_fd, parent, os.O_RDONLY | os.O_DIRECTORY), base


def follow_last(root_fd: int, path: str) -> str:
    """``path`` with symlinks in its last component followed (inside the root, as the container would), so that
    the result's last component is not a link (or does not exist). Its parents are still resolved at use."""
    for _ in range(MAX_LINKS):
        parts = path.rstrip("/").rsplit("/", 1)
        parent, base = (parts[0] or "/", parts[1]) if len(parts) == 2 else ("/", parts[0])
        if base in ("", ".", ".."):
            return path
        try:
            pfd = open_in_root(root_fd, parent, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            return path
        try:
            try:
                target = os.readlink(base, dir_fd=pfd)
            except OSError:
                return path  # not a link, or nothing there
        finally:
            os.close(pfd)
        path = target if target.startswith("/") else f"{parent}/{target}"
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)


class NotRegular(OSError):
    """``read_regular`` found something that is not a small regular file."""


def read_regular(root_fd: int, path: str, max_size: int = 4 << 20) -> bytes | None:
    """The contents of regular file ``path`` in the root (symlinks followed inside it); None if it does not
    exist. A device, fifo, socket or directory, or a file over ``max_size`` bytes, raises NotRegular without
    blocking or reading it."""
    try:
        fd = open_in_root(root_fd, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotRegular(errno.ELOOP, "too many levels of symbolic links", path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(errno.EINVAL, "not a regular file", path)
        if st.st_size > max_size:
            raise NotRegular(errno.EFBIG, f"larger than {max_size} bytes", path)
        chunks = []
        left = max_size + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 16))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        if left <= 0:
            raise NotRegular(errno.EFBIG, f"larger than {max_size} bytes", path)
        return b"".join(chunks)
    finally:
        os.close(fd)


def secure_join(root: str, path: str, follow_last: bool = True) -> str:
    """``root`` + ``path`` with every symlink resolved as if ``root`` were ``/`` (a host path string).

    Only for trees nothing else changes while the string is used (the container's own root after pivot_root, a
    build workspace between steps): a running container can swap a component after this returns. Everything else
    uses the fd-based calls above."""
    root = os.path.abspath(root)
    todo = _split(path)
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        cand = os.path.join(root, *done, part)
        if (todo or follow_last) and os.path.islink(cand):
            links += 1
            if links > 255:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(cand)
            if target.startswith("/"):
                done = []
            todo = _split(target) + todo
            continue
        done.append(part)
    return os.path.join(root, *done)
