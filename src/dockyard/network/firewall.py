"""The host firewall for dockyard networks: one nftables table per bridge, made with the ``nft`` command.

Each network gets ``table ip dockyard-<bridge>`` (created with its bridge, deleted with it), so dockyard never edits
anybody else's rules and removing a network removes every rule it had. In it:

- ``prerouting``/``output`` (nat): packets for a local address whose (protocol, port), or (address, protocol,
  port), is in the ``ports``/``ports_ip`` maps are DNATed to the container: published ports answer on every host
  address, on 127.0.0.1 (``route_localnet`` on the bridge plus a masquerade of 127.0.0.0/8 leaving by it) and from
  other containers. A container's ports are map *elements*: publishing or unpublishing is one ``nft`` call.
- ``postrouting`` (nat): outbound masquerade of the subnet (not for ``--internal``), and hairpin masquerade for a
  container reaching a neighbour through a published port.
- ``forward`` (filter): isolation. Every dockyard bridge carries interface group ``GROUP``; a packet routed into
  this bridge from another dockyard bridge is dropped (unless it is a published port's DNAT). ``--internal`` drops
  whatever would leave or enter the bridge from outside.
- ``input`` (filter, user-defined networks): DNS packets for the gateway's port 53 (the network's embedded DNS
  server, ``network.dns``) coming from another interface are dropped.

nftables tables are independent of iptables (nft or legacy backend): the host's own iptables rules are untouched.
"""

from __future__ import annotations

import shutil
import subprocess
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.network.store import Network

from dockyard.errors import SystemFailure


def table(net: Network) -> str:
    return f"dockyard-{net.bridge}"


def _nft(script: str, check: bool = True) -> bool:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    try:
        p = subprocess.run([nft, "-f", "-"], input=script.encode(), capture_output=True)
    except FileNotFoundError:
        raise SystemFailure("nft not found: install the nftables package") from None
    if p.returncode != 0 and check:
        raise SystemFailure(f"nft: {p.stderr.decode(errors='replace').strip().splitlines()[0] if p.stderr else ''}")
    return p.returncode == 0


def install(net: Network) -> None:
    from dockyard.network.store import GROUP

    br, t = net.bridge, table(net)
    post = [f'oifname "{br}" ip saddr 127.0.0.0/8 masquerade',
            f'oifname "{br}" iifname "{br}" ct status dnat masquerade']
    fwd = []
    if net.internal:
        fwd += [f'iifname "{br}" oifname != "{br}" drop', f'oifname "{br}" iifname != "{br}" drop']
    else:
        post.append(f'ip saddr {net.subnet} oifname != "{br}" masquerade')
    fwd += ["ct status dnat accept", f'oifname "{br}" iifname != "{br}" iifgroup {GROUP} drop']
    dnat = ["fib daddr type local dnat to meta l4proto . th dport map @ports",
            "fib daddr type local dnat to ip daddr . meta l4proto . th dport map @ports_ip"]
    nl = "\n    "
    dns = "" if net.is_default else (  # the embedded DNS server (network.dns) answers only its own bridge
        f"  chain input {{ type filter hook input priority filter; policy accept;\n"
        f'    ip daddr {net.gateway} meta l4proto {{ udp, tcp }} th dport 53 iifname != "{br}" drop\n  }}\n')
    script = f"""add table ip {t}
delete table ip {t}
table ip {t} {{
  map ports {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
  map ports_ip {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
    {nl.join(dnat)}
  }}
  chain output {{ type nat hook output priority -100; policy accept;
    {nl.join(dnat)}
  }}
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;
    {nl.join(post)}
  }}
  chain forward {{ type filter hook forward priority filter; policy accept;
    {nl.join(fwd)}
  }}
{dns}}}
"""
    _nft(script)


def uninstall(net: Network) -> None:
    _nft(f"add table ip {table(net)}\ndelete table ip {table(net)}\n", check=False)


def _elements(net: Network, ports: list[tuple[str, int, str, int, str]], with_values: bool) -> list[str]:
    """(host_ip, host_port, container_ip, container_port, proto) -> nft element lines for the two maps."""
    out = []
    for host_ip, hport, cip, cport, proto in ports:
        value = f" : {cip} . {cport}" if with_values else ""
        if host_ip and host_ip != "0.0.0.0":
            out.append(f"ports_ip {{ {host_ip} . {proto} . {hport}{value} }}")
        else:
            out.append(f"ports {{ {proto} . {hport}{value} }}")
    return out


def publish(net: Network, ports: list[tuple[str, int, str, int, str]]) -> None:
    if ports:
        _nft("".join(f"add element ip {table(net)} {e}\n" for e in _elements(net, ports, True)))


def unpublish(net: Network, ports: list[tuple[str, int, str, int, str]]) -> None:
    for e in _elements(net, ports, False):  # one by one: an element already gone must not stop the others
        _nft(f"delete element ip {table(net)} {e}\n", check=False)
