"""The embedded DNS server of a user-defined network (Docker's 127.0.0.11, here on the network's gateway address).

One small process per network, listening on ``<gateway>:53`` (UDP) on the host. A query from a container on the
network is answered from the store (SQLite, one read per query): an A query for the name, a ``--network-alias``,
the short ID or ``name.network`` of a running container sharing a user-defined network with the asking container
gets its addresses (AAAA: NOERROR, no records; PTR of such an address: the container's name). Every other query is
relayed to the host's resolvers (``/etc/resolv.conf`` without 127.x, or ``DOCKYARD_DNS_UPSTREAM`` =
``ip[:port],...``) and their answer is relayed back. Queries from outside the network's subnet are dropped.

Lifetime, without a single point of failure: whoever attaches a container to the network (``network.attach``)
calls ``ensure``; the server holds an exclusive ``flock`` on ``networks/<id>/dns.lock`` for its whole life, so a
lock that can be taken means no server runs, and the caller starts one, detached (double fork, setsid), handing it
the locked descriptor. The server exits when the network has had no running container for ``IDLE`` seconds or is
gone; ``network rm`` stops it (``stop``). When it dies, containers still resolve their peers through /etc/hosts.

The server process imports little (socket, select, sqlite3) to stay small.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

IDLE = 3.0  # seconds without a running container before the server exits
FORWARD_TIMEOUT = 2.0
TTL = 600
SCRIPT = "import sys; sys.path.insert(0, sys.argv[1]); from dockyard.network.dns import main; main(sys.argv[2:])"


def _dir(root: str, net_id: str) -> str:
    return os.path.join(root, "networks", net_id)


# ---- starting and stopping (called by dockyard commands) ----------------------------------------------------------
def ensure(root: str, net_id: str, upstream: str | None = None) -> bool:
    """Start the network's DNS server unless one runs; True when this call started it."""
    import fcntl

    d = _dir(root, net_id)
    os.makedirs(d, exist_ok=True)
    fd = os.open(os.path.join(d, "dns.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a server (or a starter) holds it
        # bound here, so that a container started right after this call finds the port open (its queries wait in
        # the socket's buffer until the server reads them)
        sock = _bind_gateway(root, net_id)
        try:
            _spawn(root, net_id, fd, os.environ.get("DOCKYARD_DNS_UPSTREAM", "") if upstream is None else upstream,
                   sock.fileno() if sock else -1)
        finally:
            if sock:
                sock.close()
        return True
    finally:
        os.close(fd)


def _bind_gateway(root: str, net_id: str) -> socket.socket | None:
    import sqlite3

    try:
        with sqlite3.connect(os.path.join(root, "dockyard.db"), timeout=5) as db:
            row = db.execute("SELECT gateway FROM networks WHERE id=?", (net_id,)).fetchone()
        db.close()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((row[0], 53))
    except OSError:
        s.close()
        return None  # the server retries (an exiting one may still hold it)
    return s


def _spawn(root: str, net_id: str, lockfd: int, upstream: str, sockfd: int) -> None:
    from dockyard.network.daemon import spawn

    spawn(SCRIPT, [root, net_id, upstream], os.path.join(_dir(root, net_id), "dns.err"),
          [lockfd] + ([sockfd] if sockfd >= 0 else []))  # the lock as fd 3, the bound socket as fd 4


def _holds_lock(root: str, net_id: str) -> bool:
    from dockyard.network.daemon import lock_held

    return lock_held(os.path.join(_dir(root, net_id), "dns.lock"))


def server_pid(root: str, net_id: str) -> int | None:
    """The running server's pid (None when none runs)."""
    if not _holds_lock(root, net_id):
        return None
    try:
        with open(os.path.join(_dir(root, net_id), "dns.pid")) as f:
            pid = int(f.read().split()[0])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"dockyard.network.dns" in cmd and net_id.encode() in cmd else None


def stop(root: str, net_id: str, timeout: float = 2.0) -> None:
    """Stop the network's server (``network rm``) and forget its directory."""
    import shutil
    import signal

    pid = server_pid(root, net_id)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        end = time.monotonic() + timeout
        while _holds_lock(root, net_id) and time.monotonic() < end:
            time.sleep(0.01)
    shutil.rmtree(_dir(root, net_id), ignore_errors=True)


# ---- the protocol -------------------------------------------------------------------------------------------------
def parse_query(data: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, lower-case name, qtype, end of the question) of a standard query with one question, else None."""
    if len(data) < 17:
        return None
    qid, flags, qd = struct.unpack_from("!HHH", data)
    if flags & 0x8000 or (flags >> 11) & 0xF or qd != 1:
        return None
    labels = []
    i = 12
    while True:
        if i >= len(data):
            return None
        n = data[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(data):
            return None
        labels.append(data[i:i + n].decode("ascii", "replace").lower())
        i += n
    if i + 4 > len(data):
        return None
    qtype, qclass = struct.unpack_from("!HH", data, i)
    if qclass not in (1, 255):
        return None
    return qid, flags, ".".join(labels), qtype, i + 4


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            b = label.encode("ascii", "replace")[:63]
            out += bytes([len(b)]) + b
    return out + b"\0"


def response(query: bytes, qend: int, rcode: int, answers: list[tuple[int, bytes]] = (),  # type: ignore[assignment]
             authoritative: bool = True) -> bytes:
    """A reply to ``query`` (question kept) with records (type, rdata) for the question's name."""
    qid, flags = struct.unpack_from("!HH", query)
    rflags = 0x8000 | (flags & 0x0100) | 0x0080 | (0x0400 if authoritative else 0) | rcode
    out = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), 0, 0) + query[12:qend]
    for rtype, rdata in answers:
        out += struct.pack("!HHHIH", 0xC00C, rtype, 1, TTL, len(rdata)) + rdata
    return out


def upstreams(spec: str = "") -> list[tuple[str, int]]:
    """``ip[:port],...`` or the host's resolv.conf nameservers (127.x skipped), Docker's 8.8.8.8 fallback."""
    out = []
    if spec:
        for item in spec.split(","):
            host, _, port = item.strip().partition(":")
            if host:
                out.append((host, int(port or 53)))
        return out
    try:
        with open("/etc/resolv.conf") as f:
            for ln in f:
                parts = ln.split()
                if parts[:1] == ["nameserver"] and len(parts) > 1 and "." in parts[1] \
                        and not parts[1].startswith("127."):
                    out.append((parts[1], 53))
    except OSError:
        pass
    return out or [("8.8.8.8", 53), ("8.8.4.4", 53)]


# ---- the server ---------------------------------------------------------------------------------------------------
PEERS = """
WITH me AS (SELECT container_id FROM endpoints WHERE network_id=:net AND ip=:src),
mine AS (SELECT e.network_id FROM endpoints e JOIN networks n ON n.id=e.network_id
         WHERE e.container_id IN (SELECT container_id FROM me) AND e.ip IS NOT NULL AND n.name!='bridge')
SELECT o.ip AS ip, o.aliases AS aliases, c.name AS name, c.id AS id, n.name AS net
FROM endpoints o JOIN mine m ON m.network_id=o.network_id JOIN networks n ON n.id=o.network_id
JOIN containers c ON c.id=o.container_id WHERE o.ip IS NOT NULL"""
LOOKUP = f"""WITH peers AS ({PEERS})
SELECT DISTINCT ip FROM peers p WHERE lower(p.name)=:q OR substr(p.id,1,12)=:q OR lower(p.name||'.'||p.net)=:q
OR EXISTS (SELECT 1 FROM json_each(p.aliases) WHERE lower(value)=:q OR lower(value||'.'||p.net)=:q)"""
REVERSE = f"WITH peers AS ({PEERS}) SELECT name, net FROM peers WHERE ip=:ip LIMIT 1"


class Server:
    def __init__(self, root: str, net_id: str, upstream: str) -> None:
        import sqlite3

        self.db = sqlite3.connect(os.path.join(root, "dockyard.db"), timeout=5, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.execute("PRAGMA query_only=1")
        self.root, self.net_id = root, net_id
        row = self.db.execute("SELECT gateway, subnet, name FROM networks WHERE id=?", (net_id,)).fetchone()
        if row is None:
            raise SystemExit(0)
        self.gateway, self.net_name = row[0], row[2]
        self.remote_cache: tuple[float, list[dict[str, object]]] = (0.0, [])
        addr, _, plen = row[1].partition("/")
        self.mask = (0xFFFFFFFF << (32 - int(plen))) & 0xFFFFFFFF
        self.net = struct.unpack("!I", socket.inet_aton(addr))[0] & self.mask
        self.upstreams = upstreams(upstream)
        self.pending: dict[int, tuple[tuple[str, int], int, bytes, int, float]] = {}
        self.sock: socket.socket | None = None
        self.inherited = True
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.bind(("0.0.0.0", 0))

    def bind(self, deadline: float = 3.0) -> bool:
        inherited, self.inherited = self.inherited, False
        try:  # the socket bound by the starter (``ensure``), on descriptor 4 when it could bind
            s = socket.socket(fileno=4) if inherited else None
            if s is not None and s.type == socket.SOCK_DGRAM and s.getsockname() == (self.gateway, 53):
                self.sock = s
                return True
            if s is not None:
                s.detach()
        except OSError:
            pass
        end = time.monotonic() + deadline
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((self.gateway, 53))
                self.sock = s
                return True
            except OSError:
                s.close()
                if time.monotonic() > end:
                    return False
                time.sleep(0.05)

    def in_subnet(self, ip: str) -> bool:
        try:
            return struct.unpack("!I", socket.inet_aton(ip))[0] & self.mask == self.net
        except OSError:
            return False

    def active(self) -> int:
        """Running containers on the network; -1 when the network (or the root) is gone."""
        try:
            if self.db.execute("SELECT 1 FROM networks WHERE id=?", (self.net_id,)).fetchone() is None:
                return -1
            return int(self.db.execute("SELECT count(*) FROM endpoints WHERE network_id=? AND ip IS NOT NULL",
                                       (self.net_id,)).fetchone()[0])
        except Exception:  # noqa: BLE001 - a removed root: stop
            return -1

    def answer(self, data: bytes, client: tuple[str, int]) -> bytes | None:
        """The local reply, or None to forward."""
        q = parse_query(data)
        if q is None:
            return None
        _qid, _flags, name, qtype, qend = q
        args = {"net": self.net_id, "src": client[0], "q": name.rstrip(".")}
        if qtype in (1, 28, 255):
            ips = [r[0] for r in self.db.execute(LOOKUP, args)] or self.remote(args["q"], client[0])
            if not ips:
                return None
            if qtype == 28:
                return response(data, qend, 0)
            return response(data, qend, 0, [(1, socket.inet_aton(ip)) for ip in ips])
        if qtype == 12 and name.endswith(".in-addr.arpa"):
            parts = name[:-len(".in-addr.arpa")].split(".")
            if len(parts) == 4:
                args["ip"] = ".".join(reversed(parts))
                row = self.db.execute(REVERSE, args).fetchone()
                if row:
                    return response(data, qend, 0, [(12, encode_name(f"{row[0]}.{row[1]}"))])
        return None

    def remote(self, q: str, src: str) -> list[str]:
        """An overlay's containers on other hosts (``remote.json``, kept by ``network.overlay_watch``), for a
        container of this network on this host."""
        path = os.path.join(_dir(self.root, self.net_id), "remote.json")
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return []
        if mtime != self.remote_cache[0]:
            from dockyard import jsonc as json

            try:
                with open(path) as f:
                    self.remote_cache = (mtime, list(json.load(f)))
            except (OSError, ValueError):
                return []
        if not self.db.execute("SELECT 1 FROM endpoints WHERE network_id=? AND ip=?", (self.net_id, src)).fetchone():
            return []
        out = []
        for r in self.remote_cache[1]:
            names = [str(r.get("name", "")), str(r.get("id", ""))[:12], *[str(a) for a in r.get("aliases") or []]]
            want = {n.lower() for n in names} | {f"{n.lower()}.{self.net_name.lower()}" for n in names}
            if q in want:
                out.append(str(r.get("ip")))
        return out

    def forward(self, data: bytes, client: tuple[str, int], index: int = 0) -> None:
        if len(self.pending) > 4096 or not self.upstreams:
            return
        while True:
            new = struct.unpack("!H", os.urandom(2))[0]
            if new not in self.pending:
                break
        orig = struct.unpack_from("!H", data)[0]
        self.pending[new] = (client, orig, data, index, time.monotonic() + FORWARD_TIMEOUT)
        try:
            self.up.sendto(struct.pack("!H", new) + data[2:], self.upstreams[index])
        except OSError:
            self.pending[new] = (client, orig, data, index, 0.0)

    def relay(self) -> None:
        data, addr = self.up.recvfrom(65535)
        if len(data) < 12 or (addr[0], addr[1]) not in self.upstreams:
            return
        p = self.pending.pop(struct.unpack_from("!H", data)[0], None)
        if p is None or self.sock is None:
            return
        client, orig = p[0], p[1]
        try:
            self.sock.sendto(struct.pack("!H", orig) + data[2:], client)
        except OSError:
            pass

    def expire(self) -> None:
        now = time.monotonic()
        for key, (client, orig, data, index, deadline) in list(self.pending.items()):
            if deadline > now:
                continue
            del self.pending[key]
            if index + 1 < len(self.upstreams):
                self.forward(data, client, index + 1)
                continue
            q = parse_query(data)
            if q is not None and self.sock is not None:  # SERVFAIL: nobody answered
                try:
                    self.sock.sendto(response(struct.pack("!H", orig) + data[2:], q[4], 2, authoritative=False),
                                     client)
                except OSError:
                    pass

    def serve_one(self) -> None:
        assert self.sock is not None
        try:
            data, client = self.sock.recvfrom(4096)
        except OSError:
            return
        if not self.in_subnet(client[0]):
            return  # another network's container (or the host): not ours to answer
        try:
            reply = self.answer(data, client)
        except Exception:  # noqa: BLE001 - a busy or changing store must not kill the server
            reply = None
        if reply is not None:
            try:
                self.sock.sendto(reply, client)
            except OSError:
                pass
        elif parse_query(data) is not None:
            self.forward(data, client)

    def run(self, lockfd: int) -> None:
        import select

        idle_since: float | None = None
        next_check = 0.0
        while True:
            assert self.sock is not None
            timeout = 0.5 if self.pending else 1.0
            ready, _, _ = select.select([self.sock, self.up], [], [], timeout)
            if self.sock in ready:
                self.serve_one()
            if self.up in ready:
                try:
                    self.relay()
                except OSError:
                    pass
            if self.pending:
                self.expire()
            now = time.monotonic()
            if now < next_check:
                continue
            next_check = now + 1.0
            n = self.active()
            if n > 0:
                idle_since = None
                continue
            if n == 0 and (idle_since is None or now - idle_since < IDLE):
                idle_since = idle_since or now
                continue
            # leaving: free the port and the lock first, then make sure nobody attached meanwhile
            self.sock.close()
            self.sock = None
            os.close(lockfd)
            if n < 0 or self.active() <= 0:
                return
            lockfd = _relock(self.root, self.net_id)
            if lockfd < 0 or not self.bind():
                return  # a new server took over
            _write_pid(self.root, self.net_id)
            idle_since = None


def _relock(root: str, net_id: str) -> int:
    from dockyard.network.daemon import try_lock

    return try_lock(os.path.join(_dir(root, net_id), "dns.lock"))


def _write_pid(root: str, net_id: str) -> None:
    path = os.path.join(_dir(root, net_id), "dns.pid")
    with open(path + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(path + ".tmp", path)


def main(argv: list[str]) -> None:
    """``ROOT NETWORK_ID UPSTREAM``, with the locked ``dns.lock`` on descriptor 3."""
    import signal

    root, net_id, upstream = argv[0], argv[1], argv[2] if len(argv) > 2 else ""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    srv = Server(root, net_id, upstream)
    if not srv.bind():
        sys.stderr.write(f"dockyard dns: cannot bind {srv.gateway}:53\n")
        return
    _write_pid(root, net_id)
    srv.run(3)
