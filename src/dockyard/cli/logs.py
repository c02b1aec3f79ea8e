"""``logs``: the json-file log the container's monitor writes, as ``docker logs`` prints it."""

from __future__ import annotations

import json
import os
import sys
import time

from dockyard.cli.args import Parser
from dockyard.cli.main import Context


def _since(s: str) -> float:
    if not s:
        return 0.0
    from dockyard.cli.humanize import parse_time

    t = parse_time(s)
    if t is None:
        from dockyard.errors import InvalidArgument

        raise InvalidArgument(f'invalid value for "since": failed to parse value as time or duration: "{s}"')
    return t


def _emit(line: bytes, tty: bool, timestamps: bool, since: float, until: float) -> None:
    try:
        rec = json.loads(line)
    except ValueError:
        return
    if since or until:
        from dockyard.cli.humanize import parse_rfc3339

        t = parse_rfc3339(rec.get("time", ""))
        if (since and t < since) or (until and t > until):
            return
    text = rec.get("log", "")
    if timestamps:
        text = rec.get("time", "") + " " + text
    out = sys.stderr if rec.get("stream") == "stderr" and not tty else sys.stdout
    out.buffer.write(text.encode("utf-8", "surrogateescape"))


def main(ctx: Context, argv: list[str]) -> int:
    p = Parser("logs", "[OPTIONS] CONTAINER")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("--since", default="")
    p.add_argument("--until", default="")
    p.add_argument("--details", action="store_true")
    p.add_argument("container")
    o = p.parse_args(argv)
    from dockyard.engine.containers import ContainerStore

    cs = ContainerStore(ctx.store)
    c = cs.get(o.container)
    path = os.path.join(c.dir(ctx.store), f"{c.id}-json.log")
    since, until = _since(o.since), _since(o.until)
    lines: list[bytes] = []
    for f in (path + ".1", path):
        try:
            with open(f, "rb") as fh:
                lines += fh.read().splitlines()
        except FileNotFoundError:
            pass
    pos = os.path.getsize(path) if os.path.exists(path) else 0
    if o.tail != "all":
        n = int(o.tail)
        lines = lines[-n:] if n > 0 else []
    for ln in lines:
        _emit(ln, c.spec.tty, o.timestamps, since, until)
    sys.stdout.flush()
    sys.stderr.flush()
    if not o.follow:
        return 0
    buf = b""
    while True:
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            return 0
        if size < pos:  # rotated
            pos = 0
        if size > pos:
            with open(path, "rb") as fh:
                fh.seek(pos)
                buf += fh.read(size - pos)
            pos = size
            *done, buf = buf.split(b"\n")
            for ln in done:
                _emit(ln, c.spec.tty, o.timestamps, since, until)
            sys.stdout.flush()
            sys.stderr.flush()
            continue
        try:
            running = cs.get(c.id).running
        except Exception:  # noqa: BLE001 - removed meanwhile
            return 0
        if not running and os.path.getsize(path) == pos:
            return 0
        time.sleep(0.05)  # following a file: poll for growth
