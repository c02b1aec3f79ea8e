"""``logs``: the json-file log the container's monitor writes, as ``docker logs`` prints it."""

from __future__ import annotations

import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context


def _since(s: str, name: str = "since") -> float:
    if not s:
        return 0.0
    from dockyard.timeparse import parse_time

    t = parse_time(s)
    if t is None:
        from dockyard.errors import InvalidArgument

        raise InvalidArgument(f'invalid value for "{name}": failed to parse value as time or duration: "{s}"')
    return t


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
    from dockyard.engine import local
    from dockyard.engine.logs import dropped, logs

    tty = local.resolve(ctx.store, o.container).spec.tty
    since, until = _since(o.since), _since(o.until, "until")
    tail = -1 if o.tail == "all" else int(o.tail)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if tail < 0 and not since and dropped(ctx.store, o.container):  # beyond Docker: say what is not there
        err.write(b"dockyard: the oldest output of this container was dropped (its log keeps the last 40 MB)\n")
        err.flush()
    for e in logs(ctx.store, o.container, follow=o.follow, since=since, until=until, tail=tail):
        f = err if e.stream == "stderr" and not tty else out
        if o.timestamps:
            f.write(e.time.encode() + b" ")
        f.write(e.data)
        if o.follow:
            f.flush()
    return 0
