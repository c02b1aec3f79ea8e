"""``ps``: list containers (CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES)."""

from __future__ import annotations

import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.cli.args import Parser
from dockyard.cli.main import Context

DEFAULT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
           "CreatedAt": "CREATED AT", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "Size": "SIZE",
           "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "State": "STATE", "Label": "LABEL",
           "LocalVolumes": "LOCAL VOLUMES"}


def status_text(c: Any, now: float) -> str:
    from dockyard.cli.humanize import human_duration

    if c.state == "running":
        return "Up " + human_duration(now - (c.started or now))
    if c.state == "paused":
        return "Up " + human_duration(now - (c.started or now)) + " (Paused)"
    if c.state == "restarting":
        return f"Restarting ({c.exit_code or 0}) " + human_duration(now - (c.finished or now)) + " ago"
    if c.state == "exited":
        return f"Exited ({c.exit_code if c.exit_code is not None else 0}) " + \
            human_duration(now - (c.finished or now)) + " ago"
    if c.state == "removing":
        return "Removal In Progress"
    if c.state == "dead":
        return "Dead"
    return "Created"


def _quote_cmd(args: list[str], trunc: bool) -> str:
    import json

    cmd = " ".join(args)
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return json.dumps(cmd, ensure_ascii=False)


def dir_size(path: str) -> int:
    """Bytes of the regular files and symlinks under ``path`` (hard links counted once), as Docker's SizeRw."""
    import os

    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirnames, filenames in os.walk(path):
        for n in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _size(store: Any, c: Any) -> str:
    """Docker's SIZE column: the container's writable layer, and with the image's the virtual size."""
    from dockyard.cli.humanize import human_size

    rw, virtual = sizes(store, c)
    return f"{human_size(rw)} (virtual {human_size(virtual)})"


def sizes(store: Any, c: Any) -> tuple[int, int]:
    """(the container's writable layer, that plus its image): Docker's SizeRw and SizeRootFs."""
    import os

    rw = dir_size(os.path.join(c.dir(store), "diff"))
    rows = store.query("SELECT size FROM images WHERE id=?", (c.image_id,)) if c.image_id else []
    return rw, rw + (int(rows[0]["size"]) if rows else 0)


class Row(dict):  # type: ignore[type-arg]
    """A template row: fields are keys; ``.Label "k"`` is a method in Docker, a dict lookup here."""


def _matches(c: Any, filters: list[tuple[str, str]]) -> bool:
    by: dict[str, list[str]] = {}
    for k, v in filters:
        by.setdefault(k, []).append(v)
    for k, vals in by.items():
        if k == "status" and c.state not in vals:
            return False
        if k == "name" and not any(v in c.name for v in vals):
            return False
        if k == "id" and not any(c.id.startswith(v) for v in vals):
            return False
        if k == "exited" and not (c.state == "exited" and str(c.exit_code) in vals):
            return False
        if k == "ancestor" and not any(v in (c.image_ref, c.image_id) or (c.image_id or "").startswith(
                "sha256:" + v) for v in vals):
            return False
        if k == "label":
            for v in vals:
                lk, sep, lv = v.partition("=")
                if lk not in c.labels or (sep and c.labels[lk] != lv):
                    return False
    return True


def _ports(store: Any, c: Any) -> str:
    if not c.running or not c.config.get("ports") and not c.config.get("publish_all"):
        return ""  # nothing published: no query, no network import
    from dockyard.network.report import ps_ports

    return ps_ports(store, c)


def main(ctx: Context, argv: list[str]) -> int:
    p = Parser("ps", "[OPTIONS]")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("--no-trunc", action="store_true")
    o = p.parse_args(argv)
    from dockyard.engine.containers import ContainerStore

    filters = [tuple(f.split("=", 1)) if "=" in f else (f, "") for f in o.filter]
    cs = ContainerStore(ctx.store).list()
    show_all = o.all or o.latest or o.last >= 0 or any(k in ("status", "exited") for k, _ in filters)
    cs = [c for c in cs if (show_all or c.running) and _matches(c, filters)]  # type: ignore[arg-type]
    if o.latest:
        cs = cs[:1]
    elif o.last >= 0:
        cs = cs[:o.last]
    trunc = not o.no_trunc
    if o.quiet:
        print("".join((c.id[:12] if trunc else c.id) + "\n" for c in cs), end="")
        return 0
    from dockyard.cli.humanize import go_time_string, human_duration
    from dockyard.cli.template import format_rows

    now = time.time()
    rows = []
    for c in cs:
        args = list(c.config.get("entrypoint") or []) + list(c.config.get("cmd") or [])
        rows.append(Row(
            ID=c.id[:12] if trunc else c.id, Image=c.image_ref, Command=_quote_cmd(args, trunc),
            RunningFor=human_duration(now - c.created) + " ago", CreatedAt=go_time_string(c.created),
            Status=status_text(c, now), State=c.state, Ports=_ports(ctx.store, c), Names=c.name,
            Size=_size(ctx.store, c) if o.size or "Size" in (o.format or "") else "",
            Labels=",".join(f"{k}={v}" for k, v in c.labels.items()), Mounts="",
            Networks=c.config.get("network_mode", ""),
            LocalVolumes="0"))
    fmt = o.format or (DEFAULT + ("\t{{.Size}}" if o.size else ""))
    if fmt == "table":
        fmt = DEFAULT
    print(format_rows(fmt, rows, HEADERS), end="")
    return 0
