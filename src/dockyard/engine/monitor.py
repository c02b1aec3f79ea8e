"""The per-container monitor: one small process per running container, and no daemon.

``spawn`` forks the calling dockyard process twice (the monitor is a session leader reparented away from the CLI,
so killing the CLI never touches it) and waits until the monitor reports that the container is created. The
monitor then:

1. mounts the container's overlay root and writes its bundle (``engine.specgen``),
2. asks the runtime to create the container, holding the container's stdio (pipes, or a pty with ``-t``),
3. listens on the attach socket (``engine.attach``) and starts the process (at once, or when ``run``'s client has
   attached, so that no early output is lost),
4. copies output to the json-file log (``<id>-json.log``, Docker's format, capped at LOG_MAX bytes with one
   rotated file) and to attached clients, and client input to the container,
5. records the exit status, finish time and OOM kill in the store, unmounts, and applies the restart policy or
   ``--rm``.

The monitor is a child subreaper so that the container's init (forked by the runtime) is its child to wait for.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any

from dockyard.engine import attach as proto
from dockyard.engine.containers import Container, ContainerStore, proc_start_time, remove_files
from dockyard.errors import DockyardError
from dockyard.state.db import Store

LOG_MAX = 20 * 1024 * 1024
RUNTIME_STATE = "/run/dockyard/runtime"


def spawn(store: Store, c: Container, wait_attach: bool) -> dict[str, Any]:
    """Start the monitor of ``c``; returns ``{"pid": container pid}`` once created, or raises its error."""
    store.close()  # an open SQLite connection must not cross fork()
    r, w = os.pipe2(os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # intermediate: detach from the CLI's session, then leave the monitor as an orphan
        try:
            os.close(r)
            os.setsid()
            if os.fork() == 0:
                _monitor_main(store.root, c.id, w, wait_attach)
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    # one JSON line; not EOF, since the container's init may hold the pipe until it execs
    data = b""
    while not data.endswith(b"\n"):
        b = os.read(r, 65536)
        if not b:
            break
        data += b
    os.close(r)
    if not data:
        raise DockyardError(f"container {c.id[:12]}: monitor exited before creating the container")
    msg = json.loads(data)
    if "error" in msg:
        raise DockyardError(msg["error"])
    return msg


def _monitor_main(root: str, cid: str, ready_fd: int, wait_attach: bool) -> None:
    code = 0
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        os.closerange(3, ready_fd)
        os.closerange(ready_fd + 1, 65536)
        for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGTTOU, signal.SIGTTIN):
            signal.signal(s, signal.SIG_IGN)
        Monitor(Store(root), cid, ready_fd, wait_attach).run()
    except BaseException:  # noqa: BLE001 - the monitor must never die with a traceback nobody sees
        code = 1
        try:  # leave the reason where `inspect` and a developer can find it
            import traceback

            with open(os.path.join(root, "containers", cid, "monitor.err"), "a") as f:
                traceback.print_exc(file=f)
        except OSError:
            pass
    finally:
        os._exit(code)


class Monitor:
    def __init__(self, store: Store, cid: str, ready_fd: int, wait_attach: bool) -> None:
        self.store = store
        self.containers = ContainerStore(store)
        self.cid = cid
        self.ready_fd: int | None = ready_fd
        self.wait_attach = wait_attach
        self.clients: dict[socket.socket, dict[str, Any]] = {}
        self.sel = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.log_fd = -1
        self.log_size = 0

    # ---- life cycle -------------------------------------------------------------------------------------
    def run(self) -> None:
        from dockyard.runtime import syscalls

        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
        c = self.containers.get(self.cid)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.listener.bind(proto.address(self.cid))
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("listen", None))
        self._open_log(c)
        exit_code = 0
        while True:
            try:
                exit_code = self.run_once(c)
            except DockyardError as e:
                self._report({"error": str(e)})
                self._record_failure(c, str(e))
                return
            except OSError as e:
                from dockyard.errors import from_oserror

                msg = str(from_oserror(f"cannot start container {c.id[:12]}", e))
                self._report({"error": msg})
                self._record_failure(c, msg)
                return
            c = self.containers.get(self.cid)
            if not self._should_restart(c, exit_code):
                break
            self.containers.update(self.cid, state="restarting", restart_count=c.restart_count + 1)
            time.sleep(min(0.1 * (2 ** min(c.restart_count, 8)), 10))  # restart back-off, as Docker's
            c = self.containers.get(self.cid)
            if c.state != "restarting":  # stopped or removed meanwhile
                break
        if c.spec.auto_remove:
            self._auto_remove(c)
        self._send_all(proto.frame(proto.EXIT, str(exit_code).encode()))
        for s in list(self.clients):
            s.close()

    def _should_restart(self, c: Container, code: int) -> bool:
        pol = c.spec.restart
        if c.state != "exited" or c.error == "stopped":
            return False
        if pol.name == "always" or pol.name == "unless-stopped":
            return True
        if pol.name == "on-failure" and code != 0:
            return not pol.maximum_retry_count or c.restart_count < pol.maximum_retry_count
        return False

    def run_once(self, c: Container) -> int:
        from dockyard.engine import rootfs, specgen
        from dockyard.runtime.base import Stdio, get_runtime

        cdir = c.dir(self.store)
        rt = get_runtime(c.spec.runtime, RUNTIME_STATE)
        image_config = rootfs.mount(self.store, c)
        try:
            hostname = c.spec.hostname or c.id[:12]
            rootfs.write_etc_files(self.store, c, hostname)
            oci = specgen.generate(c.spec, image_config, container_id=c.id, rootfs=os.path.join(cdir, "rootfs"),
                                   cdir=cdir, hostname=hostname)
            from dockyard.fsutil import atomic_write

            atomic_write(os.path.join(cdir, "config.json"), json.dumps(oci).encode())
            stdio, mine = self._stdio(c)
            try:
                try:
                    rt.delete(c.id, force=True)  # leftovers of an earlier run of this monitor
                except Exception:  # noqa: BLE001
                    pass
                pid = rt.create(c.id, cdir, stdio)
            finally:
                for fd in (stdio.stdin, stdio.stdout, stdio.stderr, stdio.terminal_fd):
                    if fd is not None and fd not in mine:
                        try:
                            os.close(fd)
                        except OSError:
                            pass
        except BaseException:
            rootfs.unmount(self.store, c)
            raise
        pidfd = os.pidfd_open(pid)
        me = os.getpid()
        self.containers.update(self.cid, state="running", pid=pid, pid_start=proc_start_time(pid),
                               monitor_pid=me, monitor_start=proc_start_time(me), started=time.time(),
                               exit_code=None, error="", oom_killed=0, finished=None)
        self._report({"pid": pid})
        if self.wait_attach:
            self._wait_for_start(deadline=time.monotonic() + 30)
            self.wait_attach = False
        rt.start(c.id)
        status = self._loop(pidfd, pid, mine)
        os.close(pidfd)
        oom = False
        try:
            oom = rt.oom_killed(c.id)
        except Exception:  # noqa: BLE001
            pass
        try:
            rt.delete(c.id, force=True)
        except Exception:  # noqa: BLE001
            pass
        rootfs.unmount(self.store, c)
        now = time.time()
        with self.store.write() as db:
            db.execute("UPDATE containers SET state='exited', exit_code=?, finished=?, oom_killed=?, pid=NULL,"
                       " error=CASE WHEN error='stopping' THEN 'stopped' ELSE error END WHERE id=?",
                       (status, now, int(oom), self.cid))
        return status

    def _record_failure(self, c: Container, msg: str) -> None:
        try:
            self.containers.update(self.cid, state="exited" if c.started or c.finished else "created",
                                   exit_code=128, error=msg, pid=None)
        except DockyardError:
            pass

    def _report(self, msg: dict[str, Any]) -> None:
        if self.ready_fd is None:
            return
        try:
            os.write(self.ready_fd, json.dumps(msg).encode() + b"\n")
        finally:
            os.close(self.ready_fd)
            self.ready_fd = None

    def _auto_remove(self, c: Container) -> None:
        try:
            remove_files(self.store, c)
            self.containers.delete(self.cid)
        except Exception:  # noqa: BLE001
            pass

    # ---- stdio ------------------------------------------------------------------------------------------
    def _stdio(self, c: Container) -> tuple[Any, set[int]]:
        from dockyard.runtime.base import Stdio

        self.out: dict[int, int] = {}
        self.stdin_fd: int | None = None
        if c.spec.tty:
            master, slave = os.openpty()
            os.set_blocking(master, False)
            self.out[master] = proto.STDOUT
            self.stdin_fd = master if c.spec.open_stdin else None
            self.tty_master: int | None = master
            return Stdio(stdin=slave, stdout=slave, stderr=slave, terminal_fd=slave), {master}
        self.tty_master = None
        o_r, o_w = os.pipe2(os.O_CLOEXEC)
        e_r, e_w = os.pipe2(os.O_CLOEXEC)
        for fd in (o_r, e_r):
            os.set_blocking(fd, False)
        self.out[o_r] = proto.STDOUT
        self.out[e_r] = proto.STDERR
        mine = {o_r, e_r}
        if c.spec.open_stdin:
            i_r, i_w = os.pipe2(os.O_CLOEXEC)
            self.stdin_fd = i_w
            mine.add(i_w)
            stdin = i_r
        else:
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return Stdio(stdin=stdin, stdout=o_w, stderr=e_w), mine

    def _open_log(self, c: Container) -> None:
        path = os.path.join(c.dir(self.store), f"{c.id}-json.log")
        self.log_path = path
        self.log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.log_size = os.fstat(self.log_fd).st_size
        self.partial: dict[int, bytes] = {proto.STDOUT: b"", proto.STDERR: b""}

    def _log(self, kind: int, data: bytes, flush: bool = False) -> None:
        """Append complete lines as json-file records; a partial line waits (up to 16 KiB) unless flushing."""
        buf = self.partial[kind] + data
        end = buf.rfind(b"\n") + 1
        if flush or len(buf) - end >= 16384:
            end = len(buf)
        self.partial[kind] = buf[end:]
        if not end:
            return
        chunk = buf[:end]
        lines = chunk.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
            last_nl = True
        else:
            last_nl = False
        stream = "stdout" if kind == proto.STDOUT else "stderr"
        now = time.time()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
        out = []
        for i, ln in enumerate(lines):
            nl = "\n" if (i < len(lines) - 1 or last_nl) else ""
            out.append(json.dumps({"log": ln.decode("utf-8", "replace") + nl, "stream": stream, "time": ts}))
        blob = ("\n".join(out) + "\n").encode()
        if self.log_size + len(blob) > LOG_MAX:
            os.replace(self.log_path, self.log_path + ".1")
            os.close(self.log_fd)
            self.log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            self.log_size = 0
        os.write(self.log_fd, blob)
        self.log_size += len(blob)

    # ---- event loop -------------------------------------------------------------------------------------
    def _wait_for_start(self, deadline: float) -> None:
        """Serve clients until one asks to start (run's attached CLI), or the deadline passes."""
        self.start_requested = False
        while not self.start_requested and time.monotonic() < deadline:
            for key, _ in self.sel.select(timeout=max(0.0, deadline - time.monotonic())):
                self._dispatch(key)

    def _loop(self, pidfd: int, pid: int, mine: set[int]) -> int:
        for fd in self.out:
            self.sel.register(fd, selectors.EVENT_READ, ("out", fd))
        self.sel.register(pidfd, selectors.EVENT_READ, ("exit", None))
        status: int | None = None
        while status is None or self.out:
            timeout = None if status is None else 0.5
            events = self.sel.select(timeout=timeout)
            if not events and status is not None:
                break  # a grandchild keeps the pipe open after init died: stop waiting for it
            for key, _ in events:
                kind, _ = key.data
                if kind == "exit":
                    self.sel.unregister(pidfd)
                    _, st = os.waitpid(pid, 0)
                    status = os.waitstatus_to_exitcode(st)
                    if status < 0:
                        status = 128 - status
                else:
                    self._dispatch(key)
        for fd in list(self.out):
            self._close_out(fd)
        if self.stdin_fd is not None and self.stdin_fd != self.tty_master:
            try:
                os.close(self.stdin_fd)
            except OSError:
                pass
        self.stdin_fd = None
        for fd in mine:
            try:
                os.close(fd)
            except OSError:
                pass
        # reap anything else that was reparented to us
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        return status

    def _close_out(self, fd: int) -> None:
        kind = self.out.pop(fd, None)
        if kind is None:
            return
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        if self.partial.get(kind):
            self._log(kind, b"", flush=True)
        if fd != self.tty_master:
            os.close(fd)

    def _dispatch(self, key: selectors.SelectorKey) -> None:
        kind, arg = key.data
        if kind == "listen":
            try:
                s, _ = self.listener.accept()  # type: ignore[union-attr]
            except BlockingIOError:
                return
            s.setblocking(True)
            self.clients[s] = {"hello": False, "reader": proto.FrameReader(), "buf": b"", "opts": {}}
            self.sel.register(s, selectors.EVENT_READ, ("client", s))
        elif kind == "out":
            try:
                data = os.read(arg, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = b""
            if not data:
                self._close_out(arg)
                return
            stream = self.out[arg]
            self._log(stream, data)
            self._send_all(proto.frame(stream, data), stream)
        elif kind == "client":
            self._client_input(arg)

    def _client_input(self, s: socket.socket) -> None:
        info = self.clients[s]
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(s)
            return
        if not info["hello"]:
            info["buf"] += data
            if b"\n" not in info["buf"]:
                return
            line, _, data = info["buf"].partition(b"\n")
            info["opts"] = json.loads(line or b"{}")
            info["hello"] = True
        for kind, payload in info["reader"].feed(data):
            if kind == proto.STDIN and self.stdin_fd is not None:
                if payload:
                    try:
                        os.write(self.stdin_fd, payload)
                    except OSError:
                        pass
                elif self.stdin_fd != self.tty_master:
                    os.close(self.stdin_fd)
                    self.stdin_fd = None
            elif kind == proto.RESIZE and self.tty_master is not None:
                import fcntl
                import struct
                import termios

                rows, cols = (int(x) for x in payload.split())
                fcntl.ioctl(self.tty_master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            elif kind == proto.START:
                self.start_requested = True

    def _send_all(self, data: bytes, stream: int | None = None) -> None:
        for s, info in list(self.clients.items()):
            opts = info["opts"]
            if stream == proto.STDOUT and not opts.get("stdout", True):
                continue
            if stream == proto.STDERR and not opts.get("stderr", True):
                continue
            try:
                s.sendall(data)
            except OSError:
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        self.clients.pop(s, None)
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
