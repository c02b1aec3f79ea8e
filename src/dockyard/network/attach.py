"""A container's network life: addresses and ports before it is created, veth pairs once its namespace exists,
everything undone when it exits or is removed.

The container's monitor calls, in order (``engine.monitor``):

1. ``prepare(store, c, image_config)`` before the bundle is written: makes sure the bridges exist, allocates the
   container's addresses (store transaction), reserves and publishes its ports (a socket bound on each host port,
   held by the monitor for the container's life, plus nftables map elements) and writes the network peers into
   its /etc/hosts. Returns an ``Attachment`` (or None for ``host``/``none``) whose ``ip`` goes into /etc/hosts and
   whose ``netns`` (only for ``container:NAME``) goes into the spec.
2. ``Attachment.plumb(pid)`` once the runtime has created the container (stopped before its process runs): one
   veth pair per network, the container's end moved into ``/proc/PID/ns/net`` as ``eth0``, ``eth1``...,
   addresses, and the default route via the first non-internal network's gateway.
3. ``release(store, c)`` when it exits (monitor) and when it is removed (``rm``): idempotent.

Name resolution (docs/decisions.md): on user-defined networks each container's /etc/hosts lists the containers
(names, aliases, short IDs) attached to the same networks; it is rewritten in place whenever a container joins or
leaves. Each user-defined network also has an embedded DNS server (``network.dns``) on its gateway, started here on
demand (``prepare``/``connect``) and named in resolv.conf (``Attachment.nameserver``); when it is down, /etc/hosts
still resolves the peers. The default ``bridge`` network has no discovery, as Docker.
"""

from __future__ import annotations

import os
import socket
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.engine.containers import Container
    from dockyard.network.store import Network

from dockyard import jsonc as json
from dockyard.errors import Conflict, DockyardError, InvalidArgument
from dockyard.network.store import DEFAULT_NAME, HostLock, NetworkStore, default_bridge_name
from dockyard.state.db import DEFAULT_ROOT, Store

_ROOTLESS_ENV = "_DOCKYARD_ROOTLESS"  # dockyard.rootless.ENV: slirp4netns instead of bridges (network.slirp)
HOSTS_MARK = "# dockyard: containers on the same networks\n"


def veth_name(cid: str, net: Network) -> str:
    return f"v{cid[:7]}{net.id[:7]}"


def uses_bridge(mode: str) -> bool:
    return mode not in ("host", "none") and not mode.startswith("container:")


class Attachment:
    def __init__(self, store: Store, cid: str) -> None:
        self.store = store
        self.cid = cid
        self.endpoints: list[tuple[Network, str, str]] = []  # (network, ip, veth)
        self.netns: str | None = None
        self.ports: list[tuple[str, int, int, str]] = []
        self.mac = ""  # --mac-address of the first network's interface
        self.nameserver: str | None = None  # the embedded DNS server for resolv.conf (user-defined networks)

    @property
    def ip(self) -> str | None:
        return self.endpoints[0][1] if self.endpoints else None

    def plumb(self, pid: int) -> None:
        """Give the created container (init ``pid``) its interfaces."""
        if not self.endpoints:
            return
        path = f"/proc/{pid}/ns/net"
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _in_netns(_plumb, self.endpoints, fd, path, 0, True, self.mac, self.store.root)
        finally:
            os.close(fd)


def _in_netns(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` where the bridges are: the host for root, the user's network namespace when rootless."""
    from dockyard.network import rootless_netns

    return rootless_netns.run_in(fn, *args)


def _plumb(endpoints: list[tuple[Network, str, str]], nsfd: int, nspath: str, first: int,
           route: bool = True, mac0: str = "", root: str = "") -> None:
    from dockyard.network import checks
    from dockyard.network.netlink import Netlink
    from dockyard.network.store import mac_for

    with Netlink() as nl:
        for i, (net, ip, veth) in enumerate(endpoints):
            mac = checks.mac((i == 0 and mac0) or mac_for(ip))
            if net.driver == "overlay":  # a port of the bridge in the overlay's sandbox (network.overlay)
                from dockyard.network import overlay

                mtu = int(net.options.get(overlay.MTU_OPT) or 0)
                overlay.plug(root, net, veth, f"eth{first + i}", nsfd, mac, mtu)
                continue
            nl.delete_link(veth)  # a leftover of a crashed monitor
            master = nl.index(net.bridge)
            nl.create_veth(veth, f"eth{first + i}", peer_netns_fd=nsfd, master=master, mac=mac)
    with Netlink(netns=nspath) as inner:
        routed = not route
        for i, (net, ip, _veth) in enumerate(endpoints):
            idx = inner.index(f"eth{first + i}")
            assert idx is not None
            inner.set_up(idx)
            inner.add_address(idx, ip, net.prefixlen, net.broadcast)
            if not routed and not net.internal:
                inner.add_route_default(idx, net.gateway)
                routed = True


def _networks(ns: NetworkStore, c: Container) -> list[tuple[Network, list[str], str]]:
    """(network, aliases, requested ip) for each network the container joins: its own first, then connected."""
    s = c.spec
    primary = ns.get(s.network_mode)
    out = [(primary, list(getattr(s, "aliases", []) or []), getattr(s, "ip", "") or "")]
    for r in ns.endpoints(container_id=c.id):
        if r["network_id"] != primary.id and r["connected"]:
            try:
                out.append((ns.get(r["network_id"]), json.loads(r["aliases"]), r["ip_request"]))
            except DockyardError:
                continue
    return out


def _heal_default(ns: NetworkStore, net: Network) -> Network:
    """A private root's default network lost its bridge: its subnet may have been taken since; pick again."""
    from dockyard.network import bridge
    from dockyard.network.netlink import host_routes
    from dockyard.network.store import overlaps, parse_cidr

    if not net.is_default or bridge.exists(net):
        return net
    sn = parse_cidr(net.subnet)
    if any(overlaps(sn, (n, bin(m).count("1"))) for n, m in host_routes()) and \
            not ns.endpoints(network_id=net.id, active=True):
        return ns.update_subnet(net, ns.pick_subnet(exclude={net.subnet}))
    return net


def prepare(store: Store, c: Container, image_config: dict[str, Any],
            find_container: Callable[[str], Container] | None = None) -> Attachment | None:
    """Addresses, ports and /etc/hosts peers for container ``c`` (see the module's docstring).
    ``find_container`` (the engine's lookup, with its liveness check) resolves ``--network container:NAME``:
    this layer does not reach up into the engine's container records."""
    mode = c.spec.network_mode
    if mode in ("host", "none"):
        return None
    if _ROOTLESS_ENV in os.environ and mode in ("bridge", "default"):  # no host bridge without root
        from dockyard.network import slirp

        return slirp.prepare(c, image_config)  # type: ignore[return-value]
    if _ROOTLESS_ENV in os.environ and not mode.startswith("container:"):  # user-defined: in the user's netns
        return _in_netns(_prepare, store, c, image_config, find_container)  # type: ignore[no-any-return]
    return _prepare(store, c, image_config, find_container)


def _prepare(store: Store, c: Container, image_config: dict[str, Any],
             find_container: Callable[[str], Container] | None) -> Attachment:
    mode = c.spec.network_mode
    att = Attachment(store, c.id)
    att.mac = getattr(c.spec, "mac_address", "") or ""
    if mode.startswith("container:"):
        if find_container is None:
            raise InvalidArgument("--network container:NAME needs the engine's container lookup")
        other = find_container(mode.partition(":")[2])
        if other.state != "running" or not other.pid:
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        att.netns = f"/proc/{other.pid}/ns/net"
        return att
    ns = NetworkStore(store)
    ns.default()  # outside the host lock: creating the row takes it
    nets = _networks(ns, c)
    try:
        with HostLock():
            for i, (net, aliases, ip_req) in enumerate(nets):
                net = _heal_default(ns, net)
                ip = _join(store, ns, net, c, aliases, ip_req, veth_name(c.id, net))
                att.endpoints.append((net, ip, veth_name(c.id, net)))
        _start_dns(store, [net for net, _, _ in att.endpoints])
        _start_watchers(store, [net for net, _, _ in att.endpoints])
        if not (getattr(c.spec, "dns", None) or []):
            att.nameserver = next((net.gateway for net, _, _ in att.endpoints if not net.is_default), None)
        _publish(att, c, image_config)
        if att.ports and _ROOTLESS_ENV in os.environ:
            from dockyard.network import rootless_netns

            rootless_netns.forward(c.id, att.ports)
        sync_hosts(store, c.id, *_peers_of(store, c.id))
    except BaseException:
        release(store, c)
        raise
    return att


def _join(store: Store, ns: NetworkStore, net: Network, c: Container, aliases: list[str], ip: str, veth: str,
          connected: bool = False) -> str:
    """The network's kernel side made and an address handed out (an overlay's claimed in the cluster store)."""
    if net.driver == "overlay":
        from dockyard.network import overlay

        return overlay.join(store, ns, net, c.id, c.name, aliases, ip, veth, connected)
    from dockyard.network import bridge

    bridge.ensure(net, store)
    return ns.allocate(net, c.id, aliases, ip, connected=connected, veth=veth)


def _leave_overlays(store: Store, cid: str, nets: list[Network], after: bool) -> None:
    """Before the local release: drop the container's cluster records; ``after`` it: tear down what is unused."""
    from dockyard.network import overlay

    for net in nets:
        if net.driver == "overlay":
            if after:
                overlay.teardown_if_unused(store, net)
            else:
                overlay.leave(store, net, cid)


def _start_watchers(store: Store, nets: list[Network]) -> None:
    """Each overlay's watcher on this host (``network.overlay_watch``), started when none runs."""
    if any(n.driver == "overlay" for n in nets):
        from dockyard.network import overlay_watch

        for net in nets:
            if net.driver == "overlay":
                overlay_watch.ensure(store.root, net.id)


# ---- published ports ----------------------------------------------------------------------------------------------
def _wanted_ports(c: Container, image_config: dict[str, Any]) -> list[tuple[str, int, int, str]]:
    """(host_ip, host_port or 0, container_port, proto) from ``-p`` and, with ``-P``, the image's ExposedPorts;
    every value checked (an image's keys are untrusted: a malformed one refuses the run)."""
    from dockyard.network import checks

    out = []
    for p in getattr(c.spec, "ports", []) or []:
        host_ip = p.get("host_ip", "") or ""
        out.append((checks.ipv4(host_ip) if host_ip else "", checks.port(p.get("host_port") or 0, "hostPort")
                    if p.get("host_port") else 0, checks.port(p["container_port"], "containerPort"),
                    _proto(p.get("proto", "tcp"))))
    if getattr(c.spec, "publish_all", False):
        have = {(cp, pr) for _, _, cp, pr in out}
        exposed = image_config.get("ExposedPorts") or {}
        if not isinstance(exposed, dict):
            raise InvalidArgument("invalid ExposedPorts in image config: not an object")
        for key in exposed:
            for port, proto in checks.exposed(key):
                if (port, proto) not in have:
                    have.add((port, proto))
                    out.append(("", 0, port, _proto(proto)))
    return out


def _proto(p: str) -> str:
    from dockyard.network import checks

    p = checks.proto(p)
    if p == "sctp":
        raise InvalidArgument("publishing sctp ports is not supported by dockyard")
    return p


def reserve(host_ip: str, port: int, proto: str) -> socket.socket:
    """Bind (not listen) the host port, so that nobody else on the host can take it; raises Docker's error."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        if proto == "tcp":  # as Docker's and Podman's: a connection in TIME_WAIT does not hold the port
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host_ip or "0.0.0.0", port))
    except OSError as e:
        s.close()
        if e.errno == 98:  # EADDRINUSE
            raise Conflict(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is already allocated") from None
        if e.errno == 99:  # EADDRNOTAVAIL
            raise InvalidArgument(f"listen {proto} {host_ip}:{port}: bind: cannot assign requested address") \
                from None
        raise
    return s


def _publish(att: Attachment, c: Container, image_config: dict[str, Any]) -> None:
    from dockyard.network import firewall

    wanted = _wanted_ports(c, image_config)
    if not wanted:
        return
    net, ip, _ = att.endpoints[0]
    socks = []
    try:
        for host_ip, hport, cport, proto in wanted:
            s = reserve(host_ip, hport, proto)
            socks.append(s)
            att.ports.append((host_ip, s.getsockname()[1], cport, proto))
        NetworkStore(att.store).add_ports(c.id, net.id, att.ports)
        firewall.publish(net, [(_fw_ip(h), hp, ip, cp, pr) for h, hp, cp, pr in att.ports])
        _enable_forwarding()
    except BaseException:
        for s in socks:
            s.close()
        raise
    for s in socks:  # held by the monitor (across its exec into the slim loop) until release()
        s.set_inheritable(True)
        s.detach()


def _fw_ip(host_ip: str) -> str:
    """The host address a DNAT matches: when rootless, slirp4netns binds the address on the host and every
    forward arrives at its tap address in the user's netns (``network.rootless_netns``)."""
    return "" if _ROOTLESS_ENV in os.environ else host_ip


def _enable_forwarding() -> None:
    from dockyard.network.bridge import _sysctl

    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")


def _close_reservations(ports: list[tuple[int, str]]) -> None:
    """Close this process's sockets bound to the given (port, proto): the monitor's reservations."""
    want = set(ports)
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in fds:
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            s = socket.socket(fileno=fd)
        except OSError:
            continue
        try:
            if s.family == socket.AF_INET:
                proto = "tcp" if s.type == socket.SOCK_STREAM else "udp"
                if (s.getsockname()[1], proto) in want:
                    s.close()
                    continue
        except OSError:
            pass
        s.detach()


# ---- release ------------------------------------------------------------------------------------------------------
def release(store: Store, c: Container, forget: bool = False, defer: bool = False) -> list[str]:
    """Undo ``prepare``/``plumb``: ports, veths, addresses; ``forget`` (rm) also drops ``connect``ed endpoints.

    Deleting a veth costs the kernel ~20 ms (an RCU grace period). With ``defer`` the veths are not deleted but
    returned, for the monitor to delete after it has told its client the exit status (they also vanish with the
    container's network namespace)."""
    if _ROOTLESS_ENV in os.environ:
        from dockyard.network import rootless_netns, slirp

        slirp.release(c.id)
        rootless_netns.unforward(c.id)
        if not NetworkStore(store).endpoints(container_id=c.id):
            return []
        return _in_netns(_release, store, c, forget, False)  # type: ignore[no-any-return]
    return _release(store, c, forget, defer)


def _release(store: Store, c: Container, forget: bool, defer: bool) -> list[str]:
    from dockyard.network import firewall

    ns = NetworkStore(store)
    ports = ns.ports(c.id)
    eps = ns.endpoints(container_id=c.id)
    if not ports and not eps:
        return []
    nets: dict[str, Network] = {}
    for r in eps:
        try:
            nets[r["network_id"]] = ns.get(r["network_id"])
        except DockyardError:
            pass
    if ports:
        by_net: dict[str, list[tuple[str, int, str, int, str]]] = {}
        for p in ports:
            by_net.setdefault(p["network_id"], []).append((_fw_ip(p["host_ip"]), p["host_port"], "0.0.0.0",
                                                           p["container_port"], p["proto"]))
        for nid, items in by_net.items():
            if nid in nets:
                firewall.unpublish(nets[nid], items)
        _close_reservations([(p["host_port"], p["proto"]) for p in ports])
        ns.remove_ports(c.id)
    active = [r for r in eps if r["ip"] is not None]
    veths = [_link_ref(store, nets.get(r["network_id"]), r["veth"]) for r in active if r["veth"]]
    if not defer:
        delete_links(veths)
    peers = _peers_of(store, c.id)
    overlays = [nets[r["network_id"]] for r in active if nets.get(r["network_id"]) and
                nets[r["network_id"]].driver == "overlay"]
    if overlays:
        _leave_overlays(store, c.id, overlays, after=False)
    ns.release(c.id, forget=forget)
    if overlays:
        _leave_overlays(store, c.id, overlays, after=True)
    sync_hosts(store, *peers)
    _drop_unused_default(store, ns, [nets[r["network_id"]] for r in active if r["network_id"] in nets])
    return veths if defer else []


def _link_ref(store: Store, net: Network | None, veth: str) -> str:
    """How ``delete_links`` finds a container's veth: its name, ``NAME@PATH`` for one in an overlay's sandbox
    (the network namespace mounted at PATH)."""
    if net is None or net.driver != "overlay":
        return veth
    from dockyard.network.overlay import sandbox_path

    return f"{veth}@{sandbox_path(store.root, net.id)}"


def delete_links(names: list[str]) -> None:
    """Delete the host ends of veth pairs (gone already when the container's namespace went first); a name
    ``NAME@PATH`` (``_link_ref``) is deleted in the namespace mounted at PATH."""
    if not names:
        return
    from dockyard.network.netlink import Netlink

    inner: dict[str, list[str]] = {}
    with Netlink() as nl:
        for name in names:  # False when gone (/sys/class/net may be another namespace's: not looked at)
            if "@" in name:
                veth, _, path = name.partition("@")
                inner.setdefault(path, []).append(veth)
            else:
                nl.delete_link(name)
    if inner:
        from dockyard.network import overlay

        for path, veths in inner.items():
            overlay.delete_veths(path, veths)


def _drop_unused_default(store: Store, ns: NetworkStore, nets: list[Network]) -> None:
    """A private root's default bridge goes away with its last container (the default root keeps dockyard0)."""
    if os.path.abspath(store.root) == DEFAULT_ROOT:
        return
    for net in nets:
        if net.is_default and net.bridge == default_bridge_name(store.root):
            from dockyard.network import bridge

            with HostLock():
                if not ns.endpoints(network_id=net.id, active=True):
                    bridge.remove(net)


# ---- live connect / disconnect ------------------------------------------------------------------------------------
def connect(store: Store, c: Container, net: Network, aliases: list[str], ip: str) -> None:
    """``network connect``: remembered for a stopped container, plumbed at once into a running one."""
    _in_netns(_connect, store, c, net, aliases, ip)


def _connect(store: Store, c: Container, net: Network, aliases: list[str], ip: str) -> None:
    ns = NetworkStore(store)
    mode = c.spec.network_mode
    if not uses_bridge(mode):
        raise Conflict("container cannot be disconnected from host network or connected to host network"
                       if mode == "host" else f"Container cannot be connected to network endpoints when using "
                       f"network mode {mode}")
    if net.id == ns.get(mode).id or any(r["network_id"] == net.id for r in ns.endpoints(container_id=c.id)):
        raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
    from dockyard.network import checks

    for a in aliases:
        checks.alias(a)
    if (aliases or ip) and net.is_default:
        raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks"
                              if aliases else "user specified IP address is supported on user defined networks only")
    if c.state != "running" or not c.pid:
        ns.configure(net, c.id, aliases, ip)
        return
    veth = veth_name(c.id, net)
    with HostLock():
        addr = _join(store, ns, net, c, aliases, ip, veth, connected=True)
    try:
        path = f"/proc/{c.pid}/ns/net"
        used = _ifnames(path)
        n = 0
        while f"eth{n}" in used:
            n += 1
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            has_default = _has_default_route(path)
            _plumb([(net, addr, veth)], fd, path, first=n, route=not has_default, root=store.root)
        finally:
            os.close(fd)
        sync_hosts(store, c.id, *_peers_of(store, c.id))
        _start_dns(store, [net])
        _start_watchers(store, [net])
    except BaseException:
        _leave_overlays(store, c.id, [net], after=False)
        ns.release(c.id, net.id, forget=True)
        _leave_overlays(store, c.id, [net], after=True)
        raise


def disconnect(store: Store, c: Container, net: Network, force: bool = False) -> None:
    _in_netns(_disconnect, store, c, net, force)


def _disconnect(store: Store, c: Container, net: Network, force: bool = False) -> None:
    ns = NetworkStore(store)
    rows = [r for r in ns.endpoints(container_id=c.id) if r["network_id"] == net.id]
    primary = c.spec.network_mode if uses_bridge(c.spec.network_mode) else ""
    if not rows and not (primary and ns.get(primary).id == net.id):
        raise Conflict(f"container {c.id} is not connected to network {net.name}")
    if primary and ns.get(primary).id == net.id:
        raise Conflict(f"container {c.name} cannot be disconnected from its own network {net.name}: "
                       "start it on another network instead")
    peers = _peers_of(store, c.id)
    if rows and rows[0]["veth"]:
        delete_links([_link_ref(store, net, rows[0]["veth"])])
    _leave_overlays(store, c.id, [net], after=False)
    ns.release(c.id, net.id, forget=True)
    _leave_overlays(store, c.id, [net], after=True)
    sync_hosts(store, c.id, *peers)


def _ifnames(nspath: str) -> set[str]:
    from dockyard.network.netlink import Netlink

    with Netlink(netns=nspath) as nl:
        return {name for _, name in nl.links()}


def _has_default_route(nspath: str) -> bool:
    from dockyard.runtime import syscalls

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    fd = os.open(nspath, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, syscalls.CLONE_NEWNET)
        try:
            with open("/proc/thread-self/net/route") as f:
                return any(ln.split()[1:2] == ["00000000"] and ln.split()[7] == "00000000" for ln in list(f)[1:])
        finally:
            syscalls.setns(home, syscalls.CLONE_NEWNET)
    finally:
        os.close(fd)
        os.close(home)


# ---- embedded DNS ------------------------------------------------------------------------------------------------
def _start_dns(store: Store, nets: list[Network]) -> None:
    """Make sure each user-defined network's DNS server runs (``network.dns``); failures are not fatal."""
    nets = [n for n in nets if not n.is_default]
    if not nets:
        return
    from dockyard.network import dns

    for net in nets:
        try:
            dns.ensure(store.root, net.id)
        except OSError:
            pass  # /etc/hosts still names the peers


# ---- /etc/hosts peers ---------------------------------------------------------------------------------------------
def _peers_of(store: Store, cid: str) -> list[str]:
    """Containers sharing a user-defined network with ``cid`` (whose /etc/hosts mention it)."""
    rows = store.query(
        "SELECT DISTINCT o.container_id FROM endpoints e JOIN endpoints o ON o.network_id=e.network_id"
        " JOIN networks n ON n.id=e.network_id WHERE e.container_id=? AND o.container_id!=? AND n.name!=?"
        " AND o.ip IS NOT NULL", (cid, cid, DEFAULT_NAME))
    return [r[0] for r in rows]


def hosts_lines(store: Store, cid: str) -> str:
    rows = store.query(
        "SELECT o.ip, o.aliases, c.name, c.id FROM endpoints e JOIN endpoints o ON o.network_id=e.network_id"
        " JOIN networks n ON n.id=e.network_id JOIN containers c ON c.id=o.container_id"
        " WHERE e.container_id=? AND e.ip IS NOT NULL AND o.ip IS NOT NULL AND n.name!=?"
        " ORDER BY n.created, o.ip", (cid, DEFAULT_NAME))
    out = []
    seen = set()
    for r in rows:
        names = [r["name"], *json.loads(r["aliases"]), r["id"][:12]]
        line = f"{r['ip']}\t{' '.join(dict.fromkeys(names))}\n"
        if line not in seen:
            seen.add(line)
            out.append(line)
    return "".join(out)


def sync_hosts(store: Store, *cids: str) -> None:
    """Rewrite (in place: the file is bind-mounted) the peers section of each container's /etc/hosts."""
    import fcntl

    for cid in dict.fromkeys(cids):
        path = store.path("containers", cid, "hosts")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        with os.fdopen(fd, "r+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            base = f.read().split(HOSTS_MARK, 1)[0]
            lines = hosts_lines(store, cid)
            f.seek(0)
            f.write(base + (HOSTS_MARK + lines if lines else ""))
            f.truncate()
