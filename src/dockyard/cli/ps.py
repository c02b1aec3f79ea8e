"""``ps``: list containers (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES)."""

from __future__ import annotations

import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.cli.main import ArgumentCountError, Context

DEFAULT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
           "CreatedAt": "CREATED AT", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "Size": "SIZE",
           "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "State": "STATE", "Label": "LABEL",
           "LocalVolumes": "LOCAL VOLUMES"}


def status_text(c: Any, now: float) -> str:
    from dockyard.timeparse import status_text as text

    from dockyard.engine.filters import health_suffix

    return text(c.state, c.exit_code, c.started, c.finished, now) + health_suffix(getattr(c, "health", "") or "")


def _quote_cmd(args: list[str], trunc: bool) -> str:
    from dockyard import jsonc as json

    cmd = " ".join(args)
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return json.dumps(cmd, ensure_ascii=False)


class Row(dict):  # type: ignore[type-arg]
    """A template row: fields are keys; ``.Label "k"`` is a method in Docker, a dict lookup here."""


def main(ctx: Context, argv: list[str]) -> int:
    from types import SimpleNamespace

    from dockyard.cli.flags import BOOL, INT, LIST, STR, Flags  # not argparse: ps is called often (~5 ms)

    vals, pos = Flags("ps", "[OPTIONS]", [
        ("-a, --all", BOOL, False), ("-q, --quiet", BOOL, False), ("-l, --latest", BOOL, False),
        ("-n, --last", INT, -1), ("-s, --size", BOOL, False), ("-f, --filter", LIST, []), ("--format", STR, ""),
        ("--no-trunc", BOOL, False)]).parse(argv)
    if pos:
        raise ArgumentCountError(f'"dockyard ps" accepts no argument {pos[0]!r} here')
    o = SimpleNamespace(**vals)
    from dockyard.engine import filters

    want_size = o.size or "Size" in (o.format or "")
    cs = filters.list_containers(ctx.store, all=o.all, filters=filters.parse(o.filter), latest=o.latest,
                                 last=o.last, size=want_size and not o.quiet)
    trunc = not o.no_trunc
    if o.quiet:
        print("".join((c.id[:12] if trunc else c.id) + "\n" for c in cs), end="")
        return 0
    from dockyard.cli.humanize import go_time_string, human_duration, human_size
    from dockyard.cli.table import format_rows

    now = time.time()
    rows = []
    for c in cs:
        rows.append(Row(
            ID=c.id[:12] if trunc else c.id, Image=c.image, Command=_quote_cmd(c.command, trunc),
            RunningFor=human_duration(now - c.created) + " ago", CreatedAt=go_time_string(c.created),
            Status=status_text(c, now), State=c.state, Ports=c.ports_text, Names=c.name,
            Size=f"{human_size(c.size_rw or 0)} (virtual {human_size(c.size_root_fs or 0)})" if want_size else "",
            Labels=",".join(f"{k}={v}" for k, v in c.labels.items()), Mounts="",
            Networks=c.network_mode,
            LocalVolumes="0"))
    fmt = o.format or (DEFAULT + ("\t{{.Size}}" if o.size else ""))
    if fmt == "table":
        fmt = DEFAULT
    print(format_rows(fmt, rows, HEADERS), end="")
    return 0
