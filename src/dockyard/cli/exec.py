"""``exec``: run a command in a running container, as a child of this command (no monitor involved)."""

from __future__ import annotations

import os

from dockyard.cli.main import Context
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.engine.exec import ExecRecord
    from dockyard.state.db import Store


def main(ctx: Context, argv: list[str]) -> int:
    from types import SimpleNamespace

    from dockyard.cli.flags import BOOL, LIST, STR, Flags

    vals, pos = Flags("exec", "[OPTIONS] CONTAINER COMMAND [ARG...]", [
        ("-d, --detach", BOOL, False), ("-i, --interactive", BOOL, False), ("-t, --tty", BOOL, False),
        ("-e, --env", LIST, []), ("--env-file", LIST, []), ("-u, --user", STR, ""), ("-w, --workdir", STR, ""),
        ("--privileged", BOOL, False), ("--detach-keys", STR, "")]).parse(argv, interspersed=False)
    if len(pos) < 2:
        raise InvalidArgument('"dockyard exec" requires at least 2 arguments.')
    o = SimpleNamespace(**vals, container=pos[0], command=pos[1:])
    from dockyard.cli.run import _env, _read_kv_files
    from dockyard.engine import exec as ex

    rec = ex.exec_create(ctx.store, o.container, o.command, env=_env(_read_kv_files(o.env_file) + o.env),
                         user=o.user, workdir=o.workdir, tty=o.tty, stdin=o.interactive, privileged=o.privileged, defer=True)
    if o.detach:
        ex.exec_start(ctx.store, rec)  # /dev/null, opened by the runtime inside
        return 0
    if o.tty:
        status = _exec_tty(ctx.store, rec, o.interactive)
    else:
        status = _exec_pipes(ctx.store, rec, o.interactive)
    ex.exec_finished(ctx.store, rec, status)
    return status


def _exec_pipes(store: Store, rec: ExecRecord, interactive: bool) -> int:
    """Run the process with pipes of its own (never this command's fds: a process left behind must not read the
    caller's terminal, as Docker's exec without -t) and relay them: stdout and stderr apart, stdin with -i (its
    EOF closes the process's stdin), the exit status kept."""
    import select  # poll, not selectors: its import costs ~1 ms on every exec

    from dockyard.engine.exec import exec_start, wait_exit

    o_r, o_w = os.pipe2(os.O_CLOEXEC)
    e_r, e_w = os.pipe2(os.O_CLOEXEC)
    i_r = i_w = None
    if interactive:
        i_r, i_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = exec_start(store, rec, i_r, o_w, e_w)  # None: /dev/null, opened by the runtime
    finally:
        for fd in (o_w, e_w, i_r):
            if fd is not None:
                os.close(fd)
    if i_w is not None:  # a thread, so that any stdin works (a file cannot be polled) and output never waits
        import threading

        threading.Thread(target=_copy_stdin, args=(i_w,), daemon=True).start()
    pidfd = os.pidfd_open(pid)
    poll = select.poll()
    outs = {o_r: 1, e_r: 2}
    for fd in (o_r, e_r, pidfd):
        poll.register(fd, select.POLLIN)
    status: int | None = None
    try:
        while outs:
            # after the exit, drain what is left; a process left behind may hold the pipes: bounded
            events = poll.poll(None if status is None else 500)
            if not events:
                break
            for fd, _ in events:
                if fd == pidfd:
                    poll.unregister(pidfd)
                    status = wait_exit(pid)
                    continue
                if fd not in outs:
                    continue
                data = _read(fd)
                if data:
                    _write_all(outs[fd], data)
                    continue
                poll.unregister(fd)
                os.close(fd)
                del outs[fd]
    finally:
        for fd in outs:
            os.close(fd)
    if status is None:
        status = wait_exit(pid)
    os.close(pidfd)
    return status


def _copy_stdin(i_w: int) -> None:
    """Copy our stdin to the process's until EOF, then close its end (it sees EOF too)."""
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            _write_all(i_w, data)
    except OSError:  # the process closed its stdin (EPIPE), or ours is unreadable: what is left is dropped
        pass
    finally:
        os.close(i_w)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _exec_tty(store: Store, rec: ExecRecord, interactive: bool) -> int:
    import selectors
    import termios
    import tty

    import socket

    from dockyard.cli.stream import _winsize
    from dockyard.engine.exec import exec_resize, exec_start, receive_console, wait_exit

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = exec_start(store, rec, console_socket=theirs.fileno())
    finally:
        theirs.close()
    master = receive_console(ours.fileno())  # a terminal of the container's own /dev/pts
    ours.close()
    ws = _winsize(1)
    if ws:
        exec_resize(master, ws[0], ws[1])
    saved = None
    if interactive and os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: keys typed ahead reach the process
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ, "m")
    if interactive:
        sel.register(0, selectors.EVENT_READ, "i")
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "m":
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        raise StopIteration
                    os.write(1, data)
                else:
                    data = os.read(0, 65536)
                    if not data:
                        sel.unregister(0)
                        continue
                    os.write(master, data)
    except StopIteration:
        pass
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    os.close(master)
    return wait_exit(pid)
