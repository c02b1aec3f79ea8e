"""``network create|ls|inspect|rm|connect|disconnect|prune`` and ``port`` (``engine.networks``)."""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.cli.main import ArgumentCountError, Context
from dockyard.errors import DockyardError, InvalidArgument

HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
           "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


def main(ctx: Context, argv: list[str]) -> int:
    if ctx.verb == "port":
        return _port(ctx, argv)
    verb = ctx.verb.split("-", 1)[1]
    return {"create": _create, "ls": _ls, "inspect": _inspect, "rm": _rm, "connect": _connect,
            "disconnect": _disconnect, "prune": _prune}[verb](ctx, argv)


def _parser(verb: str, usage: str, desc: str) -> Any:
    from dockyard.cli.args import Parser

    return Parser(f"network {verb}", usage, desc)


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
        raise ArgumentCountError('"dockyard network create" requires exactly 1 argument.')
    from dockyard.engine.networks import create_network

    net = create_network(ctx.store, a.name, driver=a.driver, subnets=a.subnet, gateways=a.gateway,
                         ip_ranges=a.ip_range, internal=a.internal, ipv6=a.ipv6, labels=_kv(a.label),
                         options=_kv(a.opt), attachable=a.attachable)
    print(net.id)
    return 0


def _filters(values: list[str]) -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for f in values:
        k, eq, v = f.partition("=")
        if not eq:
            raise InvalidArgument("bad format of filter (expected name=value)")
        by.setdefault(k, []).append(v)
    return by


def _ls(ctx: Context, argv: list[str]) -> int:
    p = _parser("ls", "[OPTIONS]", "List networks")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    a = p.parse_args(argv)
    from dockyard.engine.networks import list_networks

    nets = list_networks(ctx.store, _filters(a.filter))
    ids = [n.id if a.no_trunc else n.id[:12] for n in nets]
    if a.quiet:
        sys.stdout.write("".join(i + "\n" for i in ids))
        return 0
    from dockyard.cli.humanize import go_time_string
    from dockyard.cli.template import format_rows

    rows = [{"ID": i, "Name": n.name, "Driver": n.driver, "Scope": n.scope, "IPv6": "false",
             "Internal": str(n.internal).lower(), "CreatedAt": go_time_string(n.created),
             "Labels": ",".join(f"{k}={v}" for k, v in n.labels.items())} for i, n in zip(ids, nets)]
    fmt = a.format or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    sys.stdout.write(format_rows(fmt, rows, HEADERS))
    return 0


def _inspect(ctx: Context, argv: list[str]) -> int:
    p = _parser("inspect", "[OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks")
    p.add_argument("-f", "--format", default="")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    from dockyard.engine.networks import inspect_network

    out = []
    rc = 0
    for name in a.names:
        try:
            out.append(inspect_network(ctx.store, name))
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
    from dockyard.engine.networks import remove_network
    from dockyard.errors import NotFound

    rc = 0
    for name in a.names:
        try:
            remove_network(ctx.store, name)
            print(name)
        except DockyardError as e:
            if a.force and isinstance(e, NotFound):
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
        raise ArgumentCountError('"dockyard network connect" requires exactly 2 arguments.')
    from dockyard.engine.networks import connect_network

    connect_network(ctx.store, a.args[0], a.args[1], a.alias, a.ip)
    return 0


def _disconnect(ctx: Context, argv: list[str]) -> int:
    p = _parser("disconnect", "[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    if len(a.args) != 2:
        raise ArgumentCountError('"dockyard network disconnect" requires exactly 2 arguments.')
    from dockyard.engine.networks import disconnect_network

    disconnect_network(ctx.store, a.args[0], a.args[1], a.force)
    return 0


def _prune(ctx: Context, argv: list[str]) -> int:
    p = _parser("prune", "[OPTIONS]", "Remove all unused networks")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("-f", "--force", action="store_true")
    a = p.parse_args(argv)
    from dockyard.engine.networks import PRUNE_FILTERS, prune_networks

    filters: dict[str, list[str]] = {}
    for f in a.filter:
        k, _, v = f.partition("=")
        if k not in PRUNE_FILTERS:
            raise InvalidArgument(f"invalid filter '{k}'")
        filters.setdefault(k, []).append(v)
    if not a.force:
        sys.stdout.write("WARNING! This will remove all custom networks not used by at least one container.\n"
                         "Are you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    report = prune_networks(ctx.store, filters)
    for err in report.errors:
        sys.stderr.write(f"Error: {err}\n")
    if report.deleted:
        sys.stdout.write("Deleted Networks:\n" + "".join(d + "\n" for d in report.deleted))
    return 0


def _port(ctx: Context, argv: list[str]) -> int:
    p = _parser("port", "CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping")
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    if not 1 <= len(a.args) <= 2:
        raise ArgumentCountError('"dockyard port" requires at least 1 and at most 2 arguments.')
    from dockyard.engine.networks import container_ports

    lines = container_ports(ctx.store, a.args[0])
    if len(a.args) == 2:
        want = a.args[1] if "/" in a.args[1] else a.args[1] + "/tcp"
        hits = [h for k, h in lines if k == want]
        if not hits:
            raise DockyardError(f"No public port '{want}' published for {a.args[0]}")
        sys.stdout.write("".join(h + "\n" for h in hits))
        return 0
    sys.stdout.write("".join(f"{k} -> {h}\n" for k, h in lines))
    return 0
