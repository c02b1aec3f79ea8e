"""``volume create|ls|inspect|rm|prune|export|import``: named volumes (``volumes.store``).

``export``/``import`` go beyond Docker (moby#32263): a tar of the volume's data, and back into a new or empty
volume with the same safe extractor as ``cp`` (no escapes, no device nodes).
"""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.cli.main import ArgumentCountError, Context, UsageError
from dockyard.errors import InvalidArgument, NotFound

HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE",
           "Labels": "LABELS", "CreatedAt": "CREATED", "Links": "LINKS", "Size": "SIZE"}


def main(ctx: Context, argv: list[str]) -> int:
    verb = ctx.verb.split("-", 1)[1]
    return {"create": _create, "ls": _ls, "inspect": _inspect, "rm": _rm, "prune": _prune, "export": _export,
            "import": _import}[verb](ctx, argv)


def _parser(verb: str, usage: str, desc: str) -> Any:
    from dockyard.cli.args import Parser

    return Parser(f"volume {verb}", usage, desc)


def _kv(values: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        k, eq, val = v.partition("=")
        if not eq and flag == "opt":
            raise InvalidArgument(f'invalid argument "{v}" for "-o, --opt" flag: invalid key/value pair format '
                                  "in driver options")
        out[k] = val
    return out


def _create(ctx: Context, argv: list[str]) -> int:
    p = _parser("create", "[OPTIONS] [VOLUME]", "Create a volume")
    p.add_argument("-d", "--driver", default="local", help='Specify volume driver name (default "local")')
    p.add_argument("--label", action="append", default=[], help="Set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", default=[], help="Set driver specific options")
    p.add_argument("--name", default="", help="Specify volume name")
    p.add_argument("name_arg", nargs="?", metavar="VOLUME")
    a = p.parse_args(argv)
    if a.name and a.name_arg and a.name != a.name_arg:
        raise UsageError("conflicting options: either specify --name or provide positional arg, not both")
    from dockyard.engine.volumes import create_volume

    v = create_volume(ctx.store, a.name_arg or a.name or None, a.driver, _kv(a.opt, "opt"), _kv(a.label, "label"))
    print(v.name)
    return 0


def _filters(values: list[str]) -> dict[str, list[str]]:
    from dockyard.engine.volumes import normalize_filters

    out: dict[str, list[str]] = {}
    for f in values:
        k, eq, v = f.partition("=")
        if not eq:
            raise InvalidArgument("bad format of filter (expected name=value)")
        out.setdefault(k, []).append(v)
    return normalize_filters(out)


def _ls(ctx: Context, argv: list[str]) -> int:
    p = _parser("ls", "[OPTIONS]", "List volumes")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Provide filter values (e.g. \"dangling=true\")")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    a = p.parse_args(argv)
    from dockyard.engine.volumes import list_volumes

    rows = list_volumes(ctx.store, _filters(a.filter))
    if a.quiet:
        sys.stdout.write("".join(v.name + "\n" for v in rows))
        return 0
    from dockyard.cli.template import format_rows

    data = [{"Driver": v.driver, "Name": v.name, "Mountpoint": v.mountpoint, "Scope": v.scope,
             "Labels": ",".join(f"{k}={val}" for k, val in v.labels.items()),
             "CreatedAt": _created(v.created), "Links": "N/A", "Size": "N/A"} for v in rows]
    sys.stdout.write(format_rows(a.format or "table {{.Driver}}\t{{.Name}}", data, HEADERS))
    return 0


def _created(ts: float) -> str:
    from dockyard.cli.humanize import go_time_string

    return go_time_string(ts)


def _inspect(ctx: Context, argv: list[str]) -> int:
    p = _parser("inspect", "[OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes")
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")
    p.add_argument("volumes", nargs="*")
    a = p.parse_args(argv)
    if not a.volumes:
        raise ArgumentCountError('"dockyard volume inspect" requires at least 1 argument.')

    from dockyard.engine.volumes import inspect_volume

    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in a.volumes:
        try:
            found.append(inspect_volume(ctx.store, name))
        except NotFound:
            missing.append(name)
    from dockyard.cli.template import print_inspect

    print_inspect(found, a.format)
    for m in missing:
        sys.stderr.write(f"Error: No such volume: {m}\n")
    return 1 if missing else 0


def _rm(ctx: Context, argv: list[str]) -> int:
    p = _parser("rm", "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes")
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of one or more volumes")
    p.add_argument("volumes", nargs="*")
    a = p.parse_args(argv)
    if not a.volumes:
        raise ArgumentCountError('"dockyard volume rm" requires at least 1 argument.')
    from dockyard.engine.volumes import remove_volume
    from dockyard.errors import DockyardError

    rc = 0
    for name in a.volumes:
        try:
            remove_volume(ctx.store, name, force=a.force)
            print(name, flush=True)
        except DockyardError as e:
            sys.stderr.write(f"Error: {e}\n")
            rc = 1
    return rc


def _prune(ctx: Context, argv: list[str]) -> int:
    p = _parser("prune", "[OPTIONS]", "Remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused volumes, not just anonymous ones")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. \"label=<label>\")")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    a = p.parse_args(argv)
    filters: dict[str, list[str]] = {}
    for f in a.filter:
        k, eq, v = f.partition("=")
        if k.rstrip("!") != "label" and k != "all":
            raise InvalidArgument(f"invalid filter '{k}'")
        if k == "all":
            a.all = a.all or v.lower() in ("true", "1")
        filters.setdefault(k, []).append(v)
    if not a.force:
        warn = ("WARNING! This will remove all local volumes not used by at least one container." if a.all else
                "WARNING! This will remove anonymous local volumes not used by at least one container.")
        sys.stdout.write(warn + "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from dockyard.cli.humanize import human_size
    from dockyard.engine.volumes import prune_volumes

    report = prune_volumes(ctx.store, all=a.all, filters=filters)
    out = ""
    if report.deleted:
        out += "Deleted Volumes:\n" + "".join(n + "\n" for n in report.deleted) + "\n"
    out += f"Total reclaimed space: {human_size(report.reclaimed)}\n"
    sys.stdout.write(out)
    return 0


def _export(ctx: Context, argv: list[str]) -> int:
    p = _parser("export", "[OPTIONS] VOLUME", "Write a volume's data to a tar archive (to STDOUT by default)")
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("volume")
    a = p.parse_args(argv)
    from dockyard.engine.volumes import check_volume, export_volume

    check_volume(ctx.store, a.volume)
    if not a.output and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    export_volume(ctx.store, a.volume, a.output or sys.stdout.buffer)
    return 0


def _import(ctx: Context, argv: list[str]) -> int:
    p = _parser("import", "VOLUME [FILE|-]", "Fill a new or empty volume from a tar archive (STDIN by default)")
    p.add_argument("volume")
    p.add_argument("file", nargs="?", default="-")
    a = p.parse_args(argv)
    from dockyard.engine.volumes import import_volume

    import_volume(ctx.store, a.volume, sys.stdin.buffer if a.file == "-" else a.file)
    return 0
