"""Networks, their address allocations (IPAM) and published ports, in the root's SQLite store.

Vocabulary:
- a *network* is a Linux bridge with a subnet; the bridge's own address is the *gateway*. ``bridge`` is the
  default network (Docker's name), created in the store on first use; others come from ``network create``.
  ``host`` and ``none`` are not stored: they are modes of a container, not networks with addresses.
- an *endpoint* is a container's attachment to a network: its aliases, the address it asked for (``--ip``) and,
  while it runs, the address it holds and the host end of its veth pair. An address is handed out inside a write
  transaction and guarded by ``UNIQUE(network_id, ip)``: two concurrent ``run``s can never get the same one.
- a *published port* maps (host port, protocol) to a container's port; the primary key makes it exclusive in a root,
  and a socket bound on the host port (held by the container's monitor) makes it exclusive on the host.

Kernel objects (bridge, veth, firewall) are made by ``network.bridge`` and ``network.attach``; this module is only
the bookkeeping, usable without root.
"""

from __future__ import annotations

import os
import socket
import struct
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard import jsonc as json
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.rootless import run_dir as _run_dir
from dockyard.state.db import DEFAULT_ROOT, Store

DEFAULT_NAME = "bridge"
PSEUDO = ("host", "none")  # network modes shown by ``network ls`` that have no bridge
GROUP = 0x6479  # interface group of every dockyard bridge: the firewall isolates networks by it
LOCK = _run_dir() + "/network.lock"


def ip2int(ip: str) -> int:
    try:
        return int(struct.unpack("!I", socket.inet_pton(socket.AF_INET, ip))[0])
    except OSError:
        raise InvalidArgument(f"invalid IP address: {ip}") from None


def int2ip(n: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", n & 0xFFFFFFFF))


def parse_cidr(s: str, what: str = "subnet") -> tuple[int, int]:
    """``"172.18.0.0/16"`` -> (network as int, prefix length); the host bits must be zero."""
    addr, sep, plen = s.partition("/")
    if not sep or not (plen.isascii() and plen.isdigit()) or not 0 <= int(plen) <= 32 or addr.count(".") != 3:
        raise InvalidArgument(f"invalid {what} {s}: invalid CIDR address")
    n, p = ip2int(addr), int(plen)
    mask = _mask(p)
    if n & ~mask & 0xFFFFFFFF:
        raise InvalidArgument(f"invalid {what} {s}: it should be {int2ip(n & mask)}/{p}")
    return n, p


def _mask(plen: int) -> int:
    return (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    m = _mask(min(a[1], b[1]))
    return a[0] & m == b[0] & m


def mac_for(ip: str) -> str:
    """Docker's rule: 02:42 followed by the four bytes of the IPv4 address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in socket.inet_aton(ip))


class Network:
    __slots__ = ("id", "name", "driver", "bridge", "subnet", "gateway", "ip_range", "internal", "labels", "options",
                 "created", "own_bridge")

    def __init__(self, r: Any) -> None:
        self.id, self.name, self.driver, self.bridge = r["id"], r["name"], r["driver"], r["bridge"]
        self.subnet, self.gateway, self.ip_range = r["subnet"], r["gateway"], r["ip_range"]
        self.internal = bool(r["internal"])
        self.labels: dict[str, str] = json.loads(r["labels"])
        self.options: dict[str, str] = json.loads(r["options"])
        self.created: float = r["created"]
        # False: the bridge existed before ``network create`` (a host bridge it adopted): never deleted by dockyard
        self.own_bridge = bool(r["own_bridge"]) if "own_bridge" in r.keys() else True

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.partition("/")[2])

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_NAME

    @property
    def broadcast(self) -> str:
        n, p = parse_cidr(self.subnet)
        return int2ip(n | (~_mask(p) & 0xFFFFFFFF))


def default_bridge_name(root: str) -> str:
    """``dockyard0`` for the default root; another root gets its own bridge (removed when unused)."""
    if os.path.abspath(root) == DEFAULT_ROOT:
        return "dockyard0"
    import zlib

    return f"dyd{zlib.crc32(os.path.abspath(root).encode()):08x}"


def candidate_subnets() -> list[tuple[int, int]]:
    """Docker's default pools: 172.17-31.0.0/16, then 192.168.N.0/20."""
    return [(ip2int(f"172.{i}.0.0"), 16) for i in range(17, 32)] + \
        [(ip2int(f"192.168.{i}.0"), 20) for i in range(0, 256, 16)]


class HostLock:
    """An exclusive lock over bridge creation/removal and subnet choice, shared by every root on the host."""

    def __enter__(self) -> HostLock:
        import fcntl

        os.makedirs(os.path.dirname(LOCK), exist_ok=True)
        self.fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


class NetworkStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- networks ---------------------------------------------------------------------------------------------
    def get(self, ref: str, _synced: bool = False) -> Network:
        if ref == DEFAULT_NAME:
            return self.default()
        rows = self.store.query("SELECT * FROM networks WHERE name=? OR id=?", (ref, ref))
        if not rows and len(ref) >= 1 and all(c in "0123456789abcdef" for c in ref):
            rows = self.store.query("SELECT * FROM networks WHERE id LIKE ?", (ref + "%",))
            if len(rows) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(rows)} matches found based on ID prefix)")
        if not rows and not _synced:
            from dockyard.state.config import cluster_settings

            if cluster_settings(self.store.root)[0]:  # an overlay made on another host of the cluster
                from dockyard.network import overlay

                overlay.sync(self.store, strict=True)
                return self.get(ref, _synced=True)
        if not rows:
            raise NotFound(f"network {ref} not found")
        rows = [r for r in rows if r["name"] == ref] or rows  # a name wins over an ID prefix
        return Network(rows[0])

    def list(self) -> list[Network]:
        self.default()
        from dockyard.state.config import cluster_settings

        if cluster_settings(self.store.root)[0]:  # the cluster's overlays, as every host sees them
            from dockyard.network import overlay

            overlay.sync(self.store)
        return [Network(r) for r in self.store.query("SELECT * FROM networks ORDER BY created")]

    def default(self) -> Network:
        rows = self.store.query("SELECT * FROM networks WHERE name=?", (DEFAULT_NAME,))
        if rows:
            return Network(rows[0])
        try:
            return self.create(DEFAULT_NAME, bridge=default_bridge_name(self.store.root),
                               options={"com.docker.network.bridge.default_bridge": "true",
                                        "com.docker.network.bridge.enable_icc": "true",
                                        "com.docker.network.bridge.enable_ip_masquerade": "true",
                                        "com.docker.network.bridge.name": default_bridge_name(self.store.root)},
                               kernel=False)
        except Conflict:  # made by a concurrent command meanwhile
            return Network(self.store.query("SELECT * FROM networks WHERE name=?", (DEFAULT_NAME,))[0])

    def pick_subnet(self, exclude: set[str] = frozenset()) -> str:  # type: ignore[assignment]
        from dockyard.network.netlink import host_routes

        used = [parse_cidr(r["subnet"]) for r in self.store.query("SELECT subnet FROM networks")
                if r["subnet"] not in exclude]
        used += [(n, bin(m).count("1")) for n, m in host_routes()]
        for cand in candidate_subnets():
            if not any(overlaps(cand, u) for u in used):
                return f"{int2ip(cand[0])}/{cand[1]}"
        raise Conflict("could not find an available, non-overlapping IPv4 address pool among the defaults to "
                       "assign to the network")

    def create(self, name: str, *, subnet: str = "", gateway: str = "", ip_range: str = "", internal: bool = False,
               labels: dict[str, str] | None = None, options: dict[str, str] | None = None, bridge: str = "",
               kernel: bool = True) -> Network:
        """Record a network and (``kernel``) make its bridge; Docker's checks and messages."""
        from dockyard.ids import new_id

        if name in PSEUDO or (name == DEFAULT_NAME and bridge != default_bridge_name(self.store.root)):
            raise Conflict(f"network with name {name} already exists" if name != "none" and name != "host" else
                           f"operation is not permitted on predefined {name} network ")
        from dockyard.network import checks

        nid = new_id()
        options = dict(options or {})
        bridge = checks.ifname(bridge or options.get("com.docker.network.bridge.name") or "dy-" + nid[:12])
        with HostLock():
            if self.store.query("SELECT 1 FROM networks WHERE name=?", (name,)):
                raise Conflict(f"network with name {name} already exists")
            own = True
            if kernel:
                from dockyard.network.netlink import Netlink

                with Netlink() as nl:
                    link = nl.link(bridge)
                if link is not None and link[1] != "bridge":
                    raise Conflict(f"cannot use {bridge} as the network's bridge: it is an existing host interface "
                                   f"and not a bridge ({link[1] or 'device'})")
                own = link is None  # an existing bridge is used, and left in place by network rm
            if subnet:
                sn = parse_cidr(subnet)
                for r in self.store.query("SELECT name, subnet FROM networks"):
                    if overlaps(sn, parse_cidr(r["subnet"])):
                        raise Conflict("invalid pool request: Pool overlaps with other one on this address space")
            else:
                if gateway or ip_range:
                    raise InvalidArgument("no matching subnet for " + ("gateway " + gateway if gateway else
                                                                      "range " + ip_range))
                subnet = self.pick_subnet()
                sn = parse_cidr(subnet)
            if sn[1] > 30:
                raise InvalidArgument(f"invalid subnet {subnet}: too small for a network")
            m = _mask(sn[1])
            if gateway:
                if ip2int(gateway) & m != sn[0]:
                    raise InvalidArgument(f"no matching subnet for gateway {gateway}")
            else:
                gateway = int2ip(sn[0] + 1)
            if ip_range:
                rn = parse_cidr(ip_range, "ip-range")
                if rn[1] < sn[1] or rn[0] & m != sn[0]:
                    raise InvalidArgument(f"no matching subnet for range {ip_range}")
            row = {"id": nid, "name": name, "driver": "bridge", "bridge": bridge, "subnet": subnet,
                   "gateway": gateway, "ip_range": ip_range, "internal": int(internal),
                   "labels": json.dumps(labels or {}), "options": json.dumps(options), "created": time.time(),
                   "own_bridge": int(own)}
            from sqlite3 import IntegrityError

            try:
                with self.store.write() as cur:
                    cur.execute("INSERT INTO networks (id, name, driver, bridge, subnet, gateway, ip_range, internal,"
                                " labels, options, created, own_bridge) VALUES (:id, :name, :driver, :bridge, :subnet,"
                                " :gateway, :ip_range, :internal, :labels, :options, :created, :own_bridge)", row)
            except IntegrityError:
                if self.store.query("SELECT 1 FROM networks WHERE name=?", (name,)):
                    raise Conflict(f"network with name {name} already exists") from None
                raise Conflict(f"bridge {bridge} is already used by another network") from None
            net = Network(row)
            if kernel:
                from dockyard.network import bridge as kbridge

                from dockyard.network import rootless_netns

                try:
                    rootless_netns.run_in(kbridge.ensure, net)  # a rootless user's bridges: in its own netns
                except BaseException:
                    with self.store.write() as cur:
                        cur.execute("DELETE FROM networks WHERE id=?", (nid,))
                    raise
        return net

    def remove(self, net: Network) -> None:
        if net.is_default:
            raise Conflict(f"{net.name} is a pre-defined network and cannot be removed")
        active = self.store.query("SELECT container_id FROM endpoints WHERE network_id=? AND ip IS NOT NULL",
                                  (net.id,))
        if active:
            raise Conflict(f"error while removing network: network {net.name} id {net.id} has active endpoints")
        if net.driver == "overlay":  # refused while a container of any host is on it
            from dockyard.network import overlay

            overlay.remove(self.store, net)
            with self.store.write() as cur:
                cur.execute("DELETE FROM endpoints WHERE network_id=?", (net.id,))
                cur.execute("DELETE FROM networks WHERE id=?", (net.id,))
            from dockyard.network import dns

            dns.stop(self.store.root, net.id)
            overlay.teardown_ids(self.store.root, net.id, net)
            return
        from dockyard.network import bridge as kbridge

        with HostLock():
            with self.store.write() as cur:
                cur.execute("DELETE FROM endpoints WHERE network_id=?", (net.id,))
                cur.execute("DELETE FROM networks WHERE id=?", (net.id,))
            from dockyard.network import dns

            dns.stop(self.store.root, net.id)  # its embedded DNS server (it would leave by itself soon)
            from dockyard.network import rootless_netns

            rootless_netns.run_in(kbridge.remove, net)

    def update_subnet(self, net: Network, subnet: str) -> Network:
        sn = parse_cidr(subnet)
        with self.store.write() as cur:
            cur.execute("UPDATE networks SET subnet=?, gateway=? WHERE id=?", (subnet, int2ip(sn[0] + 1), net.id))
        return self.get(net.id)

    # ---- endpoints -------------------------------------------------------------------------------------------
    def endpoints(self, network_id: str | None = None, container_id: str | None = None,
                  active: bool = False) -> list[Any]:
        sql = "SELECT * FROM endpoints WHERE 1=1"
        args: list[str] = []
        if network_id:
            sql += " AND network_id=?"
            args.append(network_id)
        if container_id:
            sql += " AND container_id=?"
            args.append(container_id)
        if active:
            sql += " AND ip IS NOT NULL"
        return self.store.query(sql, tuple(args))

    def allocate(self, net: Network, cid: str, aliases: list[str], ip_request: str, connected: bool = False,
                 veth: str = "", fixed: str = "") -> str:
        """Record the endpoint (or update it) and hand it a free address, in one write transaction; ``fixed``: the
        address already claimed elsewhere (an overlay's, in the cluster store)."""
        sn = parse_cidr(net.subnet)
        pool = parse_cidr(net.ip_range, "ip-range") if net.ip_range else sn
        first, last = pool[0], pool[0] | (~_mask(pool[1]) & 0xFFFFFFFF)
        reserved = {sn[0], sn[0] | (~_mask(sn[1]) & 0xFFFFFFFF), ip2int(net.gateway)}
        with self.store.write() as cur:
            row = cur.execute("SELECT * FROM endpoints WHERE network_id=? AND container_id=?",
                              (net.id, cid)).fetchone()
            if row is not None:
                aliases = aliases or json.loads(row["aliases"])
                ip_request = ip_request or row["ip_request"]
                connected = connected or bool(row["connected"])
            taken = {ip2int(r[0]) for r in cur.execute(
                "SELECT ip FROM endpoints WHERE network_id=? AND ip IS NOT NULL AND container_id!=?", (net.id, cid))}
            if fixed:
                n = ip2int(fixed)
                if n in taken:
                    raise Conflict(f"Address already in use: {fixed}")
            elif ip_request:
                n = ip2int(ip_request)
                if n & _mask(sn[1]) != sn[0]:
                    raise InvalidArgument(f"invalid endpoint settings: no configured subnet or ip-range contain the "
                                          f"IP address {ip_request}")
                if n in taken or n in reserved:
                    raise Conflict(f"Address already in use: {ip_request}")
            else:
                n = next((a for a in range(first, last + 1) if a not in taken and a not in reserved), -1)
                if n < 0:
                    raise Conflict(f"no available IPv4 addresses on this network's address pools: {net.name} "
                                   f"({net.id})")
            ip = int2ip(n)
            cur.execute("INSERT OR REPLACE INTO endpoints (network_id, container_id, aliases, ip_request, ip, mac,"
                        " veth, connected) VALUES (?,?,?,?,?,?,?,?)",
                        (net.id, cid, json.dumps(aliases), ip_request, ip, mac_for(ip), veth, int(connected)))
        return ip

    def configure(self, net: Network, cid: str, aliases: list[str], ip_request: str) -> None:
        """Attach a stopped container: remembered, given an address when it starts."""
        with self.store.write() as cur:
            cur.execute("INSERT OR REPLACE INTO endpoints (network_id, container_id, aliases, ip_request, ip, mac,"
                        " veth, connected) VALUES (?,?,?,?,NULL,NULL,NULL,1)",
                        (net.id, cid, json.dumps(aliases), ip_request))

    def release(self, cid: str, network_id: str | None = None, forget: bool = False) -> None:
        """Free a container's addresses; endpoints added by ``connect`` are kept unless ``forget``."""
        with self.store.write() as cur:
            where = "container_id=?" + (" AND network_id=?" if network_id else "")
            args = (cid, network_id) if network_id else (cid,)
            if forget:
                cur.execute(f"DELETE FROM endpoints WHERE {where}", args)
            else:
                cur.execute(f"DELETE FROM endpoints WHERE {where} AND connected=0", args)
                cur.execute(f"UPDATE endpoints SET ip=NULL, mac=NULL, veth=NULL WHERE {where}", args)

    # ---- ports -----------------------------------------------------------------------------------------------
    def published(self, network_id: str) -> list[tuple[str, int, str, int, str]]:
        """(host_ip, host_port, container_ip, container_port, proto) of the running containers' published ports
        on a network: what its firewall maps must hold."""
        rows = self.store.query(
            "SELECT p.host_ip, p.host_port, e.ip, p.container_port, p.proto FROM ports p JOIN endpoints e ON"
            " e.network_id=p.network_id AND e.container_id=p.container_id WHERE p.network_id=? AND e.ip IS NOT NULL",
            (network_id,))
        rootless = "_DOCKYARD_ROOTLESS" in os.environ  # slirp4netns binds the host address (attach._fw_ip)
        return [("" if rootless else r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def ports(self, cid: str | None = None) -> list[Any]:
        if cid:
            return self.store.query("SELECT * FROM ports WHERE container_id=? ORDER BY container_port, proto",
                                    (cid,))
        return self.store.query("SELECT * FROM ports")

    def add_ports(self, cid: str, network_id: str, ports: list[tuple[str, int, int, str]]) -> None:
        """(host_ip, host_port, container_port, proto) for a container; Docker's message for a taken port."""
        from sqlite3 import IntegrityError

        with self.store.write() as cur:
            for host_ip, hport, cport, proto in ports:
                try:
                    cur.execute("INSERT INTO ports (host_port, proto, host_ip, container_id, container_port,"
                                " network_id) VALUES (?,?,?,?,?,?)", (hport, proto, host_ip, cid, cport, network_id))
                except IntegrityError:
                    raise Conflict(f"Bind for {host_ip or '0.0.0.0'}:{hport} failed: port is already allocated") \
                        from None

    def remove_ports(self, cid: str) -> None:
        with self.store.write() as cur:
            cur.execute("DELETE FROM ports WHERE container_id=?", (cid,))
