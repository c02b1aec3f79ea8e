"""A small client of etcd's v3 HTTP/JSON gateway (the grpc-gateway every etcd >= 3.3 serves on its client URLs).

Vocabulary: etcd keeps a flat, ordered map of byte keys to byte values; every change bumps the store's
*revision*. A *prefix* is a key range ``[prefix, prefix+1)``. A *lease* is a TTL'd handle that keys may be put
with: when it is not kept alive (``keepalive``) for its TTL, etcd deletes every key attached to it. A *txn* is an
atomic if/then/else over compares (``create_revision == 0``: the key does not exist). A *watch* streams every
change under a prefix from a revision on, so a watcher that reconnects resumes exactly where it stopped (or learns
that the revision was compacted and reads the prefix again).

The gateway wants keys and values base64-encoded and answers int64 fields as strings. Only the standard library
is used, and of it only ``socket`` and ``json`` (a small HTTP/1.1 client, ``_Conn``: one kept-alive connection for
the calls, a watch is one long chunked response on its own connection), so importing this module costs next to
nothing and nothing of it is on the ``run`` path of bridge networks. Reads that belong together are one ``read``
(a transaction of ranges: one round trip, one revision).

Example::

    kv = Etcd("etcd://10.0.0.5:2379,10.0.0.6:2379")
    lease = kv.grant(10)
    if kv.create("/dockyard/x", b"1", lease):   # False: someone made it first
        ...
    for key, value in kv.range_prefix("/dockyard/")[0]:
        ...

Any failure to reach every endpoint raises ``SystemFailure`` with one line naming the cluster store.
"""

from __future__ import annotations

import base64
import os
import socket
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

from dockyard import jsonc as json
from dockyard.errors import InvalidArgument, SystemFailure

TIMEOUT = 3.0


def _b64(b: bytes | str) -> str:
    return base64.b64encode(b.encode() if isinstance(b, str) else b).decode()


def _unb64(s: str | None) -> bytes:
    return base64.b64decode(s or "")


def prefix_end(prefix: bytes | str) -> bytes:
    """The end of the range of keys starting with ``prefix`` (its last byte plus one)."""
    p = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\0"


def parse_url(url: str) -> list[tuple[str, int]]:
    """``etcd://HOST:PORT[,HOST:PORT]`` -> [(host, port), ...]; hosts are IPv4 addresses or DNS names."""
    from dockyard.network import checks

    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "etcd" or not rest:
        raise InvalidArgument(f"invalid cluster store {url!r}: expected etcd://HOST:PORT[,HOST:PORT]")
    out = []
    for item in rest.rstrip("/").split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = port, "2379"
        if not host or not all(c.isalnum() or c in ".-" for c in host):
            raise InvalidArgument(f"invalid cluster store {url!r}: bad host {host!r}")
        out.append((host, checks.port(port, "cluster store port")))
    return out


class _Conn:
    """One HTTP/1.1 connection to an endpoint, kept open between requests (keep-alive). ``http.client`` is not
    used: importing it (email, ssl) cost ~45 ms of an overlay attach on the bench, more than every etcd call of
    it together. Speaks only what the gateway answers: a status line, headers, then a body by ``Content-Length``,
    ``chunked`` or up to the close."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.reusable = True
        self.pid = os.getpid()  # a forked child does not share the parent's connection (answers would cross)
        self.answered = False  # a byte of the answer came (a request that failed before may be sent again)

    def close(self) -> None:
        self.reusable = False
        self.sock.close()

    def send(self, path: str, body: bytes) -> None:
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.answered = False
        self.sock.sendall(head.encode() + body)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the cluster store closed the connection")
        self.answered = True
        self.buf += data

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > 65536:
                raise ValueError("HTTP line too long")
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def head(self) -> tuple[int, dict[str, str]]:
        """The status and the (lower-cased) headers of the next response."""
        parts = self._line().split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ValueError("not an HTTP response")
        headers = {}
        while line := self._line():
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("connection", "").lower() == "close" or parts[0] == b"HTTP/1.0":
            self.reusable = False
        return int(parts[1]), headers

    def chunks(self, headers: dict[str, str]) -> Iterator[bytes]:
        """The body, piece by piece as it arrives (a watch is one endless chunked body)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers
                        pass
                    return
                yield self._exact(size)
                self._exact(2)
        elif "content-length" in headers:
            yield self._exact(int(headers["content-length"]))
        else:  # up to the close
            self.reusable = False
            while True:
                try:
                    self._fill()
                except ConnectionResetError:
                    break
                data, self.buf = self.buf, b""
                yield data
            yield self.buf


class Etcd:
    """The cluster store at ``url`` (``etcd://...``); each call tries the endpoints in turn. One connection is kept
    open for the next call (calls from several threads take turns on it; a forked child makes its own)."""

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        import _thread

        self.url = url
        self.endpoints = parse_url(url)
        self.timeout = timeout
        self.good = 0  # the endpoint that answered last
        self.conn: _Conn | None = None
        self.lock = _thread.allocate_lock()
        self.connects = 0  # connections made (the tests check that calls share one)

    def _unreachable(self, why: str) -> SystemFailure:
        return SystemFailure(f"cluster store {self.url} is unreachable: {why}")

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def _connect(self, i: int) -> _Conn:
        host, port = self.endpoints[i]
        self.connects += 1
        return _Conn(host, port, self.timeout)

    def _roundtrip(self, i: int, path: str, data: bytes) -> tuple[int, bytes]:
        """One request on the kept connection (to endpoint ``i``), or a new one. A kept connection that turns out
        closed before any answer came (the server dropped it while idle) is replaced once; the request had not
        reached it."""
        conn, fresh = self.conn, False
        if conn is not None and conn.pid != os.getpid():
            conn.sock.close()  # this process's copy of the descriptor only: the parent's connection stays
            conn = self.conn = None
        if conn is None or self.endpoints[i] != (conn.host, conn.port):
            if conn is not None:
                conn.close()
            conn, fresh = self._connect(i), True
        self.conn = None
        while True:
            try:
                conn.send(path, data)
                status, headers = conn.head()
                raw = b"".join(conn.chunks(headers))
            except ConnectionError:
                conn.close()
                if fresh or conn.answered:
                    raise
                conn, fresh = self._connect(i), True
                continue
            except BaseException:
                conn.close()
                raise
            if conn.reusable:
                self.conn = conn
            else:
                conn.close()
            return status, raw

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>``; the decoded answer. SystemFailure when no endpoint answers."""
        data = json.dumps(body).encode()
        why = "no endpoint"
        n = len(self.endpoints)
        with self.lock:
            for k in range(n):
                i = (self.good + k) % n
                try:
                    status, raw = self._roundtrip(i, "/v3/" + path, data)
                except (OSError, ValueError) as e:
                    why = str(e) or type(e).__name__
                    continue
                self.good = i
                break
            else:
                raise self._unreachable(why)
        try:
            out = json.loads(raw or b"{}")
        except ValueError:
            raise self._unreachable(f"not an etcd v3 gateway (HTTP {status})") from None
        if status != 200:
            msg = out.get("error") or out.get("message") if isinstance(out, dict) else ""
            raise SystemFailure(f"cluster store {self.url}: {path}: {msg or 'HTTP ' + str(status)}")
        return out if isinstance(out, dict) else {}

    # ---- keys ------------------------------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, int] | None:
        """(value, lease) of ``key``, or None."""
        kvs = self.call("kv/range", {"key": _b64(key)}).get("kvs") or []
        return (_unb64(kvs[0].get("value")), int(kvs[0].get("lease", 0))) if kvs else None

    def range_prefix(self, prefix: str) -> tuple[list[tuple[str, bytes]], int]:
        """Every (key, value) under ``prefix``, and the store's revision of that read."""
        r = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))})
        kvs = [(_unb64(kv["key"]).decode(), _unb64(kv.get("value"))) for kv in r.get("kvs") or []]
        return kvs, int(r.get("header", {}).get("revision", 0))

    def count_prefix(self, prefix: str) -> int:
        r = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)), "count_only": True})
        return int(r.get("count", 0))

    def read(self, *ranges: tuple[str, bool]) -> tuple[list[dict[str, bytes]], int]:
        """Several reads in one round trip, all at one revision (a transaction of ranges, no compare): for each
        ``(key, prefix)`` the {key: value} it holds (``prefix``: every key under it); and that revision."""
        ops = [{"request_range": {"key": _b64(k), **({"range_end": _b64(prefix_end(k))} if p else {})}}
               for k, p in ranges]
        r = self.call("kv/txn", {"compare": [], "success": ops, "failure": []})
        out = []
        for resp in r.get("responses") or []:
            kvs = (resp.get("response_range") or {}).get("kvs") or []
            out.append({_unb64(kv["key"]).decode(): _unb64(kv.get("value")) for kv in kvs})
        if len(out) != len(ranges):
            raise SystemFailure(f"cluster store {self.url}: kv/txn: {len(out)} answers to {len(ranges)} reads")
        return out, int(r.get("header", {}).get("revision", 0))

    def put(self, key: str, value: bytes | str, lease: int = 0) -> None:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        self.call("kv/put", body)

    def delete(self, key: str, prefix: bool = False) -> int:
        body = {"key": _b64(key)}
        if prefix:
            body["range_end"] = _b64(prefix_end(key))
        return int(self.call("kv/deleterange", body).get("deleted", 0))

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]] | None = None) -> bool:
        """Atomically: when every compare holds, the ``success`` operations (True), else the ``failure`` ones."""
        r = self.call("kv/txn", {"compare": compare, "success": success, "failure": failure or []})
        return bool(r.get("succeeded"))

    def create(self, key: str, value: bytes | str, lease: int = 0) -> bool:
        """Put ``key`` only if it does not exist (one txn); False when it does."""
        return self.txn([absent(key)], [put_op(key, value, lease)])

    # ---- leases ----------------------------------------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        return int(self.call("lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease: int) -> int:
        """Renew ``lease``; its TTL (0: it had expired, its keys are gone)."""
        r = self.call("lease/keepalive", {"ID": str(lease)})
        return int((r.get("result") or r).get("TTL", 0))

    def revoke(self, lease: int) -> None:
        try:
            self.call("lease/revoke", {"ID": str(lease)})
        except SystemFailure as e:
            if "not found" not in str(e):
                raise

    # ---- watch -----------------------------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, holder: list[socket.socket] | None = None
              ) -> Iterator[tuple[str, str, bytes, int]]:
        """Events under ``prefix`` from ``start_revision`` on: (``PUT``|``DELETE``, key, value, revision).

        Blocks between events. Ends (returns) when the stream breaks; raises ``Compacted`` when the revision is
        gone. ``holder`` receives the socket, so that another thread can break the stream (``shutdown``)."""
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                                   "start_revision": str(start_revision)}}
        try:
            conn = self._connect(self.good)
        except OSError:
            return
        try:
            conn.send("/v3/watch", json.dumps(body).encode())
            status, headers = conn.head()
            if status != 200:
                return
            conn.sock.settimeout(None)
            if holder is not None:
                holder[:] = [conn.sock]
            pending = b""
            for data in conn.chunks(headers):
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    msg = json.loads(line).get("result") or {}
                    if msg.get("compact_revision") and int(msg["compact_revision"]) > 0:
                        raise Compacted(int(msg["compact_revision"]))
                    for ev in msg.get("events") or []:
                        kv = ev.get("kv", {})
                        yield (ev.get("type", "PUT"), _unb64(kv.get("key")).decode(), _unb64(kv.get("value")),
                               int(kv.get("mod_revision", 0)))
        except (OSError, ValueError):
            return
        finally:
            conn.close()


class Compacted(Exception):
    """The watch's start revision was compacted away: read the prefix again."""


def absent(key: str) -> dict[str, Any]:
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def put_op(key: str, value: bytes | str, lease: int = 0) -> dict[str, Any]:
    p: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        p["lease"] = str(lease)
    return {"request_put": p}


def value_is(key: str, value: bytes | str) -> dict[str, Any]:
    """A compare: ``key`` exists with exactly ``value``."""
    return {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}


def delete_op(key: str, prefix: bool = False) -> dict[str, Any]:
    d = {"key": _b64(key)}
    if prefix:
        d["range_end"] = _b64(prefix_end(key))
    return {"request_delete_range": d}
