"""A network's kernel side: its Linux bridge (with the gateway address) and its firewall table.

``ensure`` is idempotent and cheap when the bridge exists (one netlink query); it runs whenever a container is
about to join the network, so a reboot (which loses bridges and rules, not the store) heals itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.network.store import Network

from dockyard.errors import from_oserror


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


def ensure(net: Network) -> bool:
    """Make the bridge, its address and firewall table if missing; True if it had to. Enables IPv4 forwarding
    for networks that route outside (not ``--internal``)."""
    from dockyard.network import firewall
    from dockyard.network.netlink import Netlink, NetlinkError
    from dockyard.network.store import GROUP

    created = False
    try:
        with Netlink() as nl:
            idx = nl.index(net.bridge)
            if idx is None:
                idx = nl.create_bridge(net.bridge, group=GROUP)
                created = True
                try:
                    nl.add_address(idx, net.gateway, net.prefixlen, net.broadcast)
                    _sysctl(f"/proc/sys/net/ipv4/conf/{net.bridge}/route_localnet", "1")
                    firewall.install(net)
                except BaseException:
                    nl.delete_link(net.bridge)
                    raise
    except NetlinkError as e:
        raise from_oserror(f"failed to create bridge {net.bridge}", e) from None
    if not net.internal:
        _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    return created


def remove(net: Network) -> None:
    from dockyard.network import firewall
    from dockyard.network.netlink import Netlink

    firewall.uninstall(net)
    with Netlink() as nl:
        nl.delete_link(net.bridge)
