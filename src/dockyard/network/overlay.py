"""The overlay driver: networks that span hosts, their state in the cluster store (etcd), VXLAN between hosts.

Docker's model before Swarm (``--cluster-store``/``--cluster-advertise``), daemonless. Vocabulary:

- the *cluster store* is an etcd cluster (``network.etcd``), named by ``--cluster-store etcd://H:P[,H:P]``; a
  *host* is a machine (here: a state root) in the cluster, known by its *advertise address*
  (``--cluster-advertise``), the underlay address VXLAN packets leave from and arrive at.
- an *overlay network* is recorded once in etcd (``net/<id>``, with ``name/<name>``, ``vni/<vni>`` and
  ``subnet/<subnet>`` claimed in the same transaction, so no two networks share a name, a VNI or a subnet). Each
  host keeps a *mirror row* in its own store (``networks``, driver ``overlay``), made when the network is first
  read there (``sync``), so that everything built for bridge networks (endpoints, /etc/hosts, the embedded DNS,
  published ports, the firewall table) works unchanged on it.
- on each host with a container on it, the network is a *sandbox*, a network namespace of its own (mounted at
  ``networks/<id>/netns``) holding a Linux bridge and a VXLAN device ``vx-<id>`` (the network's VNI, UDP 4789,
  learning off, ARP proxy on; its socket in the host namespace) with the containers' veths, where bridged frames
  skip netfilter; the host namespace holds the veth ``ov-<id>`` (the gateway address, the firewall table), a port
  of that bridge. Containers' veths have the underlay MTU minus the 50 bytes of encapsulation.
- an *endpoint record* ``ep/<net>/<container>`` (host, IP, MAC, name, aliases) is put with the *host lease* of
  that network (``host/<net>/<advertise>``), kept alive by the host's watcher (``network.overlay_watch``): a host
  that dies loses its records when the lease runs out. The address's claim ``ip/<net>/<ip>`` (``<container>
  <host>``, made by a compare-and-put: an address is never handed out twice across hosts) has no lease: a host cut
  off for longer than the TTL keeps its containers' addresses and records them again when it is back; the claims
  of a host that never came back are taken over only when the subnet has no never-claimed address left.
- the watcher programs the VXLAN device from the records of other hosts: forwarding entries (the container's MAC
  -> its host; the all-zero MAC -> every host, for flooding) and neighbour entries (IP -> MAC, answered by the ARP
  proxy), and writes them to ``networks/<id>/remote.json`` for the embedded DNS.

Example (each host runs the same commands with its own advertise address)::

    dockyard --cluster-store etcd://10.1.0.1:2379 --cluster-advertise 10.1.0.2 network create -d overlay \\
        --attachable ov1
    dockyard --cluster-store etcd://10.1.0.1:2379 --cluster-advertise 10.1.0.3 run --network ov1 busybox ...
"""

from __future__ import annotations

import os
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.network.etcd import Etcd
    from dockyard.network.store import Network, NetworkStore
    from dockyard.state.db import Store

from dockyard import jsonc as json
from dockyard.errors import Conflict, InvalidArgument, NotFound, SystemFailure

P = "/dockyard/overlay/"
VNI_BASE = 4096
VXLAN_PORT = 4789
OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
STORE_OPT, ADV_OPT, ATTACH_OPT = "dockyard.cluster-store", "dockyard.cluster-advertise", "dockyard.attachable"
VNI_OPT, MTU_OPT = "com.docker.network.driver.overlay.vxlanid_list", "com.docker.network.driver.mtu"


_clients: dict[str, Etcd] = {}  # one client (and its kept connection) per cluster store URL in a process


def lease_ttl() -> int:
    return max(int(os.environ.get("DOCKYARD_OVERLAY_TTL", "15")), 2)


class Cluster:
    """The cluster store (an ``Etcd`` client) and this host's advertise address."""

    def __init__(self, url: str, advertise: str) -> None:
        from dockyard.network import checks
        from dockyard.network.etcd import Etcd

        if not url:
            raise InvalidArgument("overlay networks need a cluster store: --cluster-store etcd://HOST:PORT")
        if not advertise:
            raise InvalidArgument("overlay networks need this host's address: --cluster-advertise ADDRESS")
        self.url = url
        self.kv: Etcd = _clients.get(url) or _clients.setdefault(url, Etcd(url))
        self.advertise = checks.ipv4(advertise.rpartition(":")[0] if advertise.count(":") == 1 else advertise,
                                     "cluster advertise address")


def cluster(root: str) -> Cluster | None:
    """The configured cluster (flags, environment, daemon.json), or None when there is none."""
    from dockyard.state.config import cluster_settings

    url, adv = cluster_settings(root)
    return Cluster(url, adv) if url else None


def cluster_of(net: Network, root: str) -> Cluster:
    """The cluster a mirrored overlay belongs to (recorded in its row), the configured one otherwise."""
    url, adv = net.options.get(STORE_OPT, ""), net.options.get(ADV_OPT, "")
    if url and adv:
        return Cluster(url, adv)
    c = cluster(root)
    if c is None:
        raise InvalidArgument(f"network {net.name} is an overlay: a cluster store is needed (--cluster-store)")
    return c


def names(net_id: str) -> tuple[str, str]:
    """(bridge, vxlan device) of an overlay on a host."""
    return "ov-" + net_id[:12], "vx-" + net_id[:12]


# ---- networks -----------------------------------------------------------------------------------------------------
def create(root: str, name: str, subnet: str, gateway: str, attachable: bool, internal: bool,
           labels: dict[str, str], options: dict[str, str]) -> str:
    """Record a new overlay in the cluster store; its ID. Conflict for a taken name or subnet."""
    cl = cluster(root)
    if cl is None:
        raise InvalidArgument("network driver overlay needs a cluster store: --cluster-store etcd://HOST:PORT "
                              "and --cluster-advertise ADDRESS")
    for _ in range(20):
        nid = _create_once(cl.kv, name, subnet, gateway, attachable, internal, labels, options)
        if nid:
            return nid
    raise SystemFailure(f"cluster store {cl.url}: network create kept racing with other creates; try again")


def _create_once(kv: Etcd, name: str, subnet: str, gateway: str, attachable: bool, internal: bool,
                 labels: dict[str, str], options: dict[str, str]) -> str:
    """One read-check-claim round of ``create``: its ID, or "" when another create changed the networks between
    the read and the claim. The claim's transaction compares the whole ``net/`` range with the read's revision, so
    a concurrent create of an overlapping (not only the same) subnet, a taken name or VNI make it fail and the
    caller reads again (the next round raises the conflict)."""
    from dockyard.ids import new_id
    from dockyard.network import etcd as e
    from dockyard.network.netlink import host_routes
    from dockyard.network.store import _mask, int2ip, ip2int, overlaps, parse_cidr

    kvs, rev = kv.range_prefix(P + "net/")
    nets = [json.loads(v) for _, v in kvs]
    if any(n["name"] == name for n in nets):
        raise Conflict(f"network with name {name} already exists")
    used = [parse_cidr(n["subnet"]) for n in nets]
    if subnet:
        sn = parse_cidr(subnet)
        if any(overlaps(sn, u) for u in used):
            raise Conflict("invalid pool request: Pool overlaps with other one on this address space")
    else:
        if gateway:
            raise InvalidArgument(f"no matching subnet for gateway {gateway}")
        local = used + [(n, bin(m).count("1")) for n, m in host_routes()]
        free = [(ip2int(f"10.0.{i}.0"), 24) for i in range(1, 256)]
        pick = next((c for c in free if not any(overlaps(c, u) for u in local)), None)
        if pick is None:
            raise Conflict("could not find an available, non-overlapping IPv4 address pool for the overlay")
        sn = pick
        subnet = f"{int2ip(sn[0])}/{sn[1]}"
    if sn[1] > 29:
        raise InvalidArgument(f"invalid subnet {subnet}: too small for a network")
    if gateway:
        if ip2int(gateway) & _mask(sn[1]) != sn[0]:
            raise InvalidArgument(f"no matching subnet for gateway {gateway}")
    else:
        gateway = int2ip(sn[0] + 1)
    vnis = {int(n["vni"]) for n in nets}
    vni = next((v for v in range(VNI_BASE + 1, 1 << 24) if v not in vnis), 0)
    if not vni:
        raise Conflict("no free VXLAN network identifier")
    nid = new_id()
    rec = {"id": nid, "name": name, "subnet": subnet, "gateway": gateway, "vni": vni, "attachable": attachable,
           "internal": internal, "labels": labels, "options": options, "created": time.time()}
    keys = {P + "name/" + name: nid, P + "vni/" + str(vni): nid, P + "subnet/" + subnet.replace("/", "_"): nid}
    # no key under net/ created or changed since the read (a ranged compare; an empty range passes)
    unchanged = {"key": e._b64(P + "net/"), "range_end": e._b64(e.prefix_end(P + "net/")), "target": "MOD",
                 "result": "LESS", "mod_revision": str(rev + 1)}
    if kv.txn([unchanged] + [e.absent(k) for k in keys], [e.put_op(P + "net/" + nid, json.dumps(rec))] +
              [e.put_op(k, v) for k, v in keys.items()]):
        return nid
    return ""


def _underlay_mtu(advertise: str) -> int:
    """The MTU of the interface holding the advertise address (1500 when it cannot be told)."""
    from dockyard.network.netlink import Netlink, NetlinkError

    try:
        with Netlink() as nl:
            idx = nl.address_index(advertise)
            return (nl.mtu(idx) if idx else 0) or 1500
    except NetlinkError:
        return 1500


def sync(store: Store, strict: bool = False) -> None:
    """Mirror the cluster's overlays into this root's store: new ones get a row, gone ones lose theirs (unless a
    local container still runs on it). Without ``strict``, an unreachable store leaves the mirror as it is."""
    cl = cluster(store.root)
    if cl is None:
        return
    try:
        recs = {json.loads(v)["id"]: json.loads(v) for _, v in cl.kv.range_prefix(P + "net/")[0]}
    except SystemFailure:
        if strict:
            raise
        return
    rows = {r["id"]: r for r in store.query("SELECT id, name FROM networks WHERE driver='overlay'")}
    mtu = 0
    for nid, rec in recs.items():
        if nid in rows:
            continue
        mtu = mtu or _underlay_mtu(cl.advertise) - OVERHEAD
        options = dict(rec.get("options") or {})
        options.update({VNI_OPT: str(rec["vni"]), MTU_OPT: str(mtu), STORE_OPT: cl.url, ADV_OPT: cl.advertise,
                        ATTACH_OPT: "true" if rec.get("attachable") else "false"})
        with store.write() as cur:
            if cur.execute("SELECT 1 FROM networks WHERE name=? OR id=?", (rec["name"], nid)).fetchone():
                continue  # a local network of that name shadows it on this host
            cur.execute("INSERT INTO networks (id, name, driver, bridge, subnet, gateway, ip_range, internal, labels,"
                        " options, created, own_bridge) VALUES (?,?,'overlay',?,?,?,'',?,?,?,?,1)",
                        (nid, rec["name"], names(nid)[0], rec["subnet"], rec["gateway"], int(bool(rec.get("internal"))),
                         json.dumps(rec.get("labels") or {}), json.dumps(options), rec.get("created") or time.time()))
    for nid in rows:
        if nid not in recs and not store.query("SELECT 1 FROM endpoints WHERE network_id=? AND ip IS NOT NULL",
                                               (nid,)):
            with store.write() as cur:
                cur.execute("DELETE FROM endpoints WHERE network_id=?", (nid,))
                cur.execute("DELETE FROM networks WHERE id=?", (nid,))
            teardown_ids(store.root, nid)


def remove(store: Store, net: Network) -> None:
    """Remove the overlay from the cluster: refused while a container of any host is on it."""
    from dockyard.network import etcd as e

    kv = cluster_of(net, store.root).kv
    raw = kv.get(P + "net/" + net.id)
    if raw is None:
        return  # removed by another host already
    if kv.count_prefix(f"{P}ep/{net.id}/"):
        raise Conflict(f"error while removing network: network {net.name} id {net.id} has active endpoints")
    rec = json.loads(raw[0])
    keys = [P + "net/" + net.id, P + "name/" + rec["name"], P + "vni/" + str(rec["vni"]),
            P + "subnet/" + rec["subnet"].replace("/", "_")]
    kv.txn([], [e.delete_op(k) for k in keys] + [e.delete_op(f"{P}ip/{net.id}/", prefix=True),
                                                 e.delete_op(f"{P}host/{net.id}/", prefix=True)])


# ---- endpoints ----------------------------------------------------------------------------------------------------
ROUNDS = 64  # read-pick-claim rounds of a join before it gives up (each lost only to a concurrent claim)


def join(store: Store, ns: NetworkStore, net: Network, cid: str, name: str, aliases: list[str], ip_request: str,
         veth: str, connected: bool = False) -> str:
    """Claim an address in the cluster, record the endpoint locally and in the cluster (with the host lease),
    make the network's bridge and VXLAN device here and program them; the address.

    Two round trips to the cluster store when this host is registered on the network already (three when not:
    the lease is granted first): one read of everything the choice needs (the host's lease, the container's
    earlier record, the address claims, the endpoint records; one revision), then one transaction that puts the
    claim, the endpoint record (and the host's key) only if none of what was read about them changed meanwhile.
    A lost race reads again."""
    from dockyard.network import etcd as e
    from dockyard.network import overlay_watch
    from dockyard.network.store import mac_for

    if net.options.get(ATTACH_OPT) != "true":
        raise Conflict(f"Could not attach to network {net.name}: network {net.name} not manually attachable "
                       "(create it with --attachable)")
    cl = cluster_of(net, store.root)
    kv = cl.kv
    hkey, epkey, prefix = f"{P}host/{net.id}/{cl.advertise}", f"{P}ep/{net.id}/{cid}", f"{P}ip/{net.id}/"
    claim = f"{cid} {cl.advertise}"
    existed = bool(store.query("SELECT 1 FROM endpoints WHERE network_id=? AND container_id=?", (net.id, cid)))
    ipkey = ""
    try:
        for _ in range(ROUNDS):
            (host, mine, claims, eps, live), _rev = kv.read(
                (hkey, False), (epkey, False), (prefix, True), (f"{P}ep/{net.id}/", True), (f"{P}host/{net.id}/", True))
            ip, old = _pick(net, cid, ip_request, claims, mine.get(epkey),
                            {k.rpartition("/")[2] for k in live} | {cl.advertise})
            # the local endpoint first: from then on this host's watcher counts the container as its own (a
            # record it sees without a local endpoint is one it deletes)
            ns.allocate(net, cid, aliases, ip_request, connected=connected, veth=veth, fixed=ip)
            lease = int(host[hkey]) if host else 0
            granted = 0
            if not lease:
                lease = granted = kv.grant(lease_ttl())
            rec = {"host": cl.advertise, "ip": ip, "mac": mac_for(ip), "name": name, "aliases": aliases}
            ipkey = prefix + ip
            compare = [e.value_is(hkey, host[hkey]) if host else e.absent(hkey),
                       e.value_is(ipkey, old) if old is not None else e.absent(ipkey)]
            ops = [e.put_op(ipkey, claim), e.put_op(epkey, json.dumps(rec), lease)]
            if granted:
                ops.insert(0, e.put_op(hkey, str(lease), lease))
            if kv.txn(compare, ops):
                break
            ipkey = ""
            if granted:
                kv.revoke(granted)
        else:
            raise SystemFailure(f"cluster store {cl.url}: attaching to network {net.name} kept racing with other "
                                "attachments; try again")
        if ensure_kernel(store.root, net, cl.advertise, store) or not overlay_watch.running(store.root, net.id):
            # a new VXLAN device, or no watcher yet to program it: the others' records as read (the watcher
            # follows what changes from then on); a running watcher keeps an existing device up to date itself
            recs = {}
            for k, v in eps.items():
                try:
                    recs[k.rpartition("/")[2]] = json.loads(v)
                except ValueError:
                    continue
            program(store.root, net, cl, recs)
    except BaseException:
        ns.release(cid, net.id, forget=not existed)
        if ipkey:
            try:
                kv.txn([e.value_is(ipkey, claim)], [e.delete_op(ipkey), e.delete_op(epkey)], [e.delete_op(epkey)])
            except SystemFailure:
                pass
        raise
    return ip


def _pick(net: Network, cid: str, ip_request: str, claims: dict[str, bytes], mine: bytes | None,
          live: set[str]) -> tuple[str, bytes | None]:
    """The address to claim for container ``cid`` and the claim's current value to compare with (None: the
    address must be unclaimed). In order: the requested address; the container's own address of an earlier run
    (a restart within the lease keeps it); the lowest never-claimed one; one whose claim belongs to a host that
    is gone (no lease left: ``live`` are the hosts that have one, and this host), when the subnet has no
    never-claimed one."""
    from dockyard.network.store import _mask, int2ip, ip2int, parse_cidr

    sn = parse_cidr(net.subnet)
    last = sn[0] | (~_mask(sn[1]) & 0xFFFFFFFF)
    reserved = {sn[0], last, ip2int(net.gateway)}
    prefix = f"{P}ip/{net.id}/"
    held = {k[len(prefix):]: v for k, v in claims.items()}

    def ours(v: bytes | None) -> bool:
        return v is not None and v.decode(errors="replace").split(" ")[0] == cid

    if ip_request:
        n = ip2int(ip_request)
        if n & _mask(sn[1]) != sn[0]:
            raise InvalidArgument(f"invalid endpoint settings: no configured subnet or ip-range contain the IP "
                                  f"address {ip_request}")
        if n in reserved or (ip_request in held and not ours(held[ip_request])):
            raise Conflict(f"Address already in use: {ip_request}")
        return ip_request, held.get(ip_request)
    if mine is not None:
        try:
            ip = str(json.loads(mine)["ip"])
        except (ValueError, KeyError, TypeError):
            ip = ""
        if ip and (ip not in held or ours(held[ip])):
            return ip, held.get(ip)
    for n in range(sn[0] + 1, last):
        ip = int2ip(n)
        if n not in reserved and ip not in held:
            return ip, None
        if ours(held.get(ip)):
            return ip, held[ip]
    for ip, v in held.items():
        parts = v.decode(errors="replace").split()
        if len(parts) == 2 and parts[1] not in live:
            return ip, v
    raise Conflict(f"no available IPv4 addresses on this network's address pools: {net.name} ({net.id})")


def leave(store: Store, net: Network, cid: str) -> None:
    """Drop the container's records from the cluster, in one transaction: its endpoint record, and its address's
    claim when the claim is still its own (an unreachable store: the watcher drops them later, or the lease does).
    Called before the local release (the endpoint row names the address)."""
    from dockyard.network import etcd as e

    try:
        cl = cluster_of(net, store.root)
        epkey = f"{P}ep/{net.id}/{cid}"
        rows = store.query("SELECT ip FROM endpoints WHERE network_id=? AND container_id=? AND ip IS NOT NULL",
                           (net.id, cid))
        if not rows:
            cl.kv.delete(epkey)
            return
        ipkey = f"{P}ip/{net.id}/{rows[0]['ip']}"
        cl.kv.txn([e.value_is(ipkey, f"{cid} {cl.advertise}")], [e.delete_op(epkey), e.delete_op(ipkey)],
                  [e.delete_op(epkey)])
    except (SystemFailure, InvalidArgument):
        pass


def teardown_if_unused(store: Store, net: Network) -> None:
    """Tear the overlay's kernel side down when no local container is on it, unless its watcher runs: the
    watcher does it when it leaves, a few seconds later (``overlay_watch``), off the exit path of the container
    (deleting a bridge, a VXLAN device and a firewall table cost ~85 ms of a ``run --rm``) and not at all when
    another container comes meanwhile."""
    from dockyard.network import overlay_watch
    from dockyard.network.store import HostLock

    if overlay_watch.running(store.root, net.id):
        return
    with HostLock():
        if not store.query("SELECT 1 FROM endpoints WHERE network_id=? AND ip IS NOT NULL", (net.id,)):
            _teardown(store.root, net.id)


def teardown_ids(root: str, net_id: str, net: Network | None = None) -> None:
    """Delete the sandbox (VXLAN device, bridge, gateway veth), and the firewall table of an overlay on this host."""
    from dockyard.network.store import HostLock

    with HostLock():
        _teardown(root, net_id)


def _teardown(root: str, net_id: str) -> None:
    from dockyard.network import firewall
    from dockyard.network.netlink import Netlink

    br, vx = names(net_id)
    tbl = {"family": "ip", "name": "dockyard-" + br}  # the table first: gone devices mean all is gone
    firewall._nft([{"add": {"table": tbl}}, {"delete": {"table": tbl}}], check=False)
    path = sandbox_path(root, net_id)
    if sandbox_alive(path):
        try:  # the VXLAN device explicitly: its VNI stays taken on this host until the device is gone, and a
            # namespace is destroyed asynchronously (or not at all while a stray mount of it is held elsewhere)
            with Netlink(netns=path) as sb:
                sb.delete_link(vx)
        except OSError:
            pass
    with Netlink() as nl:
        nl.delete_link(br)  # the gateway veth (its peer with it)
        nl.delete_link(vx)  # the layout of an older dockyard: VXLAN device and bridge in this namespace
    _drop_sandbox(path)
    try:
        os.unlink(os.path.join(root, "networks", net_id, "remote.json"))
    except OSError:
        pass


# ---- the kernel side ----------------------------------------------------------------------------------------------
# Each host's side of an overlay lives in a network namespace of its own, the network's *sandbox* (Docker's overlay
# "sandbox"): its bridge ``br0``, its VXLAN device ``vx-<id>`` (made from this namespace so that its UDP socket is
# bound here, then living there) and one veth end per local container. With br_netfilter loaded,
# ``bridge-nf-call-iptables`` is 1 in every new namespace and every frame bridged there would run the host's nft
# chains and conntrack: it is 0 in the sandbox, which has no firewall of its own. The host namespace holds the
# veth ``ov-<id>`` (the gateway address, interface group ``GROUP``), whose peer ``gw0`` is a port of ``br0``: the
# firewall table, the embedded DNS server and published ports see it as they see a bridge network's bridge.
SANDBOX_BRIDGE, SANDBOX_GW = "br0", "gw0"


def sandbox_path(root: str, net_id: str) -> str:
    """The sandbox's namespace file (a bind mount of the namespace, ``ip netns``'s way), in the network's folder."""
    return os.path.join(root, "networks", net_id, "netns")


def sandbox_alive(path: str) -> bool:
    """Whether ``path`` holds a network namespace (a plain file left by a crash or a reboot does not)."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


_SANDBOX_SYSCTLS = ("bridge/bridge-nf-call-iptables", "bridge/bridge-nf-call-ip6tables",
                    "bridge/bridge-nf-call-arptables", "ipv6/conf/all/disable_ipv6", "ipv6/conf/default/disable_ipv6")


def _make_sandbox(path: str) -> None:
    """A new network namespace mounted on ``path`` (over a stale file): made by this thread, which goes home after;
    frames bridged in it skip netfilter (``bridge-nf-call-*`` 0; absent without br_netfilter), no IPv6 on its
    ports (their link-local chatter would be flooded to every host)."""
    from dockyard.runtime import syscalls as S

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        S.unshare(S.CLONE_NEWNET)
        try:
            for key in _SANDBOX_SYSCTLS:
                try:
                    with open("/proc/sys/net/" + key, "w") as f:
                        f.write("1" if key.startswith("ipv6") else "0")
                except OSError:
                    pass
            S.mount("/proc/thread-self/ns/net", path, None, S.MS_BIND)
        finally:
            S.setns(home, S.CLONE_NEWNET)
    finally:
        os.close(home)


def _drop_sandbox(path: str) -> None:
    from dockyard.runtime import syscalls as S

    if sandbox_alive(path):
        try:
            S.umount2(path, 2)  # MNT_DETACH
        except OSError:
            pass
    try:
        os.unlink(path)
    except OSError:
        pass


def ensure_kernel(root: str, net: Network, advertise: str, store: Store | None = None) -> bool:
    """The network's sandbox (bridge, VXLAN device, the gateway veth and its address, the firewall table), made
    or completed where missing (a sandbox left by a killed process is reused; a stale namespace file is mounted
    over with a new one); True when this call made the VXLAN device. Called under the host lock."""
    from dockyard.network import checks, firewall
    from dockyard.network.bridge import _sysctl
    from dockyard.network.netlink import Netlink, NetlinkError
    from dockyard.network.store import GROUP, NetworkStore

    br, vx = names(net.id)
    checks.ifname(br)
    vni = int(net.options.get(VNI_OPT, "0"))
    if not VNI_BASE < vni < 1 << 24:
        raise InvalidArgument(f"network {net.name}: invalid VXLAN identifier {vni}")
    mtu = int(net.options.get(MTU_OPT, "0") or 0)
    path = sandbox_path(root, net.id)
    made_vx = made_gw = False
    adopt: list[str] = []
    try:
        with Netlink() as nl:
            link = nl.link(br)
            if link is not None and link[1] != "veth":
                if link[1] != "bridge":
                    raise Conflict(f"network {net.name}: interface {br} exists and is not dockyard's")
                # an older dockyard's layout (everything in this namespace): made again below, its containers'
                # veths moved into the sandbox
                adopt = [p for p in nl.ports(link[0]) if p != vx]
                nl.delete_link(vx)
                nl.delete_link(br)
                link = None
            if not sandbox_alive(path):
                if link is not None:  # its peer is in a namespace that is no longer the sandbox
                    nl.delete_link(br)
                    link = None
                _make_sandbox(path)
            with Netlink(netns=path) as sb:
                have = {name: idx for idx, name in sb.links()}
                bri = have.get(SANDBOX_BRIDGE) or sb.create_bridge(SANDBOX_BRIDGE, mtu=mtu)
                nsfd = -1
                try:
                    if link is None or SANDBOX_GW not in have:
                        nsfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                        nl.delete_link(br)
                        nl.create_veth(br, SANDBOX_GW, peer_netns_fd=nsfd, mtu=mtu, group=GROUP)
                        sb.set_up(sb.index(SANDBOX_GW) or 0, master=bri)
                        made_gw = True
                    if vx not in have:
                        nsfd = nsfd if nsfd >= 0 else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                        try:
                            nl.create_vxlan(vx, vni, advertise, port=VXLAN_PORT, mtu=mtu, netns_fd=nsfd)
                            sb.set_up(sb.index(vx) or 0, master=bri)
                            made_vx = True
                        except NetlinkError as e:
                            if e.errno != 17:  # EEXIST: a device of this VNI exists (in a stray old sandbox)
                                raise
                            raise SystemFailure(f"network {net.name}: VXLAN identifier {vni} is taken on this host "
                                                "by another device") from None
                    if adopt:
                        nsfd = nsfd if nsfd >= 0 else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                        for port in adopt:
                            try:
                                nl.move_link(port, nsfd)
                                sb.set_up(sb.index(port) or 0, master=bri)
                            except NetlinkError:
                                pass  # gone with its container meanwhile
                finally:
                    if nsfd >= 0:
                        os.close(nsfd)
            if made_gw or not firewall.current(net):
                idx = nl.index(br)
                assert idx is not None
                nl.add_address(idx, net.gateway, net.prefixlen, net.broadcast)
                fresh = made_gw and not adopt  # (adopted containers keep their published ports)
                ports = [] if fresh or store is None else NetworkStore(store).published(net.id)
                firewall.install(net, ports)  # before route_localnet: its filter must be there first
                _sysctl(f"/proc/sys/net/ipv4/conf/{br}/route_localnet", "1")
    except NetlinkError as e:
        if e.errno in (99, 98):
            raise SystemFailure(f"network {net.name}: cannot make its VXLAN device: the cluster advertise "
                                f"address {advertise} is not an address of this host") from None
        raise SystemFailure(f"network {net.name}: cannot make its sandbox ({vx}, {br}): {e.strerror}") from None
    if not net.internal:
        _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    return made_vx


def plug(root: str, net: Network, veth: str, peer: str, nsfd: int, mac: bytes, mtu: int) -> None:
    """A container's veth pair: ``veth`` a port of the sandbox's bridge, ``peer`` in the namespace ``nsfd``."""
    from dockyard.network.netlink import Netlink

    try:
        sb = Netlink(netns=sandbox_path(root, net.id))
    except OSError:
        raise SystemFailure(f"network {net.name}: its sandbox is gone (removed meanwhile?)") from None
    with sb:
        sb.delete_link(veth)  # a leftover of a crashed monitor
        bri = sb.index(SANDBOX_BRIDGE)
        if bri is None:
            raise SystemFailure(f"network {net.name}: its sandbox has no bridge")
        sb.create_veth(veth, peer, peer_netns_fd=nsfd, master=bri, mac=mac, mtu=mtu)


def delete_veths(path: str, veths: list[str]) -> None:
    """Delete containers' veths from the sandbox at ``path`` (gone with it, or with the containers' namespaces)."""
    from dockyard.network.netlink import Netlink

    if not veths or not sandbox_alive(path):
        return
    try:
        with Netlink(netns=path) as sb:
            for v in veths:
                sb.delete_link(v)
    except OSError:
        pass


def records(cl: Cluster, net_id: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Every endpoint record of the network (container ID -> record) and the revision of that read."""
    kvs, rev = cl.kv.range_prefix(f"{P}ep/{net_id}/")
    out = {}
    for k, v in kvs:
        try:
            out[k.rpartition("/")[2]] = json.loads(v)
        except ValueError:
            continue
    return out, rev


def program(root: str, net: Network, cl: Cluster, recs: dict[str, dict[str, Any]] | None = None) -> None:
    """Make the VXLAN device's forwarding and neighbour entries those of the other hosts' records (reads them
    when not given); every value checked before it reaches the kernel. Writes ``remote.json`` for the DNS."""
    from dockyard.network import checks
    from dockyard.network.netlink import AF_BRIDGE, ZERO_MAC, Netlink
    from dockyard.network.store import ip2int, parse_cidr

    if recs is None:
        recs = records(cl, net.id)[0]
    sn = parse_cidr(net.subnet)
    fdb: set[tuple[bytes, str]] = set()
    neigh: set[tuple[bytes, str]] = set()
    remote = []
    for cid, r in recs.items():
        try:
            host = checks.ipv4(r.get("host"), "host address")
            ip = checks.ipv4(r.get("ip"))
            mac = checks.mac(r.get("mac"))
            if ip2int(ip) & (0xFFFFFFFF << (32 - sn[1])) & 0xFFFFFFFF != sn[0]:
                continue
            aliases = [checks.alias(a) for a in r.get("aliases") or []]
            name = checks.alias(r.get("name") or cid[:12])
        except InvalidArgument:
            continue  # a malformed record is never programmed
        if host == cl.advertise:
            continue
        fdb |= {(mac, host), (ZERO_MAC, host)}
        neigh.add((mac, ip))
        remote.append({"id": cid, "ip": ip, "name": name, "aliases": aliases})
    vx = names(net.id)[1]
    path = sandbox_path(root, net.id)
    if not sandbox_alive(path):
        return
    with Netlink(netns=path) as nl:
        idx = nl.index(vx)
        if idx is None:
            return
        have_fdb = nl.neighbours(idx, AF_BRIDGE)
        have_neigh = nl.neighbours(idx)
        for mac, host in have_fdb - fdb:
            nl.fdb_del(idx, mac, host)
        for mac, ip in have_neigh - neigh:
            nl.neigh_del(idx, ip, mac)
        for mac, host in sorted(fdb - have_fdb):
            nl.fdb_add(idx, mac, host)
        for mac, ip in neigh - have_neigh:
            nl.neigh_add(idx, ip, mac)
    d = os.path.join(root, "networks", net.id)
    os.makedirs(d, mode=0o700, exist_ok=True)
    with open(os.path.join(d, "remote.json.tmp"), "w") as f:
        json.dump(remote, f)
    os.replace(os.path.join(d, "remote.json.tmp"), os.path.join(d, "remote.json"))


def get_record(root: str, net_id: str) -> dict[str, Any]:
    """The cluster's record of an overlay (NotFound when gone)."""
    cl = cluster(root)
    got = cl.kv.get(P + "net/" + net_id) if cl else None
    if got is None:
        raise NotFound(f"network {net_id} not found")
    return dict(json.loads(got[0]))
