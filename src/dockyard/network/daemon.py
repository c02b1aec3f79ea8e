"""Small detached helper processes of the network layer (a user-defined network's embedded DNS server,
``network.dns``; an overlay's watcher, ``network.overlay_watch``): started on demand, each holding a lock file
that says it runs, never a child of the command that started it."""

from __future__ import annotations

import os
import sys


def spawn(script: str, args: list[str], err_path: str, fds: list[int]) -> None:
    """Run ``python -I -S -c script SRC *args`` detached (a new session, reparented to init): stdin and stdout
    /dev/null, stderr appended to ``err_path`` (0600), ``fds`` as descriptors 3, 4, ... in that order (a lock's
    open file description travels with it), nothing else inherited. Returns once it is on its own."""
    import dockyard

    src = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
    argv = [sys.executable, "-I", "-S", "-c", script, src, *args]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setsid()
            if os.fork() == 0:
                import fcntl

                # out of the way first: the given descriptors may be any of 0..3+len(fds)
                moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]
                null = fcntl.fcntl(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC), fcntl.F_DUPFD_CLOEXEC, 100)
                log = fcntl.fcntl(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600),
                                  fcntl.F_DUPFD_CLOEXEC, 100)
                for fd, target in ((null, 0), (null, 1), (log, 2), *((m, 3 + i) for i, m in enumerate(moved))):
                    os.dup2(fd, target)  # inheritable
                os.closerange(3 + len(moved), 1 << 16)
                os.chdir("/")
                os.execv(sys.executable, argv)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def try_lock(path: str) -> int:
    """An fd holding the flock of ``path`` (taken without waiting), or -1 when it is missing or held elsewhere."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return -1


def lock_held(path: str) -> bool:
    """Whether some process holds the flock of ``path`` (the helper it belongs to runs)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
