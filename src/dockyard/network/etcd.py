"""A small client of etcd's v3 HTTP/JSON gateway (the grpc-gateway every etcd >= 3.3 serves on its client URLs).

Vocabulary: etcd keeps a flat, ordered map of byte keys to byte values; every change bumps the store's
*revision*. A *prefix* is a key range ``[prefix, prefix+1)``. A *lease* is a TTL'd handle that keys may be put
with: when it is not kept alive (``keepalive``) for its TTL, etcd deletes every key attached to it. A *txn* is an
atomic if/then/else over compares (``create_revision == 0``: the key does not exist). A *watch* streams every
change under a prefix from a revision on, so a watcher that reconnects resumes exactly where it stopped (or learns
that the revision was compacted and reads the prefix again).

The gateway wants keys and values base64-encoded and answers int64 fields as strings. Only the standard library
is used (``http.client``: one connection per call; a watch is one long streaming response), so importing this
module costs next to nothing and nothing of it is on the ``run`` path of bridge networks.

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
import json
import socket
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

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


class Etcd:
    """The cluster store at ``url`` (``etcd://...``); each call tries the endpoints in turn."""

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.endpoints = parse_url(url)
        self.timeout = timeout
        self.good = 0  # the endpoint that answered last

    def _unreachable(self, why: str) -> SystemFailure:
        return SystemFailure(f"cluster store {self.url} is unreachable: {why}")

    def _connections(self) -> Iterator[Any]:
        import http.client

        n = len(self.endpoints)
        for i in range(n):
            host, port = self.endpoints[(self.good + i) % n]
            self.good = (self.good + i) % n
            yield http.client.HTTPConnection(host, port, timeout=self.timeout)

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>``; the decoded answer. SystemFailure when no endpoint answers."""
        data = json.dumps(body).encode()
        why = "no endpoint"
        for conn in self._connections():
            try:
                conn.request("POST", "/v3/" + path, data, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, ValueError) as e:
                why = str(e) or type(e).__name__
                continue
            finally:
                conn.close()
            try:
                out = json.loads(raw or b"{}")
            except ValueError:
                raise self._unreachable(f"not an etcd v3 gateway (HTTP {resp.status})") from None
            if resp.status != 200:
                msg = out.get("error") or out.get("message") if isinstance(out, dict) else ""
                raise SystemFailure(f"cluster store {self.url}: {path}: {msg or 'HTTP ' + str(resp.status)}")
            return out if isinstance(out, dict) else {}
        raise self._unreachable(why)

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
        import http.client

        host, port = self.endpoints[self.good]
        conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                                   "start_revision": str(start_revision)}}
        try:
            conn.request("POST", "/v3/watch", json.dumps(body).encode(), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert conn.sock is not None
            conn.sock.settimeout(None)
            if holder is not None:
                holder[:] = [conn.sock]
            while True:
                line = resp.readline()
                if not line:
                    return
                msg = json.loads(line).get("result") or {}
                if msg.get("compact_revision") and int(msg["compact_revision"]) > 0:
                    raise Compacted(int(msg["compact_revision"]))
                for ev in msg.get("events") or []:
                    kv = ev.get("kv", {})
                    yield (ev.get("type", "PUT"), _unb64(kv.get("key")).decode(), _unb64(kv.get("value")),
                           int(kv.get("mod_revision", 0)))
        except (OSError, ValueError, http.client.HTTPException):
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


def delete_op(key: str, prefix: bool = False) -> dict[str, Any]:
    d = {"key": _b64(key)}
    if prefix:
        d["range_end"] = _b64(prefix_end(key))
    return {"request_delete_range": d}
