"""The events log: every state change (container create/start/die/kill/stop/destroy..., exec, image, volume and
network events) as a row of the store's ``events`` table, bounded to the last ``KEEP`` events and ``MAX_AGE``.

Written by the engine where the change is recorded (in the same write transaction when there is one: ``emit(...,
db=cursor)``, one INSERT), read by ``dockyard events`` and GET /events. Being in the store, events outlive the
service and are shared by the CLI and the service on one root. A follower polls the table's highest ``seq``
every ``POLL`` seconds (one indexed read on the WAL database; no writer is slowed and no process is woken
by the writers).

    emit(store, "container", "die", c.id, {"name": c.name, "exitCode": "0"})
    for ev in follow(store, since=time.time()): ...
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from dockyard.state.db import Store

from dockyard import jsonc as json
from dockyard.engine.records import _Slots

KEEP = 10_000
MAX_AGE = 7 * 24 * 3600
POLL = 0.2
TYPES = ("container", "image", "volume", "network")
FILTERS = ("container", "event", "image", "label", "network", "type", "volume")


class Event(_Slots):
    """One event: ``seq`` (order), ``time_nano``, ``type``, ``action``, ``actor`` (ID), ``attributes``."""

    __slots__ = ("seq", "time_nano", "type", "action", "actor", "attributes")
    if TYPE_CHECKING:
        seq: int
        time_nano: int
        type: str
        action: str
        actor: str
        attributes: dict[str, str]

    def to_api(self) -> dict[str, Any]:
        """Docker's event message (with the old status/id/from fields the docker CLI still reads)."""
        d: dict[str, Any] = {"Type": self.type, "Action": self.action,
                             "Actor": {"ID": self.actor, "Attributes": self.attributes}, "scope": "local",
                             "time": self.time_nano // 1_000_000_000, "timeNano": self.time_nano}
        if self.type == "container":
            d.update(status=self.action, id=self.actor, **({"from": self.attributes["image"]}
                                                            if "image" in self.attributes else {}))
        return d


def emit(store: Store, type: str, action: str, actor_id: str, attributes: dict[str, Any] | None = None,
         db: Any = None) -> None:
    """Record an event; ``db``: the caller's open write transaction (the event commits with the change). Never
    raises: an event that cannot be written must not fail the change it reports."""
    attrs = {k: str(v) for k, v in (attributes or {}).items() if v is not None}
    row = (time.time_ns(), type, action, actor_id, json.dumps(attrs, sort_keys=True))
    sql = "INSERT INTO events(time_nano, type, action, actor, attributes) VALUES (?,?,?,?,?)"
    try:
        if db is not None:
            cur = db.execute(sql, row)
            _trim(db, cur.lastrowid)
        else:
            with store.write() as w:
                cur = w.execute(sql, row)
                _trim(w, cur.lastrowid)
    except Exception:  # noqa: BLE001 - see above
        pass


def _trim(db: Any, seq: int | None) -> None:
    if seq and seq % 100 == 0:  # every 100th event bounds the table (an indexed range delete)
        db.execute("DELETE FROM events WHERE seq <= ? OR time_nano < ?",
                   (seq - KEEP, time.time_ns() - MAX_AGE * 1_000_000_000))


def _event(r: Any) -> Event:
    return Event(seq=r["seq"], time_nano=r["time_nano"], type=r["type"], action=r["action"], actor=r["actor"],
                 attributes=json.loads(r["attributes"] or "{}"))


def check_filters(filters: dict[str, list[str]]) -> None:
    from dockyard.errors import InvalidArgument

    for k in filters:
        if k not in FILTERS:
            raise InvalidArgument(f"invalid filter '{k}'")


def check_window(since: float, until: float, since_text: str = "", until_text: str = "") -> None:
    """Refuse a window that ends before it starts, as dockerd (called by each edge before it streams)."""
    from dockyard.errors import InvalidArgument

    if until and since > until:
        raise InvalidArgument(f"`since` time ({since_text or since}) cannot be after `until` time "
                              f"({until_text or until})")


def _match(e: Event, f: dict[str, list[str]]) -> bool:
    a = e.attributes

    def ids(vals: list[str]) -> bool:
        return any(e.actor.startswith(v) or a.get("name") == v for v in vals)

    if "type" in f and e.type not in f["type"]:
        return False
    if "event" in f and e.action.split(":")[0] not in f["event"] and e.action not in f["event"]:
        return False
    for t in ("container", "image", "volume", "network"):
        if t in f and (e.type != t or not ids(f[t])) and not (t == "image" and a.get("image") in f[t]):
            return False
    if "label" in f:
        for want in f["label"]:
            k, eq, v = want.partition("=")
            if k not in a or (eq and a[k] != v):
                return False
    return True


def query(store: Store, since: float = 0.0, until: float = 0.0, filters: dict[str, list[str]] | None = None,
          after_seq: int = 0) -> list[Event]:
    """Events logged in [since, until] (unix times, 0 = unbounded) that match ``filters``, oldest first."""
    f = filters or {}
    check_filters(f)
    lo = int(since * 1e9) if since else 0
    hi = int(until * 1e9) if until else 1 << 62
    rows = store.query("SELECT * FROM events WHERE seq > ? AND time_nano >= ? AND time_nano <= ? ORDER BY seq",
                       (after_seq, lo, hi))
    return [e for e in map(_event, rows) if _match(e, f)]


def follow(store: Store, since: float = 0.0, until: float = 0.0, filters: dict[str, list[str]] | None = None,
           heartbeat: bool = False) -> Iterator[Event | None]:
    """The events of ``query``, then new ones as they are logged, until ``until`` (forever when 0). With
    ``heartbeat`` a None is yielded on each idle poll (a caller whose client went away can stop here)."""
    f = filters or {}
    check_filters(f)
    top = int(store.query("SELECT MAX(seq) AS m FROM events")[0]["m"] or 0)
    if since or until:
        for e in query(store, since, until, f):
            if e.seq <= top:
                yield e
    if until and until <= time.time():
        return
    last = top
    while True:
        for r in store.query("SELECT * FROM events WHERE seq > ? ORDER BY seq", (last,)):
            e = _event(r)
            last = e.seq
            if until and e.time_nano > until * 1e9:
                return
            if _match(e, f):
                yield e
        if until and time.time() > until:
            return
        if heartbeat:
            yield None
        time.sleep(POLL)


def container(store: Store, action: str, c: Any, extra: dict[str, Any] | None = None, db: Any = None) -> None:
    """A container event with Docker's attributes: name, image and the container's labels."""
    attrs: dict[str, Any] = {**(getattr(c, "labels", None) or {}), "name": c.name, "image": c.image_ref}
    emit(store, "container", action, c.id, {**attrs, **(extra or {})}, db=db)
