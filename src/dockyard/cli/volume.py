"""``volume create|ls|inspect|rm|prune|export|import``: named volumes (``volumes.store``).

``export``/``import`` go beyond Docker (moby#32263): a tar of the volume's data, and back into a new or empty
volume with the same safe extractor as ``cp`` (no escapes, no device nodes).
"""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.cli.main import Context, UsageError
from dockyard.errors import InvalidArgument, NotFound

HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE",
           "Labels": "LABELS", "CreatedAt": "CREATED", "Links": "LINKS", "Size": "SIZE"}
_LS_FILTERS = ("dangling", "name", "label", "driver")


def main(ctx: Context, argv: list[str]) -> int:
    verb = ctx.verb.split("-", 1)[1]
    return {"create": _create, "ls": _ls, "inspect": _inspect, "rm": _rm, "prune": _prune, "export": _export,
            "import": _import}[verb](ctx, argv)


def _parser(verb: str, usage: str, desc: str) -> Any:
    from dockyard.cli.args import Parser

    return Parser(f"volume {verb}", usage, desc)


def _store(ctx: Context) -> Any:
    from dockyard.volumes.store import VolumeStore

    return VolumeStore(ctx.store)


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
    name = a.name_arg or a.name or None
    v, _ = _store(ctx).create(name, a.driver, _kv(a.opt, "opt"), _kv(a.label, "label"),
                              anonymous=False)
    print(v.name)
    return 0


def _filters(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in values:
        k, eq, v = f.partition("=")
        neg = k.endswith("!")
        k = k.rstrip("!").strip().lower()
        if not eq:
            raise InvalidArgument("bad format of filter (expected name=value)")
        if k not in _LS_FILTERS:
            raise InvalidArgument(f"invalid filter '{k}'")
        out.setdefault(k, []).append(("!" if neg else "") + v)
    for v in out.get("dangling", []):
        if v.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={v}'")
    return out


def _ls(ctx: Context, argv: list[str]) -> int:
    p = _parser("ls", "[OPTIONS]", "List volumes")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Provide filter values (e.g. \"dangling=true\")")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    a = p.parse_args(argv)
    from dockyard.volumes.store import match_labels

    filters = _filters(a.filter)
    vs = _store(ctx)
    vols = vs.list()
    used = vs.users() if "dangling" in filters else {}
    rows = []
    for v in vols:
        if "dangling" in filters:
            want = {x.lower() in ("true", "1") for x in filters["dangling"]}
            if len(want) == 1 and (v.name not in used) not in want:
                continue
        if "name" in filters and not any(n in v.name for n in filters["name"]):
            continue
        if "driver" in filters and not any(d == v.driver for d in filters["driver"]):
            continue
        if "label" in filters and not match_labels(v, filters["label"]):
            continue
        rows.append(v)
    if a.quiet:
        sys.stdout.write("".join(v.name + "\n" for v in rows))
        return 0
    from dockyard.cli.template import format_rows

    data = [{"Driver": v.driver, "Name": v.name, "Mountpoint": vs.mountpoint(v.name), "Scope": "local",
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
        raise UsageError('"dockyard volume inspect" requires at least 1 argument.')

    from dockyard.volumes.store import inspect_dict

    vs = _store(ctx)
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in a.volumes:
        try:
            found.append(inspect_dict(vs, vs.get(name)))
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
        raise UsageError('"dockyard volume rm" requires at least 1 argument.')
    from dockyard.errors import DockyardError

    vs = _store(ctx)
    rc = 0
    for name in a.volumes:
        try:
            vs.remove(name, force=a.force)
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
    labels: list[str] = []
    for f in a.filter:
        k, eq, v = f.partition("=")
        if k.rstrip("!") != "label" and k != "all":
            raise InvalidArgument(f"invalid filter '{k}'")
        if k == "all":
            a.all = a.all or v.lower() in ("true", "1")
        else:
            labels.append(("!" if k.endswith("!") else "") + v)
    if not a.force:
        warn = ("WARNING! This will remove all local volumes not used by at least one container." if a.all else
                "WARNING! This will remove anonymous local volumes not used by at least one container.")
        sys.stdout.write(warn + "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    from dockyard.cli.humanize import human_size

    names, reclaimed = _store(ctx).prune(all=a.all, labels=labels)
    out = ""
    if names:
        out += "Deleted Volumes:\n" + "".join(n + "\n" for n in names) + "\n"
    out += f"Total reclaimed space: {human_size(reclaimed)}\n"
    sys.stdout.write(out)
    return 0


def _export(ctx: Context, argv: list[str]) -> int:
    p = _parser("export", "[OPTIONS] VOLUME", "Write a volume's data to a tar archive (to STDOUT by default)")
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("volume")
    a = p.parse_args(argv)
    from dockyard.volumes.archive import export

    vs = _store(ctx)
    v = vs.get(a.volume)
    if not a.output and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    export(vs, v, a.output or None)
    return 0


def _import(ctx: Context, argv: list[str]) -> int:
    p = _parser("import", "VOLUME [FILE|-]", "Fill a new or empty volume from a tar archive (STDIN by default)")
    p.add_argument("volume")
    p.add_argument("file", nargs="?", default="-")
    a = p.parse_args(argv)
    from dockyard.volumes.archive import import_

    import_(_store(ctx), a.volume, None if a.file == "-" else a.file)
    return 0
