"""Allow-lists for every value that reaches the host's network configuration: a firewall rule, an interface name,
a sysctl path. Values come from users (``-p``, ``network create -o``), from images (``ExposedPorts``) and from the
store; each is checked here against the form it must have and returned in canonical form, or refused with
``InvalidArgument`` (one line for the user). The firewall (``network.firewall``) calls these again on whatever it
puts into a rule, so a value that slipped past a parser still never reaches the kernel.

Example::

    port(8080) -> 8080            port("80; drop") -> InvalidArgument
    proto("TCP") -> "tcp"         exposed("8000-8001/udp") -> [(8000, "udp"), (8001, "udp")]
    ifname("dy-0123abcd") -> "dy-0123abcd"      ifname("../all") -> InvalidArgument
"""

from __future__ import annotations

from dockyard.errors import InvalidArgument

PROTOCOLS = ("tcp", "udp", "sctp")
IFNAMSIZ = 16  # the kernel's buffer, NUL included: 15 usable characters
_IFNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def port(v: object, what: str = "port") -> int:
    """A TCP/UDP port number, 1-65535, given as an int or a string of decimal digits."""
    if isinstance(v, bool):
        raise InvalidArgument(f"invalid {what}: {v!r}")
    if isinstance(v, str):
        if not (v.isascii() and v.isdigit() and len(v) <= 5):
            raise InvalidArgument(f"invalid {what}: {v!r}")
        v = int(v)
    if not isinstance(v, int) or not 0 < v <= 65535:
        raise InvalidArgument(f"invalid {what}: {v!r}")
    return v


def proto(v: object) -> str:
    """One of tcp, udp, sctp (any case)."""
    if not isinstance(v, str) or v.lower() not in PROTOCOLS:
        raise InvalidArgument(f"invalid proto: {v!r}")
    return v.lower()


def ipv4(v: object, what: str = "IP address") -> str:
    """A dotted-quad IPv4 address, canonical (``ipaddress`` refuses leading zeros and anything else)."""
    import ipaddress

    try:
        if not isinstance(v, str):
            raise ValueError
        return str(ipaddress.IPv4Address(v))
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {v!r}") from None


def ipv4_network(v: object) -> tuple[str, int]:
    """``"172.18.0.0/16"`` -> ("172.18.0.0", 16); host bits must be zero."""
    import ipaddress

    try:
        if not isinstance(v, str):
            raise ValueError
        n = ipaddress.IPv4Network(v, strict=True)
    except ValueError:
        raise InvalidArgument(f"invalid subnet: {v!r}") from None
    return str(n.network_address), n.prefixlen


def ifname(v: object, what: str = "bridge name") -> str:
    """A Linux interface name: 1-15 characters of letters, digits, ``_``, ``.``, ``-``; not ``.`` or ``..``
    (it becomes a directory name under /proc/sys/net/ipv4/conf and /sys/class/net)."""
    if not isinstance(v, str) or not v:
        raise InvalidArgument(f"invalid {what}: {v!r}")
    if len(v) >= IFNAMSIZ:
        raise InvalidArgument(f"{what} {v} is longer than {IFNAMSIZ - 1} characters")
    if not set(v) <= _IFNAME_CHARS or v in (".", "..") or v[0] == "-":
        raise InvalidArgument(f"invalid {what} {v!r}: only letters, digits, '_', '.' and '-' are allowed")
    return v


def exposed(key: object) -> list[tuple[int, str]]:
    """An image's ``ExposedPorts`` key (``80``, ``80/tcp``, ``8000-8010/udp``) -> [(port, proto), ...]."""
    if not isinstance(key, str):
        raise InvalidArgument(f"invalid exposed port in image config: {key!r}")
    num, _, pr = key.partition("/")
    try:
        p = proto(pr or "tcp")
        lo, sep, hi = num.partition("-")
        a = port(lo)
        b = port(hi) if sep else a
    except InvalidArgument:
        raise InvalidArgument(f"invalid exposed port in image config: {key!r}") from None
    if b < a:
        raise InvalidArgument(f"invalid exposed port in image config: {key!r}")
    return [(n, p) for n in range(a, b + 1)]


def mac(v: object) -> bytes:
    """``--mac-address``: six hex octets separated by ``:`` or ``-``, unicast -> its 6 bytes."""
    s = v.replace("-", ":") if isinstance(v, str) else ""
    parts = s.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        raise InvalidArgument(f"invalid MAC address: {v!r}")
    raw = bytes.fromhex("".join(parts))
    if raw[0] & 1:
        raise InvalidArgument(f"invalid MAC address: {v!r}: a multicast address")
    return raw


def alias(v: object) -> str:
    """A network alias (a name in peers' /etc/hosts and the embedded DNS): printable, no whitespace, <= 255."""
    if not isinstance(v, str) or not v or len(v) > 255 or not v.isprintable() or any(c.isspace() for c in v) \
            or v.startswith("#"):
        raise InvalidArgument(f"invalid network alias: {v!r}")
    return v
