"""The engine's network verbs: ``network create|ls|inspect|rm|prune|connect|disconnect``, ``port``, and the API's
``/networks``.

A *network* is a bridge with one IPv4 subnet (``bridge``, the default one, always exists); ``host`` and ``none`` are
pseudo-networks (a container shares the host's network namespace, or gets only loopback): they are listed and
inspected like the others, with a stable ID derived from the state root, and cannot be created or removed. An
*endpoint* is one container's attachment (address, aliases, MAC). ``ref`` arguments take a name, an ID or an
unambiguous ID prefix.

    net = create_network(store, "backend", subnet="10.9.0.0/24")
    connect_network(store, "backend", "web", aliases=["api"])
    [n] = list_networks(store, {"name": ["backend"]})
"""

from __future__ import annotations

import hashlib

from dockyard.engine.options import Record
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.network.store import Network, NetworkStore
    from dockyard.state.db import Store

PSEUDO_DRIVERS = {"host": "host", "none": "null"}
LIST_FILTERS = ("name", "id", "driver", "label", "type", "scope", "dangling", "until")
PRUNE_FILTERS = ("label", "label!", "until")


class NetworkSummary(Record):
    """One network (``created``: unix time, 0 for the pseudo-networks; ``builtin``: bridge, host, none)."""

    FIELDS = {"id": "", "name": "", "driver": "bridge", "scope": "local", "labels": {}, "options": {},
              "internal": False, "created": 0.0, "builtin": False, "subnet": "", "gateway": "", "ip_range": ""}
    if TYPE_CHECKING:
        id: str
        name: str
        driver: str
        scope: str
        labels: dict[str, str]
        options: dict[str, str]
        internal: bool
        created: float
        builtin: bool
        subnet: str
        gateway: str
        ip_range: str


class NetworkPruneReport(Record):
    """``deleted``: names removed; ``errors``: one message per network that could not be removed."""

    FIELDS = {"deleted": [], "errors": []}
    if TYPE_CHECKING:
        deleted: list[str]
        errors: list[str]


def _ns(store: Store) -> NetworkStore:
    from dockyard.network.store import NetworkStore

    return NetworkStore(store)


def _options(n: Network) -> dict[str, str]:
    """What inspect shows: the driver's options, without dockyard's own bookkeeping (``dockyard.*``)."""
    return {k: v for k, v in n.options.items() if not k.startswith("dockyard.")}


def _summary(n: Network) -> NetworkSummary:
    return NetworkSummary(id=n.id, name=n.name, driver=n.driver, labels=dict(n.labels), options=_options(n),
                          scope="global" if n.driver == "overlay" else "local",
                          internal=n.internal, created=n.created, builtin=n.is_default, subnet=n.subnet,
                          gateway=n.gateway, ip_range=n.ip_range or "")


def _pseudo(store: Store, name: str) -> NetworkSummary:
    pid = hashlib.sha256(f"{store.root}\0{name}".encode()).hexdigest()
    return NetworkSummary(id=pid, name=name, driver=PSEUDO_DRIVERS[name], builtin=True)


def _all(store: Store) -> list[NetworkSummary]:
    return [_summary(n) for n in _ns(store).list()] + [_pseudo(store, name) for name in PSEUDO_DRIVERS]


def find_network(store: Store, ref: str) -> NetworkSummary:
    """The network named ``ref`` (or with that ID or unique ID prefix); NotFound otherwise."""
    nets = _all(store)
    for n in nets:
        if ref in (n.name, n.id):
            return n
    matches = [n for n in nets if n.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    raise NotFound(f"network {ref} not found")


# ---- create -------------------------------------------------------------------------------------------------------

def create_network(store: Store, name: str, *, driver: str = "bridge", subnets: list[str] | None = None,
                   gateways: list[str] | None = None, ip_ranges: list[str] | None = None, internal: bool = False,
                   ipv6: bool = False, labels: dict[str, str] | None = None,
                   options: dict[str, str] | None = None, attachable: bool = False) -> NetworkSummary:
    """``network create``: a bridge network with one IPv4 subnet (picked from the free pools when not given).
    InvalidArgument for another driver, IPv6, several subnets, a gateway/range without a subnet or a bad name;
    Conflict when the name or subnet is taken."""
    from dockyard.ids import validate_name

    subnets, gateways, ip_ranges = subnets or [], gateways or [], ip_ranges or []
    if driver == "overlay":
        return _create_overlay(store, name, subnets, gateways, ip_ranges, internal, ipv6, labels, options,
                               attachable)
    if driver != "bridge":
        raise InvalidArgument(f"plugin \"{driver}\" not found" if driver not in ("host", "null", "overlay",
                                                                               "macvlan", "ipvlan") else
                              f"network driver {driver} is not supported by dockyard")
    if ipv6:
        raise InvalidArgument("IPv6 networks are not supported by dockyard")
    if len(subnets) > 1 or len(gateways) > 1 or len(ip_ranges) > 1:
        raise InvalidArgument("dockyard networks have one IPv4 subnet")
    if (gateways or ip_ranges) and not subnets:
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    validate_name(name)
    net = _ns(store).create(name, subnet=(subnets or [""])[0], gateway=(gateways or [""])[0],
                            ip_range=(ip_ranges or [""])[0], internal=internal, labels=dict(labels or {}),
                            options=dict(options or {}))
    from dockyard.engine import events

    events.emit(store, "network", "create", net.id, {"name": net.name, "type": "bridge"})
    return _summary(net)


def _create_overlay(store: Store, name: str, subnets: list[str], gateways: list[str], ip_ranges: list[str],
                    internal: bool, ipv6: bool, labels: dict[str, str] | None, options: dict[str, str] | None,
                    attachable: bool) -> NetworkSummary:
    """``network create -d overlay``: recorded in the cluster store, seen by every host (``network.overlay``)."""
    from dockyard.ids import validate_name
    from dockyard.network import overlay

    if ipv6:
        raise InvalidArgument("IPv6 networks are not supported by dockyard")
    if len(subnets) > 1 or len(gateways) > 1 or ip_ranges:
        raise InvalidArgument("dockyard overlay networks have one IPv4 subnet (no --ip-range)")
    if gateways and not subnets:
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    for k in options or {}:
        if k.startswith("dockyard.") or k in (overlay.VNI_OPT, overlay.MTU_OPT):
            raise InvalidArgument(f"network option {k} cannot be set")
    validate_name(name)
    if store.query("SELECT 1 FROM networks WHERE name=?", (name,)) or name in PSEUDO_DRIVERS:
        raise Conflict(f"network with name {name} already exists")
    nid = overlay.create(store.root, name, (subnets or [""])[0], (gateways or [""])[0], attachable, internal,
                         dict(labels or {}), dict(options or {}))
    net = _ns(store).get(nid)
    from dockyard.engine import events

    events.emit(store, "network", "create", net.id, {"name": net.name, "type": "overlay"})
    return _summary(net)


# ---- list / inspect -----------------------------------------------------------------------------------------------

def _used(store: Store) -> set[str]:
    """Names of networks some container (in any state) is attached to or asks for."""
    from dockyard.engine.containers import ContainerStore

    out = {c.spec.network_mode for c in ContainerStore(store).list()}
    out.update(r[0] for r in store.query(
        "SELECT DISTINCT n.name FROM endpoints e JOIN networks n ON n.id=e.network_id"))
    return out


def check_filters(filters: dict[str, list[str]]) -> None:
    for k, vals in filters.items():
        if k not in LIST_FILTERS:
            raise InvalidArgument(f"invalid filter '{k}'")
        if k == "type":
            for v in vals:
                if v not in ("custom", "builtin"):
                    raise InvalidArgument(f"invalid filter: 'type'='{v}'")


def _match(n: NetworkSummary, by: dict[str, list[str]], used: set[str] | None) -> bool:
    for k, vals in by.items():
        if k == "name" and not any(v in n.name for v in vals):
            return False
        if k == "id" and not any(n.id.startswith(v) for v in vals):
            return False
        if k == "driver" and n.driver not in vals:
            return False
        if k == "scope" and n.scope not in vals:
            return False
        if k == "type" and ("builtin" if n.builtin else "custom") not in vals:
            return False
        if k == "label":
            for v in vals:
                lk, sep, lv = v.partition("=")
                if lk not in n.labels or (sep and n.labels[lk] != lv):
                    return False
        if k == "dangling" and used is not None:
            want = {v.lower() in ("true", "1") for v in vals}
            if len(want) == 1 and (n.name not in used and not n.builtin) not in want:
                return False
    return True


def list_networks(store: Store, filters: dict[str, list[str]] | None = None) -> list[NetworkSummary]:
    """``network ls``, sorted by name: filters ``name`` (substring), ``id`` (prefix), ``driver``, ``label``,
    ``type`` (custom|builtin), ``scope``, ``dangling`` (no container uses it)."""
    by = dict(filters or {})
    check_filters(by)
    used = _used(store) if "dangling" in by else None
    return sorted((n for n in _all(store) if _match(n, by, used)), key=lambda n: n.name)


def inspect_network(store: Store, ref: str) -> dict[str, Any]:
    """Docker's network inspect JSON (containers with an address on it included); NotFound for an unknown ref."""
    from dockyard.timeparse import rfc3339_nano

    n = find_network(store, ref)
    net = None if n.name in PSEUDO_DRIVERS else _ns(store).get(n.id)
    containers: dict[str, Any] = {}
    cfg: list[dict[str, str]] = []
    options: dict[str, str] = {}
    if net is not None:
        c = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            c["IPRange"] = net.ip_range
        cfg.append(c)
        options = _options(net)
        rows = store.query("SELECT e.*, c.name FROM endpoints e JOIN containers c ON c.id=e.container_id"
                           " WHERE e.network_id=? AND e.ip IS NOT NULL", (net.id,))
        for r in rows:
            containers[r["container_id"]] = {
                "Name": r["name"],
                "EndpointID": hashlib.sha256(f"{net.id}{r['container_id']}".encode()).hexdigest(),
                "MacAddress": r["mac"] or "", "IPv4Address": f"{r['ip']}/{net.prefixlen}", "IPv6Address": ""}
    return {
        "Name": n.name, "Id": n.id, "Created": rfc3339_nano(n.created) if n.created else "0001-01-01T00:00:00Z",
        "Scope": n.scope, "Driver": n.driver, "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {} if net is not None and not net.is_default else None,
                 "Config": cfg},
        "Internal": n.internal,
        "Attachable": net is not None and net.options.get("dockyard.attachable") == "true", "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Containers": containers, "Options": options, "Labels": n.labels,
    }


# ---- remove / prune -----------------------------------------------------------------------------------------------

def remove_network(store: Store, ref: str) -> None:
    """``network rm``: Conflict for host/none/bridge or while a container is attached; NotFound if unknown."""
    if ref in PSEUDO_DRIVERS:
        raise Conflict(f"{ref} is a pre-defined network and cannot be removed")
    ns = _ns(store)
    net = ns.get(ref)
    ns.remove(net)
    from dockyard.engine import events

    events.emit(store, "network", "destroy", net.id, {"name": net.name, "type": net.driver})


def prune_networks(store: Store, filters: dict[str, list[str]] | None = None) -> NetworkPruneReport:
    """``network prune``: every custom network no container uses; filters ``label``, ``label!``, ``until``
    (accepted as Docker does)."""
    by = dict(filters or {})
    for k in by:
        if k not in PRUNE_FILTERS:
            raise InvalidArgument(f"invalid filter '{k}'")
    used = _used(store)
    ns = _ns(store)
    report = NetworkPruneReport()
    for n in sorted(ns.list(), key=lambda n: n.name):
        if n.is_default or n.name in used:
            continue
        if not _match(_summary(n), {"label": by["label"]} if "label" in by else {}, None):
            continue
        if any(v.partition("=")[0] in n.labels for v in by.get("label!", [])):
            continue
        try:
            ns.remove(n)
            report.deleted.append(n.name)
            from dockyard.engine import events

            events.emit(store, "network", "destroy", n.id, {"name": n.name, "type": "bridge"})
        except DockyardError as e:
            report.errors.append(str(e))
    return report


# ---- connect / disconnect / ports ---------------------------------------------------------------------------------

def connect_network(store: Store, ref: str, container: str, aliases: list[str] | None = None, ip: str = "") -> None:
    """``network connect``: attach a container (live when it runs) with optional aliases and address."""
    from dockyard.engine.containers import ContainerStore
    from dockyard.network.attach import connect

    net = _ns(store).get(ref)
    c = ContainerStore(store).get(container)
    if _own_network_stopped(store, c, net):
        _set_own_endpoint(store, c, net, list(aliases or []), ip)
    else:
        connect(store, c, net, list(aliases or []), ip)
    from dockyard.engine import events

    events.emit(store, "network", "connect", net.id, {"name": net.name, "type": "bridge", "container": c.id})


def disconnect_network(store: Store, ref: str, container: str, force: bool = False) -> None:
    """``network disconnect``: detach a container (live when it runs)."""
    from dockyard.engine.containers import ContainerStore
    from dockyard.network.attach import disconnect

    net = _ns(store).get(ref)
    c = ContainerStore(store).get(container)
    if _own_network_stopped(store, c, net):
        _set_own_endpoint(store, c, net, [], "")
    else:
        disconnect(store, c, net, force)
    from dockyard.engine import events

    events.emit(store, "network", "disconnect", net.id, {"name": net.name, "type": "bridge", "container": c.id})


def _own_network_stopped(store: Store, c: Any, net: Network) -> bool:
    """Whether ``net`` is the network a container that is not running was created on (its network mode)."""
    from dockyard.network.attach import uses_bridge

    mode = c.spec.network_mode
    if c.running or not uses_bridge(mode):
        return False
    try:
        return _ns(store).get(mode).id == net.id
    except NotFound:
        return False


def _set_own_endpoint(store: Store, c: Any, net: Network, aliases: list[str], ip: str) -> None:
    """Disconnect/connect of a stopped container and the network it was created on: its endpoint settings
    (aliases, address) are replaced; it starts on that network, as dockerd starts a container with no network
    left on its network mode's. Compose 1.x disconnects and connects each network of a created container to set
    its aliases."""
    import ipaddress
    from dockyard import jsonc as json

    from dockyard.engine.containers import ContainerStore
    from dockyard.network import checks

    for a in aliases:
        checks.alias(a)
    if (aliases or ip) and net.is_default:
        raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks"
                              if aliases else "user specified IP address is supported on user defined networks only")
    if ip:
        try:
            ok = ipaddress.ip_address(ip) in ipaddress.ip_network(net.subnet, strict=False)
        except ValueError:
            ok = False
        if not ok:
            raise InvalidArgument(f"invalid IP address {ip!r}: not in network {net.name}'s subnet {net.subnet}")
    cfg = dict(c.config)
    cfg["aliases"], cfg["ip"] = aliases, ip
    ContainerStore(store).update(c.id, config=json.dumps(cfg))


def container_ports(store: Store, container: str) -> list[tuple[str, str]]:
    """``port``: (``80/tcp``, ``0.0.0.0:8000``) for each published port of a container."""
    from dockyard.engine.containers import ContainerStore

    cid = ContainerStore(store).get(container).id
    return [(f"{r['container_port']}/{r['proto']}", f"{r['host_ip'] or '0.0.0.0'}:{r['host_port']}")
            for r in _ns(store).ports(cid)]
