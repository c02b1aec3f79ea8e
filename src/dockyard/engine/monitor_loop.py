"""The slim half of a container's monitor: the event loop that runs while the container runs.

It imports only what the loop needs (os, selectors, socket, json), because a monitor lives as long as its
container and every idle container pays for its monitor's memory. The heavy half (``engine.monitor``) creates the
container and then ``exec``s a fresh, minimal interpreter into this module (``python -I -S``), handing over its
file descriptors as JSON (in a memfd, not argv): the container's output pipes (or pty master), its stdin, the pidfd of its init, the
attach listener and attached clients, and the log file. When the container exits, this half records nothing
itself: it calls back into ``engine.monitor`` (imported only then) to record the exit, clean up, restart or
remove.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard import jsonc as json
from dockyard.engine import attach as proto

LOG_MAX = 20 * 1024 * 1024
PARTIAL_MAX = 16 * 1024  # Docker's json-file writes a partial line once it reaches 16 KiB


class Loop:
    """File descriptors of one running container and what the monitor does with them."""

    def __init__(self, root: str, cid: str) -> None:
        self.root = root
        self.cid = cid
        self.sel = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.clients: dict[socket.socket, dict[str, Any]] = {}
        self.out: dict[int, int] = {}          # fd -> stream (STDOUT/STDERR)
        self.stdin_fd: int | None = None
        self.tty_master: int | None = None
        self.pidfd: int | None = None
        self.pid = 0
        self.log_fd = -1
        self.log_path = ""
        self.log_size = 0
        self.partial = {proto.STDOUT: b"", proto.STDERR: b""}
        self.start_requested = False
        self.health: str | None = None         # "INTERVAL_MS:LIMIT_MS": fork a probe each tick (engine.health)
        self.probe: tuple[int, int, float] | None = None  # pid, pidfd, started (monotonic)

    # ---- set up -----------------------------------------------------------------------------------------
    def listen(self) -> None:
        s = proto.listen(self.cid)
        s.setblocking(False)
        self.listener = s
        self.sel.register(s, selectors.EVENT_READ, ("listen", None))

    def open_log(self, path: str) -> None:
        self.log_path = path
        self.log_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.log_size = os.fstat(self.log_fd).st_size

    # ---- hand-over across exec --------------------------------------------------------------------------
    def to_state(self) -> str:
        fds = [self.log_fd, self.pidfd] + list(self.out)
        if self.listener is not None:
            fds.append(self.listener.fileno())
        if self.stdin_fd is not None:
            fds.append(self.stdin_fd)
        clients = []
        for s, info in self.clients.items():
            fds.append(s.fileno())
            clients.append({"fd": s.fileno(), "hello": info["hello"], "opts": info["opts"],
                            "buf": info["buf"].hex(), "pending": bytes(info["reader"].buf).hex()})
        for fd in fds:
            if fd is not None and fd >= 0:
                os.set_inheritable(fd, True)
        return json.dumps({
            "root": self.root, "cid": self.cid, "pid": self.pid, "pidfd": self.pidfd,
            "out": {str(k): v for k, v in self.out.items()}, "stdin": self.stdin_fd, "tty": self.tty_master,
            "listener": self.listener.fileno() if self.listener is not None else None, "clients": clients,
            "log_fd": self.log_fd, "log_path": self.log_path, "log_size": self.log_size,
            "partial": {str(k): v.hex() for k, v in self.partial.items()}, "health": self.health})

    @classmethod
    def from_state(cls, text: str) -> Loop:
        d = json.loads(text)
        lp = cls(d["root"], d["cid"])
        lp.pid, lp.pidfd = d["pid"], d["pidfd"]
        lp.out = {int(k): v for k, v in d["out"].items()}
        lp.stdin_fd, lp.tty_master = d["stdin"], d["tty"]
        lp.log_fd, lp.log_path, lp.log_size = d["log_fd"], d["log_path"], d["log_size"]
        lp.partial = {int(k): bytes.fromhex(v) for k, v in d["partial"].items()}
        lp.health = d.get("health")
        fds = [lp.log_fd, lp.pidfd] + list(lp.out) + ([lp.stdin_fd] if lp.stdin_fd is not None else [])
        if d["listener"] is not None:
            lp.listener = socket.socket(fileno=d["listener"])
            lp.sel.register(lp.listener, selectors.EVENT_READ, ("listen", None))
            fds.append(d["listener"])
        for c in d["clients"]:
            s = socket.socket(fileno=c["fd"])
            r = proto.FrameReader()
            r.buf += bytes.fromhex(c["pending"])
            lp.clients[s] = {"hello": c["hello"], "opts": c["opts"], "buf": bytes.fromhex(c["buf"]), "reader": r}
            lp.sel.register(s, selectors.EVENT_READ, ("client", s))
            fds.append(c["fd"])
        for fd in fds:
            if fd is not None and fd >= 0:  # none of the output fds and pidfd after the C loop
                os.set_inheritable(fd, False)
        return lp

    # ---- running ----------------------------------------------------------------------------------------
    def serve_until_start(self, deadline: float) -> None:
        """Serve clients until one asks to start (``run``'s attached CLI), or the deadline passes."""
        while not self.start_requested and time.monotonic() < deadline:
            for key, _ in self.sel.select(timeout=max(0.0, deadline - time.monotonic())):
                self._dispatch(key)

    def run_until_exit(self, timeout: float | None = None) -> int | None:
        """Copy output and input until the container's init exits and its output is drained.

        Returns its exit status (128+signal when killed), or None when ``timeout`` passed first."""
        for fd in self.out:
            self.sel.register(fd, selectors.EVENT_READ, ("out", fd))
        self.sel.register(self.pidfd, selectors.EVENT_READ, ("exit", None))  # type: ignore[arg-type]
        deadline = None if timeout is None else time.monotonic() + timeout
        status: int | None = None
        tick = None
        if self.health and timeout is None:
            interval, limit = (int(x) / 1000 for x in self.health.split(":"))
            tick = time.monotonic() + interval
        try:
            while status is None or self.out:
                if status is not None:
                    wait: float | None = 0.5  # a grandchild may hold the pipe after init died: bounded
                elif deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        return None
                elif tick is not None:
                    wait = max(tick - time.monotonic(), 0)
                else:
                    wait = None
                if tick is not None and status is None and time.monotonic() >= tick:
                    tick += interval * max(1, int((time.monotonic() - tick) // interval) + 1)
                    self._probe_tick(limit)
                    continue
                events = self.sel.select(timeout=wait)
                if not events and status is not None:
                    break
                for key, _ in events:
                    if key.data[0] == "probe":
                        self._probe_reap()
                    elif key.data[0] == "exit":
                        self.sel.unregister(self.pidfd)  # type: ignore[arg-type]
                        _, st = os.waitpid(self.pid, 0)
                        status = os.waitstatus_to_exitcode(st)
                        if status < 0:
                            status = 128 - status
                    else:
                        self._dispatch(key)
        finally:
            if status is None:  # handing over: leave the fds open, unregistered
                for fd in list(self.out) + [self.pidfd]:
                    try:
                        self.sel.unregister(fd)  # type: ignore[arg-type]
                    except (KeyError, ValueError):
                        pass
        if self.probe is not None:  # the container is gone: so is the question
            try:
                os.kill(self.probe[0], 9)
            except ProcessLookupError:
                pass
            self._probe_reap()
        for fd in list(self.out):
            self._close_out(fd)
        if self.stdin_fd is not None and self.stdin_fd != self.tty_master:
            _close(self.stdin_fd)
        if self.tty_master is not None:
            _close(self.tty_master)
        self.stdin_fd = self.tty_master = None
        _close(self.pidfd)
        self.pidfd = None
        try:  # reap anything else that was reparented to us
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        return status

    def _probe_tick(self, limit: float) -> None:
        """Fork the health probe process (``engine.health.probe_main``), unless one still runs: one older than
        ``limit`` seconds is killed."""
        if self.probe is not None:
            if time.monotonic() - self.probe[2] > limit:
                try:
                    os.kill(self.probe[0], 9)
                except ProcessLookupError:
                    pass
            return
        import sys

        import dockyard
        from dockyard.engine.health import PROBE_BOOT

        src = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
        try:  # our fds are close-on-exec: the probe gets none of them
            pid = os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", "-c", PROBE_BOOT, src, self.root,
                                                  self.cid], dict(os.environ))
            pidfd = os.pidfd_open(pid)
        except OSError:
            return
        self.probe = (pid, pidfd, time.monotonic())
        self.sel.register(pidfd, selectors.EVENT_READ, ("probe", None))

    def _probe_reap(self) -> None:
        if self.probe is None:
            return
        pid, pidfd, _ = self.probe
        self.probe = None
        self.sel.unregister(pidfd)
        os.close(pidfd)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def send_exit(self, code: int) -> None:
        self._send_all(proto.frame(proto.EXIT, str(code).encode()))
        for s in list(self.clients):
            self._drop(s)

    # ---- internals --------------------------------------------------------------------------------------
    def _close_out(self, fd: int) -> None:
        kind = self.out.pop(fd, None)
        if kind is None:
            return
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        if self.partial.get(kind):
            self.log(kind, b"", flush=True)
        if fd != self.tty_master:
            _close(fd)

    def _dispatch(self, key: selectors.SelectorKey) -> None:
        kind, arg = key.data
        if kind == "listen":
            try:
                s, _ = self.listener.accept()  # type: ignore[union-attr]
            except BlockingIOError:
                return
            if not proto.peer_allowed(s):  # another user: not ours to serve
                s.close()
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
                if e.errno != errno.EIO:  # EIO: the pty's other side is closed
                    raise
                data = b""
            if not data:
                self._close_out(arg)
                return
            stream = self.out[arg]
            self.log(stream, data)
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
            info["buf"] = b""
            try:
                opts = json.loads(line or b"{}")
            except ValueError:
                opts = None
            if not isinstance(opts, dict):  # a client that does not speak the protocol: drop it, not the monitor
                self._drop(s)
                return
            info["opts"] = opts
            info["hello"] = True
        for kind, payload in info["reader"].feed(data):
            if kind == proto.STDIN and self.stdin_fd is not None:
                if payload:
                    try:
                        os.write(self.stdin_fd, payload)
                    except OSError:
                        pass
                elif self.stdin_fd != self.tty_master:
                    _close(self.stdin_fd)
                    self.stdin_fd = None
            elif kind == proto.RESIZE and self.tty_master is not None:
                import fcntl
                import struct
                import termios

                try:
                    rows, cols = (int(x) for x in payload.split())
                    fcntl.ioctl(self.tty_master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                except (ValueError, struct.error, OSError):
                    pass  # a malformed resize request changes nothing
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

    def log(self, kind: int, data: bytes, flush: bool = False) -> None:
        """Append complete lines as json-file records; a partial line waits (up to 16 KiB) unless flushing."""
        buf = self.partial[kind] + data
        end = buf.rfind(b"\n") + 1
        if flush or len(buf) - end >= PARTIAL_MAX:
            end = len(buf)
        self.partial[kind] = buf[end:]
        if not end:
            return
        lines = buf[:end].split(b"\n")
        last_nl = lines[-1] == b""
        if last_nl:
            lines.pop()
        stream = "stdout" if kind == proto.STDOUT else "stderr"
        now = time.time()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
        out = []
        for i, ln in enumerate(lines):
            nl = "\n" if (i < len(lines) - 1 or last_nl) else ""
            out.append(json.dumps({"log": ln.decode("utf-8", "replace") + nl, "stream": stream, "time": ts}))
        blob = ("\n".join(out) + "\n").encode()
        try:
            if self.log_size + len(blob) > LOG_MAX:  # keep one rotated file, as json-file with max-file=2
                if os.path.lexists(self.log_path + ".1"):  # its output is gone: `logs` says so (logs.dropped)
                    os.close(os.open(self.log_path + ".dropped", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
                os.replace(self.log_path, self.log_path + ".1")
                _close(self.log_fd)
                self.log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                      0o600)
                self.log_size = 0
            os.write(self.log_fd, blob)
            self.log_size += len(blob)
        except OSError:  # a full disk (or the log gone): the record is dropped, the container goes on (as the
            pass         # C loop does); the monitor must live to record the exit


def _close(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.close(fd)
    except OSError:
        pass


def state_fd(data: bytes) -> int:
    """A memfd holding ``data``, inherited across execve: how the monitor hands its state to its next program
    (never in argv, which every user can read in /proc/PID/cmdline)."""
    fd = os.memfd_create("dockyard-monitor-state", 0)
    os.set_inheritable(fd, True)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read_state(arg: str | int) -> str:
    """The state handed over by ``state_fd`` (``arg`` is its fd number; the JSON itself is accepted too)."""
    if isinstance(arg, str) and not arg.isdigit():
        return arg
    fd = int(arg)
    chunks = []
    try:
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def main(arg: str) -> None:
    """Entry point of the exec'd slim monitor (``arg``: the state's memfd)."""
    code = 0
    state = ""
    try:
        state = read_state(arg)
        loop = Loop.from_state(state)
        status = loop.run_until_exit()
        from dockyard.engine.monitor import after_exit  # the heavy half, needed only now

        after_exit(loop, status)  # type: ignore[arg-type]
    except BaseException:  # noqa: BLE001
        code = 1
        try:
            import traceback

            d = json.loads(state)
            fd = os.open(os.path.join(d["root"], "containers", d["cid"], "monitor.err"),
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with open(fd, "a") as f:
                traceback.print_exc(file=f)
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)
