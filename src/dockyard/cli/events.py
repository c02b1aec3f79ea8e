"""``events``: the engine's persisted events log (``engine.events``), printed as ``docker events`` prints it.

Without ``--since``/``--until`` only new events are shown, until interrupted; ``--since`` adds the logged ones
from then on; ``--until`` ends the output at that time (at once when it is past). ``--filter`` takes Docker's
keys (container, event, image, label, network, type, volume), ``--format`` a Go template over Docker's
``events.Message`` (``{{.Action}}``, ``{{.Actor.Attributes.name}}``, ``json``).
"""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.engine.events import Event

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import InvalidArgument


class Message:
    """Docker's ``events.Message`` as templates see it: its Go field names (``Status``, ``ID``, ``From``,
    ``Type``, ``Action``, ``Actor.ID``, ``Actor.Attributes``, ``Scope``, ``Time``, ``TimeNano``); ``{{json .}}``
    gives the daemon's JSON (its json tags)."""

    def __init__(self, e: Event) -> None:
        from dockyard.cli.template import GoMap

        self._api = e.to_api()
        self.Type, self.Action, self.Scope = e.type, e.action, "local"
        self.Actor = {"ID": e.actor, "Attributes": GoMap(e.attributes)}
        self.Time, self.TimeNano = e.time_nano // 1_000_000_000, e.time_nano
        c = e.type == "container"
        self.Status = e.action if c else ""
        self.ID = e.actor if c else ""
        self.From = e.attributes.get("image", "") if c else ""

    def to_json(self) -> dict[str, Any]:
        keys = ("status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano")
        return {k: self._api[k] for k in keys if k in self._api}


def _time(value: str, flag: str) -> float:
    if not value:
        return 0.0
    from dockyard.timeparse import parse_time

    t = parse_time(value)
    if t is None:
        raise InvalidArgument(f'invalid value "{value}" for flag --{flag}: failed to parse value as time or '
                              f'duration: "{value}"')
    return t


def _filters(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in values:
        k, eq, v = f.partition("=")
        if not eq:
            raise InvalidArgument("bad format of filter (expected name=value)")
        out.setdefault(k.strip().lower(), []).append(v.strip())
    return out


def pretty(e: Event) -> str:
    """The docker CLI's default line: local time with nanoseconds, type, action, actor ID, sorted attributes."""
    import datetime

    sec, ns = divmod(e.time_nano, 1_000_000_000)
    d = datetime.datetime.fromtimestamp(sec).astimezone()
    off = d.strftime("%z")
    tz = "Z" if off in ("+0000", "") else f"{off[:3]}:{off[3:]}"
    line = f"{d.strftime('%Y-%m-%dT%H:%M:%S')}.{ns:09d}{tz} {e.type} {e.action} {e.actor}"
    if e.attributes:
        line += " (" + ", ".join(f"{k}={e.attributes[k]}" for k in sorted(e.attributes)) + ")"
    return line


def main(ctx: Context, argv: list[str]) -> int:
    p = Parser("events", "[OPTIONS]")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions provided")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("--since", default="", help="Show all events created since timestamp")
    p.add_argument("--until", default="", help="Stream events until this timestamp")
    o = p.parse_args(argv)
    from dockyard.engine import events

    since, until = _time(o.since, "since"), _time(o.until, "until")
    events.check_window(since, until, o.since, o.until)
    filters = _filters(o.filter)
    events.check_filters(filters)
    render: Callable[[Event], str] = pretty
    if o.format:
        from dockyard.cli.template import Template, prepare

        _, text = prepare(o.format)
        tmpl = Template("{{json .}}" if text == "json" else text)
        render = lambda e: tmpl.render(Message(e))  # noqa: E731
    out = sys.stdout
    for e in events.follow(ctx.store, since, until, filters):
        if e is not None:
            out.write(render(e) + "\n")
            out.flush()
    return 0
