"""The transport of the Engine API service: asyncio + h11 (HTTP/1.1 framing, keep-alive, chunked bodies, upgrade).

One coroutine per connection reads requests with h11 and hands each to ``routes.dispatch``, whose handlers return
one of the reply shapes below. Blocking engine calls run in worker threads (``asyncio.to_thread``); the event loop
itself never touches the store. Streams (logs, stats, events, progress) are sync iterators drained by a worker
thread into a bounded queue and written as chunks; a client that goes away stops the iterator (``close()``).
Hijacked connections (attach, exec start) leave h11 after the 101 (or the raw 200) and become byte pipes.

The service never forks: monitors and exec helpers are fresh processes (``engine.spawn``), so the service holds
no subreaper duty and no container is its child for longer than an exec.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import h11

MAX_JSON_BODY = 4 * 1024 * 1024  # a create body is a few KiB; more is refused with 413
MAX_UPLOAD_BODY = 64 * 1024 * 1024 * 1024  # tars (archive PUT, load, build, import): bounded by the disk
SPOOL = 1024 * 1024  # an upload bigger than this goes to a temporary file under the root's tmp/


class Request:
    """One parsed request. ``path`` is without the /v1.NN prefix; ``version`` is the API version asked for."""

    def __init__(self, method: str, target: str, headers: list[tuple[bytes, bytes]]) -> None:
        from urllib.parse import parse_qs, unquote, urlsplit

        u = urlsplit(target)
        self.method = method
        self.raw_path = unquote(u.path)
        self.query: dict[str, list[str]] = parse_qs(u.query, keep_blank_values=True)
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        self.path = self.raw_path
        self.version = ""
        self.body: Any = b""  # bytes, or a file object for uploads

    def before(self, version: str) -> bool:
        """Whether the client asked for an API version older than ``version`` ("1.44"): fields dockerd drops or
        adds at a version follow the one asked for."""
        def key(v: str) -> tuple[int, ...]:
            return tuple(int(x) for x in v.split("."))

        return bool(self.version) and key(self.version) < key(version)

    def arg(self, name: str, default: str = "") -> str:
        v = self.query.get(name)
        return v[-1] if v else default

    def flag(self, name: str, default: bool = False) -> bool:
        from dockyard.errors import InvalidArgument

        v = self.query.get(name)
        if not v:
            return default
        s = v[-1].lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off", ""):
            return False
        raise InvalidArgument(f"invalid boolean value {v[-1]!r} for query parameter {name}")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        from dockyard.errors import InvalidArgument

        v = self.arg(name)
        if v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise InvalidArgument(f"invalid value {v!r} for query parameter {name}: not an integer") from None

    def json(self, default: Any = None) -> Any:
        from dockyard import jsonc as json

        from dockyard.errors import InvalidArgument

        data = self.body if isinstance(self.body, bytes) else self.body.read()
        if not data.strip():
            return default
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidArgument(f"invalid JSON body: {e}") from None


class Reply:
    """A complete response: ``body`` bytes (JSON already encoded), or none (204, 304)."""

    def __init__(self, status: int = 200, body: bytes = b"", content_type: str = "application/json",
                 headers: list[tuple[str, str]] | None = None) -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = headers or []


class StreamReply:
    """A chunked response fed by a sync iterator of bytes (run in a worker thread)."""

    def __init__(self, chunks: Iterator[bytes], content_type: str = "application/json", status: int = 200,
                 headers: list[tuple[str, str]] | None = None) -> None:
        self.chunks, self.content_type, self.status = chunks, content_type, status
        self.headers = headers or []


class Hijack:
    """Take the connection over after the response head: ``run(reader, writer)`` pipes bytes both ways.

    With ``Upgrade: tcp`` in the request the head is ``101 UPGRADED``; without, dockerd's ``200`` with a raw-stream
    content type and no framing."""

    def __init__(self, run: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                 content_type: str = "application/vnd.docker.raw-stream") -> None:
        self.run, self.content_type = run, content_type


Handler = Callable[[Request], Awaitable[Any]]


class Server:
    def __init__(self, dispatch: Handler, idle: float, tmpdir: str) -> None:
        self.dispatch = dispatch
        self.idle = idle
        self.tmpdir = tmpdir
        self.active = 0
        self.last = time.monotonic()
        self.closing = asyncio.Event()

    # ---- connections -----------------------------------------------------------------------------------
    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.active += 1
        try:
            await self._serve(reader, writer)
        except (ConnectionError, h11.RemoteProtocolError, asyncio.IncompleteReadError):
            pass
        finally:
            self.active -= 1
            self.last = time.monotonic()
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            return ev

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        while True:
            try:
                ev = await self._next(conn, reader)
            except h11.RemoteProtocolError as e:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(conn, writer, _error_reply(400, f"bad request: {e}"))
                return
            if isinstance(ev, (h11.ConnectionClosed, h11.PAUSED)) or ev is h11.PAUSED:
                return
            if not isinstance(ev, h11.Request):
                return
            req = Request(ev.method.decode(), ev.target.decode("latin-1"), list(ev.headers))
            upload = _is_upload(req)
            limit = MAX_UPLOAD_BODY if upload else MAX_JSON_BODY
            declared = req.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:  # refused before reading a byte of it
                await self._send(conn, writer, _error_reply(413, f"request body larger than {limit} bytes"))
                return
            body, too_big = await self._body(conn, reader, limit, upload)
            if too_big:
                await self._send(conn, writer, _error_reply(413, f"request body larger than {limit} bytes"))
                return  # the rest of the body is not read: the connection closes
            req.body = body
            reply = await self.dispatch(req)
            if isinstance(reply, Hijack):
                await self._hijack(conn, writer, reader, req, reply)
                return
            if isinstance(reply, StreamReply):
                await self._stream(conn, writer, reply, head=(req.method == "HEAD"))
            else:
                await self._send(conn, writer, reply, head=(req.method == "HEAD"))
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return
            self.last = time.monotonic()

    async def _body(self, conn: h11.Connection, reader: asyncio.StreamReader, limit: int,
                    upload: bool) -> tuple[Any, bool]:
        parts: list[bytes] = []
        spool: Any = None
        size = 0
        while True:
            ev = await self._next(conn, reader)
            if isinstance(ev, h11.Data):
                size += len(ev.data)
                if size > limit:
                    if spool is not None:
                        spool.close()
                    return b"", True
                if spool is not None:
                    await asyncio.to_thread(spool.write, ev.data)
                else:
                    parts.append(bytes(ev.data))
                    if upload and size > SPOOL:
                        spool = tempfile.TemporaryFile(dir=self.tmpdir if os.path.isdir(self.tmpdir) else None)
                        spool.write(b"".join(parts))
                        parts = []
                continue
            if isinstance(ev, h11.EndOfMessage) or ev is h11.PAUSED:
                break
            if isinstance(ev, h11.ConnectionClosed):
                break
        if spool is not None:
            spool.seek(0)
            return spool, False
        data = b"".join(parts)
        if upload:
            import io

            return io.BytesIO(data), False
        return data, False

    # ---- responses --------------------------------------------------------------------------------------
    @staticmethod
    def _head(status: int, content_type: str, extra: list[tuple[str, str]], length: int | None) -> h11.Response:
        hs = [("Server", "dockyard"), ("Api-Version", MAX_VERSION), ("Ostype", "linux"),
              ("Docker-Experimental", "false"), *extra]
        if content_type and status not in (204, 304):
            hs.append(("Content-Type", content_type))
        if length is not None:
            hs.append(("Content-Length", str(length)))
        return h11.Response(status_code=status, headers=hs)

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, r: Reply, head: bool = False) -> None:
        length = None if r.status in (204, 304) else len(r.body)
        out = conn.send(self._head(r.status, r.content_type, r.headers, length)) or b""
        if r.body and not head and length is not None:
            out += conn.send(h11.Data(data=r.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        writer.write(out)
        await writer.drain()

    async def _stream(self, conn: h11.Connection, writer: asyncio.StreamWriter, r: StreamReply,
                      head: bool = False) -> None:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=16)
        stop = False

        def pump() -> None:
            try:
                for chunk in r.chunks:
                    if stop:
                        break
                    asyncio.run_coroutine_threadsafe(q.put(chunk), loop).result()
                asyncio.run_coroutine_threadsafe(q.put(None), loop).result()
            except BaseException as e:  # noqa: BLE001 - handed to the writer, which ends the stream
                try:
                    asyncio.run_coroutine_threadsafe(q.put(e), loop).result()
                except BaseException:  # noqa: BLE001 - the loop is gone
                    pass
            finally:
                close = getattr(r.chunks, "close", None)
                if close is not None:
                    close()

        first = await _first(r.chunks)
        if isinstance(first, BaseException):  # failed before anything was sent: a proper error reply
            await self._send(conn, writer, error_reply(first), head)
            return
        writer.write(conn.send(self._head(r.status, r.content_type, r.headers, None)) or b"")
        if head:
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            return
        if first:
            writer.write(conn.send(h11.Data(data=first)) or b"")
        await writer.drain()
        task = asyncio.ensure_future(asyncio.to_thread(pump))
        closed = asyncio.ensure_future(_closed(writer))
        try:
            while True:
                get = asyncio.ensure_future(q.get())
                done, _ = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:  # the client went away
                    get.cancel()
                    raise ConnectionResetError
                item = get.result()
                if item is None or isinstance(item, BaseException):
                    break
                if item:
                    writer.write(conn.send(h11.Data(data=item)) or b"")
                    await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
        finally:
            stop = True
            closed.cancel()
            while not task.done():  # let the pump finish its put (it checks ``stop`` between chunks)
                try:
                    q.get_nowait()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.01)
            try:
                q.get_nowait()
            except asyncio.QueueEmpty:
                pass

    async def _hijack(self, conn: h11.Connection, writer: asyncio.StreamWriter, reader: asyncio.StreamReader,
                      req: Request, h: Hijack) -> None:
        upgrade = req.headers.get("upgrade", "").lower() == "tcp"
        if upgrade and conn.their_state is h11.MIGHT_SWITCH_PROTOCOL:
            writer.write(conn.send(h11.InformationalResponse(status_code=101, headers=[
                ("Content-Type", h.content_type), ("Connection", "Upgrade"), ("Upgrade", "tcp"),
                ("Api-Version", MAX_VERSION)])) or b"")
        else:
            # dockerd's hijack without upgrade: a 200 head, then the raw stream until either side closes
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + h.content_type.encode() + b"\r\n"
                         b"Api-Version: " + MAX_VERSION.encode() + b"\r\n\r\n")
        await writer.drain()
        rest, _closed_flag = conn.trailing_data
        if rest:  # bytes the client sent right after the request (stdin typed ahead)
            _prepend(reader, bytes(rest))
        await h.run(reader, writer)


def _prepend(reader: asyncio.StreamReader, data: bytes) -> None:
    """Put bytes h11 read past the request head back in front of the reader's buffer."""
    buf = getattr(reader, "_buffer", None)
    if buf is not None:
        buf[0:0] = data


async def _first(it: Iterator[bytes]) -> bytes | BaseException:
    """The first chunk of a stream, computed in a thread: errors found before any output become replies."""
    def get() -> bytes | BaseException:
        try:
            return next(it)
        except StopIteration:
            return b""
        except BaseException as e:  # noqa: BLE001
            return e
    return await asyncio.to_thread(get)


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Completes when the peer has closed the connection (used while a stream is written)."""
    proto = writer.transport.get_protocol()
    waiter = getattr(proto, "_closed", None)
    if waiter is not None:
        try:
            await asyncio.shield(waiter)
        except BaseException:  # noqa: BLE001
            pass
        return
    await asyncio.Event().wait()


MIN_VERSION = "1.24"
MAX_VERSION = "1.45"


def _is_upload(req: Request) -> bool:
    p = req.path
    return (p.endswith("/archive") and req.method == "PUT") or p.endswith(("/images/load", "/build")) or \
        (p.endswith("/images/create") and "fromSrc" in req.query)


def _error_reply(status: int, message: str) -> Reply:
    from dockyard import jsonc as json

    return Reply(status, json.dumps({"message": message}).encode())


def error_reply(e: BaseException) -> Reply:
    """THE place errors become HTTP statuses: the engine's error tree by class, everything else 500."""
    from dockyard.errors import DockyardError

    if isinstance(e, DockyardError):
        return _error_reply(int(getattr(e, "http_status", 500)), str(e))
    if isinstance(e, (ValueError, TypeError, KeyError)) and getattr(e, "api_input", False):
        return _error_reply(400, str(e))
    if isinstance(e, OSError):
        from dockyard.errors import from_oserror

        return _error_reply(500, str(from_oserror(e.filename or "operation failed", e)))
    return _error_reply(500, f"internal error: {type(e).__name__}: {e}")


# ---- listening ------------------------------------------------------------------------------------------
DEFAULT_URI = "unix:///run/dockyard.sock"  # beside /run/dockyard (0700, root only), as /run/docker.sock


def listen(uri: str) -> tuple[socket.socket, str]:
    """A listening socket for ``uri`` (unix:///path or tcp://127.0.0.1:PORT); returns it and the path to remove."""
    from dockyard.errors import InvalidArgument

    if uri.startswith("unix://"):
        path = uri[len("unix://"):]
        if not path.startswith("/"):
            raise InvalidArgument(f"unix socket path must be absolute: {uri}")
        return _unix(path), path
    if uri.startswith("tcp://"):
        host, _, port = uri[len("tcp://"):].rstrip("/").rpartition(":")
        host = host.strip("[]")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgument(f"invalid TCP address {uri}: want tcp://127.0.0.1:PORT")
        import ipaddress

        try:
            ip = ipaddress.ip_address(host or "127.0.0.1")
        except ValueError:
            raise InvalidArgument(f"invalid TCP address {uri}: the host must be an IP address") from None
        if not ip.is_loopback:
            raise InvalidArgument(f"refusing to serve the Engine API on {host} without TLS: anyone who reaches it "
                                  "is root on this host; TLS is not supported yet, use a loopback address or a "
                                  "unix socket")
        fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((str(ip), int(port)))
        s.listen(128)
        return s, ""
    raise InvalidArgument(f"unsupported URI {uri!r}: want unix:///PATH or tcp://127.0.0.1:PORT")


def _docker_gid() -> int | None:
    import grp

    try:
        return grp.getgrnam("docker").gr_gid
    except KeyError:
        return None


def _unix(path: str) -> socket.socket:
    """Bind under a temporary name with the final mode and group, then rename into place (no window in which
    the socket is reachable with a wider mode). The directory is made 0755 when missing: the socket's own mode
    and group are the gate."""
    d = os.path.dirname(path)
    os.makedirs(d, 0o755, exist_ok=True)
    tmp = os.path.join(d, f".dockyard-{os.getpid()}.sock")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        s.bind(tmp)
    finally:
        os.umask(old)
    gid = _docker_gid()
    if gid is not None:
        os.chown(tmp, 0, gid)
        os.chmod(tmp, 0o660)
    else:
        os.chmod(tmp, 0o600)
    s.listen(128)
    os.rename(tmp, path)
    return s


async def serve_socket(sock: socket.socket, server: Server) -> None:
    if sock.family == socket.AF_UNIX:
        srv = await asyncio.start_unix_server(server.connection, sock=sock, limit=1 << 20)
    else:
        srv = await asyncio.start_server(server.connection, sock=sock, limit=1 << 20)
    async with srv:
        while not server.closing.is_set():
            if server.idle > 0 and server.active == 0 and time.monotonic() - server.last > server.idle:
                break
            try:
                await asyncio.wait_for(server.closing.wait(), timeout=min(1.0, server.idle) if server.idle else 3600)
            except asyncio.TimeoutError:
                pass
