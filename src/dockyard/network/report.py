"""What ``inspect`` and ``ps`` show about a container's network: Docker's NetworkSettings, PortBindings, PORTS."""

from __future__ import annotations

from dockyard import jsonc as json
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine.containers import Container
    from dockyard.state.db import Store


def port_bindings(c: Container) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings: what ``-p`` asked for."""
    out: dict[str, list[dict[str, str]]] = {}
    for p in c.spec.ports:
        out.setdefault(f"{p['container_port']}/{p['proto']}", []).append(
            {"HostIp": p.get("host_ip", ""), "HostPort": str(p["host_port"]) if p["host_port"] else ""})
    return out


def settings(store: Store, c: Container, image_config: dict[str, Any]) -> dict[str, Any]:
    """NetworkSettings of a container, from the store (addresses exist while it runs)."""
    mode = c.spec.network_mode
    ports: dict[str, Any] = {}
    for key in (image_config.get("ExposedPorts") or {}):
        ports[key if "/" in key else key + "/tcp"] = None
    for p in c.spec.ports:
        ports.setdefault(f"{p['container_port']}/{p['proto']}", None)
    nets: dict[str, Any] = {}
    top = {"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "EndpointID": ""}
    if mode in ("host", "none") or mode.startswith("container:"):
        if not mode.startswith("container:"):
            nets[mode] = _endpoint(None, None, [])
    else:
        if c.running:
            for r in store.query("SELECT * FROM ports WHERE container_id=? ORDER BY container_port", (c.id,)):
                key = f"{r['container_port']}/{r['proto']}"
                ports[key] = (ports.get(key) or []) + [{"HostIp": r["host_ip"] or "0.0.0.0",
                                                        "HostPort": str(r["host_port"])}]
        rows = {r["network_id"]: r for r in store.query("SELECT * FROM endpoints WHERE container_id=?", (c.id,))}
        names = [mode] + [r["network_id"] for r in rows.values() if r["connected"]]
        from dockyard.errors import DockyardError
        from dockyard.network.store import NetworkStore

        ns = NetworkStore(store)
        for name in names:
            try:
                net = ns.get(name)
            except DockyardError:
                continue
            r = rows.get(net.id)
            aliases = json.loads(r["aliases"]) if r is not None else list(c.spec.aliases)
            ep = _endpoint(net, r, aliases, c)
            nets[net.name] = ep
            if net.is_default and ep["IPAddress"]:
                top = {k: ep[k] for k in top}
    return {"Bridge": "", "SandboxID": "", "SandboxKey": f"/proc/{c.pid}/ns/net" if c.running and c.pid else "",
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": ports,
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPv6Gateway": "", **top, "Networks": nets}


def _endpoint(net: Any, r: Any, aliases: list[str], c: Any = None) -> dict[str, Any]:
    active = r is not None and r["ip"] is not None
    import hashlib

    dns = []
    if net is not None and not net.is_default and c is not None:
        dns = [c.name, *aliases, c.id[:12]]
    return {"IPAMConfig": {"IPv4Address": r["ip_request"]} if r is not None and r["ip_request"] else None,
            "Links": None, "Aliases": aliases or None, "MacAddress": r["mac"] if active else "",
            "DriverOpts": None,
            "NetworkID": net.id if net is not None else "",
            "EndpointID": hashlib.sha256(f"{net.id}{c.id}".encode()).hexdigest() if active else "",
            "Gateway": net.gateway if active else "", "IPAddress": r["ip"] if active else "",
            "IPPrefixLen": net.prefixlen if active else 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": dns or None}


def ps_ports(store: Store, c: Container) -> str:
    """``ps``'s PORTS column: ``0.0.0.0:8000->80/tcp``, exposed-only ports as ``80/tcp``."""
    if not c.running:
        return ""
    rows = store.query("SELECT * FROM ports WHERE container_id=? ORDER BY container_port", (c.id,))
    return ", ".join(f"{r['host_ip'] or '0.0.0.0'}:{r['host_port']}->{r['container_port']}/{r['proto']}"
                     for r in rows)
