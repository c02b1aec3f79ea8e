"""``-p`` values (Docker's syntax) -> published port records, and the checks ``run`` makes before creating.

Forms: ``CPORT``, ``HPORT:CPORT``, ``IP:HPORT:CPORT``, ``IP::CPORT``, each with an optional ``/tcp`` or ``/udp``,
and ranges of equal length (``8000-8001:80-81``). A host port of 0 means "any free port", chosen at start.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine.options import ContainerSpec
    from dockyard.state.db import Store

from dockyard.errors import InvalidArgument


def _range(s: str, what: str, allow_empty: bool) -> list[int]:
    if not s:
        if allow_empty:
            return [0]
        raise InvalidArgument(f"no port specified: {s}<empty>")
    lo, sep, hi = s.partition("-")
    try:
        if not (lo.isascii() and lo.isdigit() and (not sep or hi.isascii() and hi.isdigit())):
            raise ValueError
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {s}") from None
    if not (0 < a <= 65535 and 0 < b <= 65535) or b < a:
        raise InvalidArgument(f"invalid {what}: {s}")
    return list(range(a, b + 1))


def parse(values: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for v in values:
        rest, _, proto = v.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp"):
            raise InvalidArgument(f"invalid proto: {proto}")
        parts = rest.rsplit(":", 2)
        host_ip = ""
        if len(parts) == 3:
            host_ip, hp, cp = parts
            host_ip = host_ip.strip("[]")
            if host_ip:
                from dockyard.network.checks import ipv4

                try:
                    host_ip = ipv4(host_ip)
                except InvalidArgument:
                    raise InvalidArgument(f"invalid IP address: {host_ip}") from None
        elif len(parts) == 2:
            hp, cp = parts
        else:
            hp, cp = "", parts[0]
        cports = _range(cp, "containerPort", False)
        hports = _range(hp, "hostPort", True)
        if hports != [0] and len(hports) != len(cports):
            raise InvalidArgument(f"invalid ranges specified for container and host Ports: {cp} and {hp}")
        for i, c in enumerate(cports):
            out.append({"host_ip": "" if host_ip == "0.0.0.0" else host_ip,
                        "host_port": hports[i] if hports != [0] else 0, "container_port": c, "proto": proto})
    return out


def warnings(spec: ContainerSpec) -> list[str]:
    """What Docker's create answers in ``Warnings`` (the CLI prints each as ``WARNING: ...`` on stderr)."""
    if spec.network_mode == "host" and spec.ports:
        return ["Published ports are discarded when using host network mode"]
    return []


def check(store: Store, spec: ContainerSpec) -> None:
    """What ``docker create`` refuses before anything exists: an unknown network, aliases or --ip on the default
    bridge, and an explicit host port that is already taken (on the host, or by another container). With
    ``--network host`` and no ``--hostname`` the container gets the host's name (Docker's create sets it)."""
    from dockyard.errors import Conflict

    mode = spec.network_mode
    if getattr(spec, "mac_address", "") or spec.aliases:
        from dockyard.network import checks

        if getattr(spec, "mac_address", ""):
            checks.mac(spec.mac_address)
        for a in spec.aliases:
            checks.alias(a)
    if mode == "bridge" and not (spec.aliases or spec.ip or spec.ports):
        return  # the default network needs nothing checked (and no store query on run's hot path)
    if mode == "host" and not spec.hostname:
        import os

        spec.hostname = os.uname().nodename  # as Docker's create: the host's name is the container's config
    if mode in ("host", "none") or mode.startswith("container:"):
        if spec.aliases or spec.ip:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks"
                                  if spec.aliases else
                                  "user specified IP address is supported on user defined networks only")
        if mode.startswith("container:") and spec.ports:
            raise Conflict("conflicting options: port publishing and the container type network mode")
        return
    from dockyard.network.store import NetworkStore

    net = NetworkStore(store).get(mode)
    if net.is_default and (spec.aliases or spec.ip):
        raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks"
                              if spec.aliases else
                              "user specified IP address is supported on user defined networks only")
    taken = {(r["host_port"], r["proto"]) for r in NetworkStore(store).ports()}
    for p in spec.ports:
        if not p["host_port"]:
            continue
        if (p["host_port"], p["proto"]) in taken:
            raise Conflict(f"Bind for {p['host_ip'] or '0.0.0.0'}:{p['host_port']} failed: port is already "
                           "allocated")
        from dockyard.network.attach import reserve

        reserve(p["host_ip"], p["host_port"], p["proto"]).close()
