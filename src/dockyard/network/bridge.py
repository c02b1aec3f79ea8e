"""A network's kernel side: its Linux bridge (with the gateway address) and its firewall table.

``ensure`` is idempotent and cheap when the bridge and its table exist (two netlink queries); it runs whenever a
container is about to join the network, so a reboot or a flushed ruleset (which lose bridges and rules, not the
store) heals itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.network.store import Network
    from dockyard.state.db import Store

from dockyard.errors import Conflict, from_oserror


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass


def exists(net: Network) -> bool:
    from dockyard.network.netlink import Netlink

    with Netlink() as nl:
        return nl.index(net.bridge) is not None


def ensure(net: Network, store: Store | None = None) -> bool:
    """Make the bridge, its address and firewall table if missing; True if it had to make the bridge.

    The table is checked on every call (``firewall.current``: one netlink query) and re-made when it is missing or
    out of date (``nft flush ruleset``, an older dockyard), with the published ports of the network's running
    containers (read from ``store``). Enables IPv4 forwarding for networks that route outside (not ``--internal``).
    An existing interface of that name that is not a bridge is refused, never enslaved or configured."""
    from dockyard.network import checks, firewall
    from dockyard.network.netlink import Netlink, NetlinkError
    from dockyard.network.store import GROUP, NetworkStore

    name = checks.ifname(net.bridge)
    created = False
    try:
        with Netlink() as nl:
            link = nl.link(name)
            if link is None:
                idx = nl.create_bridge(name, group=GROUP)
                created = True
            elif link[1] != "bridge":
                raise Conflict(f"network {net.name}: interface {name} exists and is not a bridge")
            else:
                idx = link[0]
            if created or not firewall.current(net):
                try:
                    nl.add_address(idx, net.gateway, net.prefixlen, net.broadcast)
                    ports = [] if created or store is None else NetworkStore(store).published(net.id)
                    firewall.install(net, ports)  # before route_localnet: its filter must be there first
                    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
                except BaseException:
                    if created:
                        nl.delete_link(name)
                    raise
    except NetlinkError as e:
        raise from_oserror(f"failed to create bridge {net.bridge}", e) from None
    if not net.internal:
        _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    return created


def remove(net: Network) -> None:
    """Delete the network's table and, if dockyard made it, its bridge. An adopted bridge stays, with
    ``route_localnet`` back off (its filter is gone with the table)."""
    from dockyard.network import checks, firewall
    from dockyard.network.netlink import Netlink

    name = checks.ifname(net.bridge)
    firewall.uninstall(net)
    if not net.own_bridge:
        _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "0")
        return
    with Netlink() as nl:
        nl.delete_link(name)
