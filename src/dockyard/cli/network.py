"""``network create|ls|inspect|rm|connect|disconnect|prune`` and ``port``: networks (``network.store``)."""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.cli.main import Context, UsageError
from dockyard.errors import DockyardError, InvalidArgument

HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
           "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
PSEUDO_DRIVERS = {"host": "host", "none": "null"}


def main(ctx: Context, argv: list[str]) -> int:
    if ctx.verb == "port":
        return _port(ctx, argv)
    verb = ctx.verb.split("-", 1)[1]
    return {"create": _create, "ls": _ls, "inspect": _inspect, "rm": _rm, "connect": _connect,
            "disconnect": _disconnect, "prune": _prune}[verb](ctx, argv)


def _parser(verb: str, usage: str, desc: str) -> Any:
    from dockyard.cli.args import Parser

    return Parser(f"network {verb}", usage, desc)


def _store(ctx: Context) -> Any:
    from dockyard.network.store import NetworkStore

    return NetworkStore(ctx.store)


def _kv(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        k, _, val = v.partition("=")
        out[k] = val
    return out


def _create(ctx: Context, argv: list[str]) -> int:
    p = _parser("create", "[OPTIONS] NETWORK", "Create a network")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--ip-range", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("--attachable", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("--ipv6", action="store_true")
    p.add_argument("name", nargs="?")
    a = p.parse_args(argv)
    if not a.name:
        raise UsageError('"dockyard network create" requires exactly 1 argument.')
    if a.driver != "bridge":
        raise InvalidArgument(f"plugin \"{a.driver}\" not found" if a.driver not in ("host", "null", "overlay",
                                                                                 "macvlan", "ipvlan") else
                              f"network driver {a.driver} is not supported by dockyard")
    if a.ipv6:
        raise InvalidArgument("IPv6 networks are not supported by dockyard")
    if len(a.subnet) > 1 or len(a.gateway) > 1 or len(a.ip_range) > 1:
        raise InvalidArgument("dockyard networks have one IPv4 subnet")
    if a.gateway and not a.subnet:
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    if a.ip_range and not a.subnet:
        raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
    from dockyard.ids import validate_name

    validate_name(a.name)
    net = _store(ctx).create(a.name, subnet=(a.subnet or [""])[0], gateway=(a.gateway or [""])[0],
                             ip_range=(a.ip_range or [""])[0], internal=a.internal, labels=_kv(a.label),
                             options=_kv(a.opt))
    print(net.id)
    return 0


def _pseudo_id(ctx: Context, name: str) -> str:
    import hashlib

    return hashlib.sha256(f"{ctx.root}\0{name}".encode()).hexdigest()


def _all(ctx: Context) -> list[dict[str, Any]]:
    """Every network as a plain dict (stored ones and the host/none modes)."""
    out = []
    for n in _store(ctx).list():
        out.append({"ID": n.id, "Name": n.name, "Driver": n.driver, "Labels": n.labels, "Internal": n.internal,
                    "Created": n.created, "net": n, "builtin": n.is_default})
    for name, drv in PSEUDO_DRIVERS.items():
        out.append({"ID": _pseudo_id(ctx, name), "Name": name, "Driver": drv, "Labels": {}, "Internal": False,
                    "Created": 0.0, "net": None, "builtin": True})
    return out


def _match(n: dict[str, Any], filters: list[str], used: set[str] | None = None) -> bool:
    by: dict[str, list[str]] = {}
    for f in filters:
        k, eq, v = f.partition("=")
        if not eq:
            raise InvalidArgument("bad format of filter (expected name=value)")
        if k not in ("name", "id", "driver", "label", "type", "scope", "dangling", "until"):
            raise InvalidArgument(f"invalid filter '{k}'")
        by.setdefault(k, []).append(v)
    for k, vals in by.items():
        if k == "name" and not any(v in n["Name"] for v in vals):
            return False
        if k == "id" and not any(n["ID"].startswith(v) for v in vals):
            return False
        if k == "driver" and n["Driver"] not in vals:
            return False
        if k == "scope" and "local" not in vals:
            return False
        if k == "type":
            for v in vals:
                if v not in ("custom", "builtin"):
                    raise InvalidArgument(f"invalid filter: 'type'='{v}'")
            if ("builtin" if n["builtin"] else "custom") not in vals:
                return False
        if k == "label":
            for v in vals:
                lk, sep, lv = v.partition("=")
                if lk not in n["Labels"] or (sep and n["Labels"][lk] != lv):
                    return False
        if k == "dangling" and used is not None:
            want = {v.lower() in ("true", "1") for v in vals}
            if len(want) == 1 and (n["Name"] not in used and not n["builtin"]) not in want:
                return False
    return True


def _ls(ctx: Context, argv: list[str]) -> int:
    p = _parser("ls", "[OPTIONS]", "List networks")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    a = p.parse_args(argv)
    used = _used(ctx) if any(f.startswith("dangling=") for f in a.filter) else None
    nets = sorted((n for n in _all(ctx) if _match(n, a.filter, used)), key=lambda n: n["Name"])
    ids = [n["ID"] if a.no_trunc else n["ID"][:12] for n in nets]
    if a.quiet:
        sys.stdout.write("".join(i + "\n" for i in ids))
        return 0
    from dockyard.cli.humanize import go_time_string
    from dockyard.cli.template import format_rows

    rows = [{"ID": i, "Name": n["Name"], "Driver": n["Driver"], "Scope": "local", "IPv6": "false",
             "Internal": str(n["Internal"]).lower(), "CreatedAt": go_time_string(n["Created"]),
             "Labels": ",".join(f"{k}={v}" for k, v in n["Labels"].items())} for i, n in zip(ids, nets)]
    fmt = a.format or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    sys.stdout.write(format_rows(fmt, rows, HEADERS))
    return 0


def _used(ctx: Context) -> set[str]:
    """Names of networks some container (in any state) is attached to."""
    from dockyard.engine.containers import ContainerStore

    out = {c.spec.network_mode for c in ContainerStore(ctx.store).list()}
    for r in ctx.store.query("SELECT DISTINCT n.name FROM endpoints e JOIN networks n ON n.id=e.network_id"):
        out.add(r[0])
    return out


def inspect_dict(ctx: Context, n: dict[str, Any]) -> dict[str, Any]:
    from dockyard.cli.humanize import rfc3339_nano

    net = n["net"]
    containers: dict[str, Any] = {}
    cfg: list[dict[str, str]] = []
    options: dict[str, str] = {}
    if net is not None:
        c = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            c["IPRange"] = net.ip_range
        cfg.append(c)
        options = net.options
        rows = ctx.store.query("SELECT e.*, c.name FROM endpoints e JOIN containers c ON c.id=e.container_id"
                               " WHERE e.network_id=? AND e.ip IS NOT NULL", (net.id,))
        for r in rows:
            import hashlib

            containers[r["container_id"]] = {
                "Name": r["name"],
                "EndpointID": hashlib.sha256(f"{net.id}{r['container_id']}".encode()).hexdigest(),
                "MacAddress": r["mac"] or "", "IPv4Address": f"{r['ip']}/{net.prefixlen}", "IPv6Address": ""}
    return {
        "Name": n["Name"], "Id": n["ID"], "Created": rfc3339_nano(n["Created"]) if n["Created"] else
        "0001-01-01T00:00:00Z", "Scope": "local", "Driver": n["Driver"], "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {} if net is not None and not net.is_default else None,
                 "Config": cfg},
        "Internal": n["Internal"], "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Containers": containers, "Options": options, "Labels": n["Labels"],
    }


def _find(ctx: Context, ref: str) -> dict[str, Any]:
    from dockyard.errors import NotFound

    for n in _all(ctx):
        if ref in (n["Name"], n["ID"]):
            return n
    matches = [n for n in _all(ctx) if n["ID"].startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    raise NotFound(f"network {ref} not found")


def _inspect(ctx: Context, argv: list[str]) -> int:
    p = _parser("inspect", "[OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks")
    p.add_argument("-f", "--format", default="")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    out = []
    rc = 0
    for name in a.names:
        try:
            out.append(inspect_dict(ctx, _find(ctx, name)))
        except DockyardError as e:
            sys.stderr.write(f"Error: {e}\n")
            rc = 1
    from dockyard.cli.template import print_inspect

    print_inspect(out, a.format)
    return rc


def _rm(ctx: Context, argv: list[str]) -> int:
    p = _parser("rm", "NETWORK [NETWORK...]", "Remove one or more networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    rc = 0
    for name in a.names:
        try:
            if name in PSEUDO_DRIVERS:
                from dockyard.errors import Conflict

                raise Conflict(f"{name} is a pre-defined network and cannot be removed")
            ns = _store(ctx)
            ns.remove(ns.get(name))
            print(name)
        except DockyardError as e:
            if a.force and type(e).__name__ == "NotFound":
                continue
            sys.stderr.write(f"Error: {e}\n")
            rc = 1
    return rc


def _connect(ctx: Context, argv: list[str]) -> int:
    p = _parser("connect", "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--ip6", default="")
    p.add_argument("--link", action="append", default=[])
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    if len(a.args) != 2:
        raise UsageError('"dockyard network connect" requires exactly 2 arguments.')
    from dockyard.engine.containers import ContainerStore
    from dockyard.network.attach import connect

    net = _store(ctx).get(a.args[0])
    c = ContainerStore(ctx.store).get(a.args[1])
    connect(ctx.store, c, net, a.alias, a.ip)
    return 0


def _disconnect(ctx: Context, argv: list[str]) -> int:
    p = _parser("disconnect", "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    if len(a.args) != 2:
        raise UsageError('"dockyard network disconnect" requires exactly 2 arguments.')
    from dockyard.engine.containers import ContainerStore
    from dockyard.network.attach import disconnect

    net = _store(ctx).get(a.args[0])
    c = ContainerStore(ctx.store).get(a.args[1])
    disconnect(ctx.store, c, net, a.force)
    return 0


def _prune(ctx: Context, argv: list[str]) -> int:
    p = _parser("prune", "[OPTIONS]", "Remove all unused networks")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("-f", "--force", action="store_true")
    a = p.parse_args(argv)
    for f in a.filter:
        if f.partition("=")[0] not in ("label", "label!", "until"):
            raise InvalidArgument(f"invalid filter '{f.partition('=')[0]}'")
    if not a.force:
        sys.stdout.write("WARNING! This will remove all custom networks not used by at least one container.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    used = _used(ctx)
    ns = _store(ctx)
    deleted = []
    for n in sorted(_all(ctx), key=lambda n: n["Name"]):
        if n["builtin"] or n["Name"] in used:
            continue
        if not _match(n, [f for f in a.filter if f.startswith("label=")]):
            continue
        if any(f.startswith("label!=") and f[7:].partition("=")[0] in n["Labels"] for f in a.filter):
            continue
        try:
            ns.remove(n["net"])
            deleted.append(n["Name"])
        except DockyardError as e:
            sys.stderr.write(f"Error: {e}\n")
    if deleted:
        sys.stdout.write("Deleted Networks:\n" + "".join(d + "\n" for d in deleted))
    return 0


def port_lines(store: Any, cid: str) -> list[tuple[str, str]]:
    """(``80/tcp``, ``0.0.0.0:8000``) for each published port of a running container."""
    from dockyard.network.store import NetworkStore

    return [(f"{r['container_port']}/{r['proto']}", f"{r['host_ip'] or '0.0.0.0'}:{r['host_port']}")
            for r in NetworkStore(store).ports(cid)]


def _port(ctx: Context, argv: list[str]) -> int:
    p = _parser("port", "CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping")
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    if not 1 <= len(a.args) <= 2:
        raise UsageError('"dockyard port" requires at least 1 and at most 2 arguments.')
    from dockyard.engine.containers import ContainerStore

    c = ContainerStore(ctx.store).get(a.args[0])
    lines = port_lines(ctx.store, c.id)
    if len(a.args) == 2:
        want = a.args[1] if "/" in a.args[1] else a.args[1] + "/tcp"
        hits = [h for k, h in lines if k == want]
        if not hits:
            raise DockyardError(f"No public port '{want}' published for {a.args[0]}")
        sys.stdout.write("".join(h + "\n" for h in hits))
        return 0
    sys.stdout.write("".join(f"{k} -> {h}\n" for k, h in lines))
    return 0
