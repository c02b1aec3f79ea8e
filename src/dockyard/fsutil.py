"""Small filesystem helpers every layer uses: atomic writes and directory fsync."""

from __future__ import annotations

import errno
import os
import stat


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    ``durable=False`` skips the fsyncs, for files derived from the store that are rewritten at every start
    (a container's bundle, /etc/hosts): a crash loses nothing that is not made again."""
    d = os.path.dirname(path) or "."
    tmp = f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(d)


_DIR_OPEN = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def rmtree(path: str) -> None:
    """Remove a tree, including read-only directories; missing is fine. Iterative and through directory fds
    (never following a symlink), so a tree thousands of directories deep (made by a container) goes too."""
    if not os.path.lexists(path):
        return
    parent, name = os.path.split(os.path.abspath(path))
    pfd = os.open(parent or "/", _DIR_OPEN)
    try:
        rmtree_at(pfd, name)
    finally:
        os.close(pfd)


def raise_fd_limit() -> None:
    """Lift the soft RLIMIT_NOFILE to the hard one: a walk of a deep tree holds one fd per level."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def rmtree_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` inside ``dir_fd`` (a directory tree, or anything else), never following a symlink; missing
    is fine. Depth-first with an explicit stack of directory fds: no recursion, one fd per level."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return
    except FileNotFoundError:
        return
    except (IsADirectoryError, PermissionError):
        pass
    except OSError as e:
        if e.errno != errno.EISDIR:
            raise
    top = _enter(dir_fd, name)
    if top is None:
        return
    stack: list[tuple[int, str, list[str]]] = [(top, name, os.listdir(top))]
    raised = False
    try:
        while stack:
            fd, dname, names = stack[-1]
            if not names:
                names.extend(os.listdir(fd))  # filled while we worked (a process still writing): go again
                if names:
                    continue
                stack.pop()
                os.close(fd)
                try:
                    os.rmdir(dname, dir_fd=stack[-1][0] if stack else dir_fd)
                except FileNotFoundError:
                    pass
                continue
            child = names.pop()
            try:
                os.unlink(child, dir_fd=fd)
                continue
            except FileNotFoundError:
                continue
            except (IsADirectoryError, PermissionError):
                pass
            except OSError as e:
                if e.errno != errno.EISDIR:
                    raise
            cfd = _enter(fd, child)
            if cfd is None:
                continue
            if len(stack) == 256 and not raised:
                raise_fd_limit()
                raised = True
            stack.append((cfd, child, os.listdir(cfd)))
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _enter(parent_fd: int, name: str) -> int | None:
    """Open directory ``name`` for removal (made writable and searchable first if it is not)."""
    try:
        fd = os.open(name, _DIR_OPEN, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=parent_fd)
        fd = os.open(name, _DIR_OPEN, dir_fd=parent_fd)
    st = os.fstat(fd)
    if stat.S_IMODE(st.st_mode) & 0o300 != 0o300:
        os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)
    return fd
