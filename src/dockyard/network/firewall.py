"""The host firewall for dockyard networks: one nftables table per bridge, given to ``nft -j -f -`` as JSON data.

Rules are built as data (nft's JSON schema), never as rule text: every value in them (interface names, addresses,
ports, protocols) is checked by ``network.checks`` first, so nothing from an image or a user can add syntax of its
own (a crafted ``ExposedPorts`` key once added a table of its own to the host's ruleset).

Each network gets ``table ip dockyard-<bridge>`` (created with its bridge, deleted with it), so dockyard never edits
anybody else's rules and removing a network removes every rule it had. It holds an empty chain named ``VERSION``
(nft 1.0's JSON input drops table comments): ``current()`` looks for it in one netlink query
(``netlink.nft_has_chain``, ~50 us, no process), so a table lost to ``nft flush ruleset`` or made by an older
dockyard is re-made whenever a container joins the network (``bridge.ensure``). In it:

- ``prerouting``/``output`` (nat): packets for a local address whose (protocol, port), or (address, protocol,
  port), is in the ``ports``/``ports_ip`` maps (address maps ``*_addr``, port maps ``*_port``) are DNATed to the
  container: published ports answer on every host address, on 127.0.0.1 (``route_localnet`` on the bridge plus a
  masquerade of 127.0.0.0/8 leaving by it) and from other containers. A container's ports are map *elements*:
  publishing or unpublishing is one ``nft`` call.
- ``postrouting`` (nat): outbound masquerade of the subnet (not for ``--internal``), and hairpin masquerade for a
  container reaching a neighbour through a published port.
- ``forward`` (filter): a published port's DNAT is accepted; then isolation: every dockyard bridge carries
  interface group ``GROUP`` and a packet routed into this bridge from another dockyard bridge is dropped;
  ``--internal`` drops whatever would leave or enter the bridge from outside; and a packet routed into the bridge
  from anywhere else that is neither DNATed nor part of an established connection is dropped (Docker 28: with
  ip_forward=1, unpublished ports must not answer the LAN).
- ``input`` (filter): packets arriving by the bridge for 127.0.0.0/8 are dropped unless they belong to a DNATed
  connection (kube-proxy's answer to CVE-2020-8558: ``route_localnet`` must not open the host's loopback services to
  containers); on user-defined networks, DNS packets for the gateway's port 53 (the network's embedded DNS server,
  ``network.dns``) coming from another interface are dropped.

nftables tables are independent of iptables (nft or legacy backend): the host's own iptables rules are untouched.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.network.store import Network

from dockyard import jsonc as json
from dockyard.errors import SystemFailure

VERSION = "rules-v2"  # bump when the rules change: tables of an older version are re-made
Port = tuple[str, int, str, int, str]  # (host_ip or "", host_port, container_ip, container_port, proto)


def table(net: Network) -> str:
    from dockyard.network import checks

    return f"dockyard-{checks.ifname(net.bridge)}"


def _nft(commands: list[dict[str, Any]], check: bool = True) -> bool:
    import subprocess  # only when rules change: a container joining a network with its table in place runs no nft

    from dockyard import libexec

    nft = libexec.system_dep("nft")
    data = json.dumps({"nftables": commands}).encode()
    try:
        if nft is None:
            raise FileNotFoundError(2, "not found")
        p = subprocess.run([nft, "-j", "-f", "-"], input=data, capture_output=True)
    except (FileNotFoundError, PermissionError):
        raise SystemFailure(libexec.missing_message("nft")) from None
    if p.returncode != 0 and check:
        lines = [ln for ln in p.stderr.decode(errors="replace").splitlines() if ln.strip()]
        raise SystemFailure(f"nft: {lines[0] if lines else 'exit status ' + str(p.returncode)}")
    return p.returncode == 0


# ---- expressions ---------------------------------------------------------------------------------------------------
def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _field(proto: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": proto, "field": field}}


def _prefix(addr: str, plen: int) -> dict[str, Any]:
    return {"prefix": {"addr": addr, "len": plen}}


_DNAT_STATUS = {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}
_NOT_DNAT = _match({"&": [{"ct": {"key": "status"}}, "dnat"]}, 0)
_ESTABLISHED = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}
_LOCAL_DADDR = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
_KEY = [_meta("l4proto"), _field("th", "dport")]
_KEY_IP = [_field("ip", "daddr"), *_KEY]


def _dnat(maps: str, key: list[dict[str, Any]]) -> list[dict[str, Any]]:
    k = {"concat": key}
    return [_LOCAL_DADDR, {"dnat": {"family": "ip", "addr": {"map": {"key": k, "data": f"@{maps}_addr"}},
                                    "port": {"map": {"key": k, "data": f"@{maps}_port"}}}}]


def ruleset(net: Network) -> list[dict[str, Any]]:
    """The nft JSON commands that (re)make the network's table, atomically (one transaction), empty maps."""
    from dockyard.network import checks
    from dockyard.network.store import GROUP

    br, t = checks.ifname(net.bridge), table(net)
    subnet, plen = checks.ipv4_network(net.subnet)
    gateway = checks.ipv4(net.gateway)
    tbl = {"family": "ip", "name": t}
    cmds: list[dict[str, Any]] = [{"add": {"table": tbl}}, {"delete": {"table": tbl}},
                                  {"add": {"table": tbl}},
                                  {"add": {"chain": {"family": "ip", "table": t, "name": VERSION}}}]
    for name, key in (("ports", ["inet_proto", "inet_service"]), ("ports_ip", ["ipv4_addr", "inet_proto",
                                                                                "inet_service"])):
        for suffix, data in (("addr", "ipv4_addr"), ("port", "inet_service")):
            cmds.append({"add": {"map": {"family": "ip", "table": t, "name": f"{name}_{suffix}", "type": key,
                                         "map": data}}})
    iif, oif = _meta("iifname"), _meta("oifname")
    chains: dict[str, tuple[str, str, int, list[list[dict[str, Any]]]]] = {
        "prerouting": ("nat", "prerouting", -100, [_dnat("ports", _KEY), _dnat("ports_ip", _KEY_IP)]),
        "output": ("nat", "output", -100, [_dnat("ports", _KEY), _dnat("ports_ip", _KEY_IP)]),
        "postrouting": ("nat", "postrouting", 100, [
            [_match(oif, br), _match(_field("ip", "saddr"), _prefix("127.0.0.0", 8)), {"masquerade": None}],
            [_match(oif, br), _match(iif, br), _DNAT_STATUS, {"masquerade": None}],
        ]),
        "forward": ("filter", "forward", 0, [
            [_DNAT_STATUS, {"accept": None}],
            [_match(oif, br), _match(iif, br, "!="), _match(_meta("iifgroup"), GROUP), {"drop": None}],
        ]),
        "input": ("filter", "input", 0, [
            [_match(iif, br), _match(_field("ip", "daddr"), _prefix("127.0.0.0", 8)), _NOT_DNAT, {"drop": None}],
        ]),
    }
    if net.internal:
        chains["forward"][3].extend([[_match(iif, br), _match(oif, br, "!="), {"drop": None}],
                                     [_match(oif, br), _match(iif, br, "!="), {"drop": None}]])
    else:
        chains["postrouting"][3].append([_match(_field("ip", "saddr"), _prefix(subnet, plen)), _match(oif, br, "!="),
                                         {"masquerade": None}])
        chains["forward"][3].extend([[_match(oif, br), _match(iif, br, "!="), _ESTABLISHED, {"accept": None}],
                                     [_match(oif, br), _match(iif, br, "!="), {"drop": None}]])
    if not net.is_default:  # the embedded DNS server (network.dns) answers only its own bridge
        chains["input"][3].append([_match(_field("ip", "daddr"), gateway),
                                   _match(_meta("l4proto"), {"set": ["udp", "tcp"]}),
                                   _match(_field("th", "dport"), 53), _match(iif, br, "!="), {"drop": None}])
    for name, (kind, hook, prio, rules) in chains.items():
        cmds.append({"add": {"chain": {"family": "ip", "table": t, "name": name, "type": kind, "hook": hook,
                                       "prio": prio, "policy": "accept"}}})
        cmds += [{"add": {"rule": {"family": "ip", "table": t, "chain": name, "expr": expr}}} for expr in rules]
    return cmds


def current(net: Network) -> bool:
    """True when the network's table exists and was made by these rules (``VERSION``); one netlink query."""
    from dockyard.network.netlink import NetlinkError, nft_has_chain

    try:
        return nft_has_chain(table(net), VERSION)
    except NetlinkError:
        return False


def install(net: Network, ports: list[Port] = ()) -> None:  # type: ignore[assignment]
    """(Re)make the network's table, with the given published ports in its maps, in one transaction."""
    _nft(ruleset(net) + _elements("add", net, list(ports)))


def uninstall(net: Network) -> None:
    tbl = {"family": "ip", "name": table(net)}
    _nft([{"add": {"table": tbl}}, {"delete": {"table": tbl}}], check=False)


def _elements(verb: str, net: Network, ports: list[Port]) -> list[dict[str, Any]]:
    """``add``/``delete`` commands for the map elements of published ports, every value checked."""
    from dockyard.network import checks

    t = table(net)
    out: list[dict[str, Any]] = []
    for host_ip, hport, cip, cport, proto in ports:
        key: list[Any] = [checks.proto(proto), checks.port(hport, "hostPort")]
        name = "ports"
        if host_ip and host_ip != "0.0.0.0":
            key.insert(0, checks.ipv4(host_ip))
            name = "ports_ip"
        values = (checks.ipv4(cip), checks.port(cport, "containerPort")) if verb == "add" else (None, None)
        for suffix, value in zip(("addr", "port"), values):
            elem = [{"concat": key}, value] if verb == "add" else {"concat": key}
            out.append({verb: {"element": {"family": "ip", "table": t, "name": f"{name}_{suffix}",
                                           "elem": [elem]}}})
    return out


def publish(net: Network, ports: list[Port]) -> None:
    if ports:
        _nft(_elements("add", net, ports))


def unpublish(net: Network, ports: list[Port]) -> None:
    cmds = _elements("delete", net, ports)
    if cmds and not _nft(cmds, check=False):
        for cmd in cmds:  # one by one: an element already gone must not stop the others
            _nft([cmd], check=False)
