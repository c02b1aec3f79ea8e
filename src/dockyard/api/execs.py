"""/exec routes: create, start (hijacked or detached), inspect, resize.

The service never starts the process itself (that would fork a threaded process and make it a subreaper):
``engine.exec_helper`` does, in a fresh process, with pipe ends (or a console socket) the service hands it; the
service relays its own ends to the client (8-byte multiplexed frames without a TTY, raw bytes with one), closes
the process's stdin on the client's half-close, and holds a TTY's master for ``resize``. The helper records the
exit code before it exits, and the stream ends only after that, so that GET /exec/{id}/json right after the
stream has the ExitCode (what ``docker exec`` reads).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from dockyard import jsonc as json
from dockyard.api.server import Hijack, Request
from dockyard.errors import Conflict, InvalidArgument


def _t(body: dict[str, Any], key: str, typ: type, default: Any) -> Any:
    v = body.get(key)
    if v is None:
        return default
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise InvalidArgument(f"invalid type for {key}: want {typ.__name__}, got {type(v).__name__}")
    return v


def _strs(body: dict[str, Any], key: str) -> list[str]:
    v = _t(body, key, list, [])
    if not all(isinstance(x, str) for x in v):
        raise InvalidArgument(f"invalid type for {key}: want a list of strings")
    return list(v)


def create(api: Any, req: Request, id: str) -> Any:
    from dockyard.api.routes import created
    from dockyard.engine import exec as ex

    body = req.json({})
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON body: want an object")
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    body["Cmd"] = cmd
    rec = ex.exec_create(api.store, id, _strs(body, "Cmd"), env=_strs(body, "Env"), user=_t(body, "User", str, ""),
                         workdir=_t(body, "WorkingDir", str, ""), tty=_t(body, "Tty", bool, False),
                         stdin=_t(body, "AttachStdin", bool, False), privileged=_t(body, "Privileged", bool, False))
    with api.lock:
        api.execs[rec.id] = {"stdout": _t(body, "AttachStdout", bool, True),
                             "stderr": _t(body, "AttachStderr", bool, True), "master": None}
    return created({"Id": rec.id})


def inspect(api: Any, req: Request, id: str) -> Any:
    from dockyard.engine import exec as ex

    r = ex.exec_inspect(api.store, id)
    att = api.execs.get(r.id, {})
    return {"ID": r.id, "ContainerID": r.container_id, "Running": r.running, "ExitCode": r.exit_code,
            "Pid": r.pid, "CanRemove": False, "DetachKeys": "", "OpenStdin": r.stdin,
            "OpenStdout": att.get("stdout", True), "OpenStderr": att.get("stderr", True),
            "ProcessConfig": {"tty": r.tty, "entrypoint": r.cmd[0], "arguments": r.cmd[1:],
                              "privileged": r.privileged, "user": r.user}}


def resize(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import exec as ex

    r = ex.exec_inspect(api.store, id)
    h, w = req.int_arg("h", 0) or 0, req.int_arg("w", 0) or 0
    master = api.execs.get(r.id, {}).get("master")
    if not r.tty or master is None:
        if not r.running:
            raise Conflict(f"Exec {r.id} is not running")
        return None  # no terminal: nothing to resize (as dockerd)
    ex.exec_resize(master, h, w)
    return None


class _Started:
    def __init__(self, proc: Any, status_r: int, fds: dict[str, int]) -> None:
        self.proc, self.status_r, self.fds = proc, status_r, fds


def _start_helper(api: Any, rec: Any, detach: bool) -> _Started:
    """Hand the helper its fds and wait for its first report (the pid, or the error, raised here by class)."""
    from dockyard import errors
    from dockyard.engine import exec_helper

    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    mine: dict[str, int] = {}
    theirs: dict[str, int] = {}
    if not detach:
        if rec.tty:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            mine["console"], theirs["console"] = a.detach(), b.detach()
        else:
            for name in ("stdout", "stderr"):
                r, w = os.pipe2(os.O_CLOEXEC)
                mine[name], theirs[name] = r, w
            if rec.stdin:
                r, w = os.pipe2(os.O_CLOEXEC)
                mine["stdin"], theirs["stdin"] = w, r
    try:
        proc = exec_helper.spawn(api.root, rec.id, status_w, **theirs)
    except BaseException:
        for fd in (*mine.values(), status_r):
            os.close(fd)
        raise
    finally:
        for fd in (*theirs.values(), status_w):
            os.close(fd)
    first = _read_line(status_r)
    msg = json.loads(first) if first else {"error": "the exec helper failed to start", "kind": "SystemFailure"}
    if "error" in msg:
        for fd in mine.values():
            os.close(fd)
        os.close(status_r)
        proc.wait()
        kind = getattr(errors, str(msg.get("kind", "")), None)
        if not (isinstance(kind, type) and issubclass(kind, errors.DockyardError)):
            kind = errors.DockyardError
        raise kind(msg["error"])
    if "console" in mine:
        from dockyard.engine.exec import receive_console

        s = mine.pop("console")
        try:
            mine["master"] = receive_console(s)
        finally:
            os.close(s)
    return _Started(proc, status_r, mine)


def _read_line(fd: int) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        try:
            b = os.read(fd, 4096)
        except OSError:
            break
        if not b:
            break
        buf += b
    return buf.strip()


async def start(api: Any, req: Request, id: str) -> Any:
    from dockyard.api.server import Reply
    from dockyard.engine import exec as ex

    body = req.json({})
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON body: want an object")
    detach = _t(body, "Detach", bool, False)
    size = _t(body, "ConsoleSize", list, []) or []
    rec = await asyncio.to_thread(_check, api, id)
    if detach:
        st = await asyncio.to_thread(_start_helper, api, rec, True)
        asyncio.get_running_loop().run_in_executor(None, _reap, st)  # reaped when the exec ends
        return Reply(200, b"")
    att = api.execs.setdefault(rec.id, {"stdout": True, "stderr": True, "master": None})

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # as dockerd: the process starts once the client has the response head (a client that reads the head
        # through a buffered file, docker-py, would otherwise swallow the first output with it)
        try:
            st = await asyncio.to_thread(_start_helper, api, rec, False)
        except Exception as e:  # noqa: BLE001 - after the head: in the stream, as dockerd
            from dockyard.engine import attach as proto

            msg = str(e).encode() + b"\n"
            writer.write(msg if rec.tty else proto.frame(2, msg))
            await writer.drain()
            writer.close()
            return
        reap = asyncio.get_running_loop().run_in_executor(None, _reap, st)
        if "master" in st.fds:
            att["master"] = st.fds["master"]
            if len(size) == 2 and all(isinstance(x, int) and x > 0 for x in size):
                ex.exec_resize(st.fds["master"], size[0], size[1])
        try:
            if "master" in st.fds:
                await _relay_tty(st.fds["master"], reader, writer)
            else:
                await _relay_pipes(st.fds, reader, writer, att, reap)
            await asyncio.wait_for(asyncio.shield(reap), timeout=None if "master" in st.fds else 5)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        finally:
            att["master"] = None
            for fd in st.fds.values():
                _close(fd)
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except OSError:
                pass

    ctype = "application/vnd.docker.raw-stream" if rec.tty else "application/vnd.docker.multiplexed-stream"
    return Hijack(run, ctype)


def _check(api: Any, id: str) -> Any:
    """The checks dockerd makes before hijacking: the exec exists, has not run, its container runs."""
    from dockyard.engine import exec as ex
    from dockyard.engine.containers import ContainerStore

    rec = ex.exec_inspect(api.store, id)
    if rec.running or rec.exit_code is not None:
        raise Conflict(f"Exec command {rec.id} is already running" if rec.running else
                       f"Exec command {rec.id} has already run")
    ContainerStore(api.store).get(rec.container_id).can_exec()
    return rec


def _reap(st: _Started) -> int:
    code = st.proc.wait()
    os.close(st.status_r)
    return code


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


async def _fd_read(fd: int) -> bytes:
    """One read of a non-blocking fd when it is readable; b"" at EOF (EIO of a pty master too)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            pass
        except OSError:
            return b""
        fut = loop.create_future()
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            loop.remove_reader(fd)


async def _fd_write(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        fut = loop.create_future()
        loop.add_writer(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            loop.remove_writer(fd)


async def _client_to(fd: int | None, reader: asyncio.StreamReader) -> None:
    """Client bytes to the process's stdin (or pty); the client's half-close closes a stdin pipe."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if fd is not None:
                await _fd_write(fd, data)
    except (ConnectionError, OSError):
        pass


async def _relay_pipes(fds: dict[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       att: dict[str, Any], reap: Any) -> None:
    from dockyard.engine import attach as proto

    for fd in fds.values():
        os.set_blocking(fd, False)
    stdin = fds.get("stdin")

    async def upstream() -> None:
        await _client_to(stdin, reader)
        if stdin is not None:
            _close(fds.pop("stdin"))

    up = asyncio.ensure_future(upstream())

    async def pump(name: str, kind: int) -> None:
        while True:
            data = await _fd_read(fds[name])
            if not data:
                return
            if att.get(name, True):
                writer.write(proto.frame(kind, data))
                await writer.drain()

    outs = asyncio.gather(pump("stdout", 1), pump("stderr", 2))
    try:
        done, _ = await asyncio.wait({outs, asyncio.ensure_future(asyncio.shield(reap))},
                                     return_when=asyncio.FIRST_COMPLETED)
        if outs not in done:  # the process ended; what it wrote is drained, a descendant holding the pipes is not
            await asyncio.wait({outs}, timeout=0.5)
    finally:
        outs.cancel()
        up.cancel()


async def _relay_tty(master: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    os.set_blocking(master, False)
    up = asyncio.ensure_future(_client_to(master, reader))
    try:
        while True:
            data = await _fd_read(master)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    finally:
        up.cancel()


def register(r: Any) -> None:
    r.add("POST", "/containers/{id}/exec", create)
    r.add("POST", "/exec/{id}/start", start)
    r.add("GET", "/exec/{id}/json", inspect)
    r.add("POST", "/exec/{id}/resize", resize)
