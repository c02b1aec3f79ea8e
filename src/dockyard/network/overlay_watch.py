"""An overlay network's watcher on one host: keeps the host's lease alive and the VXLAN device in step with etcd.

One small detached process per (state root, overlay network), with the lifecycle of the embedded DNS server
(``network.dns``): whoever attaches a container to the overlay calls ``ensure``; the watcher holds an exclusive
``flock`` on ``networks/<id>/overlay.lock`` for its whole life (a lock that can be taken means none runs), and
exits a few seconds after the network has no running container left on this host (revoking the host lease and
removing the network's sandbox and firewall table, which the last container's release leaves to it).

Two threads:
- the *keeper* renews the host lease every TTL/3 (``lease/keepalive``) and watches the local store for the
  network's running containers; when the cluster store stops answering, or answers that the lease expired (the
  host was cut off longer than the TTL: its records are gone), it breaks the watch stream; and it deletes this
  host's records of containers with no local endpoint left (``drop_ghosts``: one put back by a resync that read
  the local store just before the container left);
- the *main* thread (re)registers the host (a new lease when needed) and puts its own containers' records back,
  reads every record of the network, programs the VXLAN device (``overlay.program``), then follows the watch from
  the next revision, reprogramming on every change. A broken stream, a compacted revision or an unreachable store
  start that loop again: a host cut off and reconnected converges.

Kernel state stays while the cluster store is down: running containers keep talking to the peers they knew.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

from dockyard import jsonc as json
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

IDLE = 3.0
SCRIPT = ("import sys; sys.path.insert(0, sys.argv[1]); from dockyard.network.overlay_watch import main; "
          "main(sys.argv[2:])")


def _dir(root: str, net_id: str) -> str:
    return os.path.join(root, "networks", net_id)


def ensure(root: str, net_id: str) -> bool:
    """Start the network's watcher unless one runs; True when this call started it."""
    import fcntl

    d = _dir(root, net_id)
    os.makedirs(d, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(d, "overlay.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        _spawn(root, net_id, fd)
        return True
    finally:
        os.close(fd)


def _spawn(root: str, net_id: str, lockfd: int) -> None:
    from dockyard.network.daemon import spawn

    spawn(SCRIPT, [root, net_id], os.path.join(_dir(root, net_id), "overlay.err"), [lockfd])  # the lock as fd 3


def running(root: str, net_id: str) -> bool:
    """Whether a watcher holds the network's lock."""
    from dockyard.network.daemon import lock_held

    return lock_held(os.path.join(_dir(root, net_id), "overlay.lock"))


def _log(msg: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} dockyard overlay: {msg}\n")
    sys.stderr.flush()


class Watcher:
    def __init__(self, root: str, net_id: str) -> None:
        import sqlite3

        from dockyard.network import overlay
        from dockyard.network.store import Network

        self.root, self.net_id = root, net_id
        self.db = sqlite3.connect(os.path.join(root, "dockyard.db"), timeout=5, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.execute("PRAGMA query_only=1")
        row = self.db.execute("SELECT * FROM networks WHERE id=?", (net_id,)).fetchone()
        if row is None:
            raise SystemExit(0)
        self.net = Network(row)
        self.cl = overlay.cluster_of(self.net, root)
        self.lease = 0
        self.holder: list[socket.socket] = []
        self.lock = threading.Lock()
        self.recs: dict[str, dict[str, Any]] = {}  # the network's records as last followed (main thread)

    def local(self) -> dict[str, dict[str, Any]] | None:
        """This host's running containers on the network (id -> record), None when the network row is gone."""
        from dockyard.network.store import mac_for

        try:
            if self.db.execute("SELECT 1 FROM networks WHERE id=?", (self.net_id,)).fetchone() is None:
                return None
            rows = self.db.execute(
                "SELECT e.container_id, e.ip, e.aliases, c.name FROM endpoints e JOIN containers c ON"
                " c.id=e.container_id WHERE e.network_id=? AND e.ip IS NOT NULL", (self.net_id,)).fetchall()
        except Exception:  # noqa: BLE001 - a removed root
            return None
        return {r[0]: {"host": self.cl.advertise, "ip": r[1], "mac": mac_for(r[1]), "name": r[3],
                       "aliases": json.loads(r[2] or "[]")} for r in rows}

    def break_watch(self) -> None:
        for s in self.holder:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ---- main thread ---------------------------------------------------------------------------------------
    def register(self, recs: dict[str, dict[str, Any]]) -> None:
        """A live host lease, and exactly this host's running containers recorded under it."""
        from dockyard.network import etcd as e
        from dockyard.network import overlay

        kv, P, nid = self.cl.kv, overlay.P, self.net_id
        key = f"{P}host/{nid}/{self.cl.advertise}"
        got = kv.get(key)
        lease = int(got[0]) if got else 0
        if not lease or kv.keepalive(lease) <= 0:
            lease = kv.grant(overlay.lease_ttl())
            kv.put(key, str(lease), lease)
            _log(f"registered with lease {lease:x}")
        with self.lock:
            self.lease = lease
        local = self.local() or {}
        for cid, rec in local.items():
            ipkey = f"{P}ip/{nid}/{rec['ip']}"
            owner = kv.get(ipkey)
            if owner is not None and owner[0].decode().split()[0] != cid:
                _log(f"address {rec['ip']} of container {cid[:12]} was taken meanwhile by {owner[0].decode()[:12]}")
                continue
            kv.txn([], [e.put_op(ipkey, f"{cid} {self.cl.advertise}"),
                        e.put_op(f"{P}ep/{nid}/{cid}", json.dumps(rec), lease)])
        self.drop_ghosts(recs, local)

    def drop_ghosts(self, recs: dict[str, dict[str, Any]], local: dict[str, dict[str, Any]]) -> None:
        """Delete this host's records of containers that have no local endpoint: a record is put only after the
        endpoint is made (``overlay.join``) and deleted before it goes, so such a record is a ghost (one that
        ``register`` put back from a local read made just before the container left); the address's claim with
        it while it is still the container's."""
        from dockyard.network import etcd as e
        from dockyard.network import overlay

        P, nid = overlay.P, self.net_id
        for cid, rec in list(recs.items()):
            if rec.get("host") == self.cl.advertise and cid not in local:
                ipkey, epkey = f"{P}ip/{nid}/{rec.get('ip')}", f"{P}ep/{nid}/{cid}"
                self.cl.kv.txn([e.value_is(ipkey, f"{cid} {self.cl.advertise}")],
                               [e.delete_op(epkey), e.delete_op(ipkey)], [e.delete_op(epkey)])

    def program(self, recs: dict[str, dict[str, Any]]) -> None:
        from dockyard.network import overlay

        try:
            overlay.program(self.root, self.net, self.cl, recs)
        except OSError as e:
            _log(f"programming the VXLAN device failed: {e}")

    def follow(self) -> None:
        from dockyard.errors import SystemFailure
        from dockyard.network import etcd, overlay

        prefix = f"{overlay.P}ep/{self.net_id}/"
        while True:
            try:
                recs = overlay.records(self.cl, self.net_id)[0]
                self.register(recs)
                recs, rev = overlay.records(self.cl, self.net_id)
                self.recs = recs
                self.program(recs)
                for kind, key, value, _rev in self.cl.kv.watch(prefix, rev + 1, self.holder):
                    cid = key.rpartition("/")[2]
                    if kind == "DELETE":
                        recs.pop(cid, None)
                    else:
                        try:
                            recs[cid] = json.loads(value)
                        except ValueError:
                            continue
                    self.program(recs)
            except etcd.Compacted:
                continue
            except SystemFailure as e:
                _log(str(e))
            time.sleep(0.5)

    # ---- keeper thread -------------------------------------------------------------------------------------
    def keep(self, lockfd: int) -> None:
        from dockyard.errors import SystemFailure
        from dockyard.network import overlay

        period = max(overlay.lease_ttl() / 3.0, 0.5)
        idle_since: float | None = None
        failing = False
        while True:
            time.sleep(min(period, 1.0))
            recs = dict(self.recs)  # before the local read: a record in it was made after its local endpoint
            local = self.local()
            now = time.monotonic()
            if local is not None:
                try:
                    self.drop_ghosts(recs, local)
                except SystemFailure:
                    pass
            if local:
                idle_since = None
            elif local is None or (idle_since is not None and now - idle_since >= IDLE):
                os.close(lockfd)  # leave: the lock first, then make sure nobody attached meanwhile
                if self.local():
                    lockfd = _relock(self.root, self.net_id)
                    if lockfd >= 0:
                        continue
                self.leave()
                os._exit(0)
            else:
                idle_since = idle_since or now
            with self.lock:
                lease = self.lease
                due = getattr(self, "_next", 0.0) <= now
            if not lease or not due:
                continue
            self._next = now + period
            try:
                ttl = self.cl.kv.keepalive(lease)
            except SystemFailure as e:
                if not failing:
                    _log(f"{e}: kernel state kept, retrying")
                failing = True
                self.break_watch()
                continue
            if ttl <= 0 or failing:
                _log("lease expired: registering again" if ttl <= 0 else "cluster store reachable again: resync")
                failing = False
                self.break_watch()

    def leave(self) -> None:
        """Revoke the host lease; tear the network's kernel side down (sandbox, gateway veth, firewall table) when
        no local container is on it (the last one's release left it to us)."""
        from dockyard.errors import SystemFailure
        from dockyard.network import overlay
        from dockyard.network.store import HostLock

        with self.lock:
            lease = self.lease
        try:
            if lease:
                self.cl.kv.revoke(lease)
        except SystemFailure:
            pass
        try:
            with HostLock():  # an attach allocates its endpoint and makes the devices under this lock
                if self.db.execute("SELECT 1 FROM endpoints WHERE network_id=? AND ip IS NOT NULL",
                                   (self.net_id,)).fetchone() is None:
                    overlay._teardown(self.root, self.net_id)
        except Exception as e:  # noqa: BLE001 - a removed root; the next attach or network rm cleans up
            _log(f"teardown failed: {e}")


def _relock(root: str, net_id: str) -> int:
    from dockyard.network.daemon import try_lock

    return try_lock(os.path.join(_dir(root, net_id), "overlay.lock"))


def main(argv: list[str]) -> None:
    """``ROOT NETWORK_ID``, with the locked ``overlay.lock`` on descriptor 3."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    w = Watcher(argv[0], argv[1])
    with open(os.path.join(_dir(argv[0], argv[1]), "overlay.pid.tmp"), "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(os.path.join(_dir(argv[0], argv[1]), "overlay.pid.tmp"),
               os.path.join(_dir(argv[0], argv[1]), "overlay.pid"))
    threading.Thread(target=w.keep, args=(3,), daemon=True).start()
    w.follow()
