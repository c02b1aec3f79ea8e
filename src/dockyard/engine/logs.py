"""A container's log as an iterator of typed entries: Docker's json-file log that its monitor writes.

The monitor writes ``containers/<id>/<id>-json.log`` (one JSON object a line: ``log``, ``stream``, ``time``) and
rotates it once to ``<id>-json.log.1`` at 20 MB. ``logs`` reads both, oldest first, and with ``follow`` goes on
reading what is appended (starting over when the file is rotated under it) until the container has stopped and
everything written is read:

    for e in logs(store, "web", follow=True, tail=10):
        out = sys.stderr if e.stream == "stderr" else sys.stdout
"""

from __future__ import annotations

import json
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from dockyard.engine.records import LogEntry
    from dockyard.state.db import Store

FOLLOW_POLL = 0.05  # seconds between looks at a followed log that has not grown


def _entry(line: bytes, since: float, until: float) -> LogEntry | None:
    from dockyard.engine.records import LogEntry
    from dockyard.timeparse import parse_rfc3339

    try:
        rec = json.loads(line)
    except ValueError:
        return None
    t = rec.get("time", "")
    ts = parse_rfc3339(t) if (since or until) else 0.0
    if (since and ts < since) or (until and ts > until):
        return None
    return LogEntry(stream="stderr" if rec.get("stream") == "stderr" else "stdout", time=t, ts=ts,
                    data=rec.get("log", "").encode("utf-8", "surrogateescape"))


def logs(store: Store, ref: str, follow: bool = False, since: float = 0.0, until: float = 0.0,
         tail: int = -1, heartbeat: bool = False) -> Iterator[LogEntry]:
    """Entries of container ``ref``'s log: ``since``/``until`` (unix times, 0 = unbounded) keep the entries
    logged in that window, ``tail`` >= 0 only the last ``tail`` lines of what is there now; ``follow`` then
    yields new entries as they are written, until the container is not running and the log is read to its end
    (or the container is removed). ``heartbeat`` (a long-running caller such as the API service) also yields
    None on each idle look at a followed log, so that a caller whose client went away can stop the iterator."""
    from dockyard.engine.containers import ContainerStore

    cs = ContainerStore(store)
    c = cs.get(ref)
    path = os.path.join(c.dir(store), f"{c.id}-json.log")
    lines: list[bytes] = []
    for f in (path + ".1", path):
        try:
            with open(f, "rb") as fh:
                lines += fh.read().splitlines()
        except FileNotFoundError:
            pass
    try:
        pos = os.path.getsize(path)
    except FileNotFoundError:
        pos = 0
    if tail >= 0:
        lines = lines[-tail:] if tail > 0 else []
    for ln in lines:
        e = _entry(ln, since, until)
        if e is not None:
            yield e
    if not follow:
        return
    buf = b""
    while True:
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            return
        if size < pos:  # rotated: the new file is read from its start
            pos = 0
        if size > pos:
            with open(path, "rb") as fh:
                fh.seek(pos)
                buf += fh.read(size - pos)
            pos = size
            *done, buf = buf.split(b"\n")
            for ln in done:
                e = _entry(ln, since, until)
                if e is not None:
                    yield e
            continue
        try:
            running = cs.get(c.id).running
        except Exception:  # noqa: BLE001 - removed meanwhile
            return
        if not running and os.path.getsize(path) == pos:
            return
        if until and time.time() > until:
            return
        if heartbeat:
            yield None  # type: ignore[misc]
        time.sleep(FOLLOW_POLL)  # following a file: poll for growth
