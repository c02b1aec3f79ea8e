"""The engine's volume verbs: ``volume create|ls|inspect|rm|prune|export|import`` and the API's ``/volumes``.

A *named* volume is made by ``create`` or on first use by ``run -v NAME:/path``; an *anonymous* one (``-v /path``,
an image's VOLUME) has a random 64-hex name and goes with its container on ``rm -v``. The data lives at the
``mountpoint`` (``volumes/<name>/_data``). Filters are Docker's: ``{"name": ["web"], "label!": ["tmp"]}``.

    v = create_volume(store, "data", labels={"team": "db"})
    [v] = list_volumes(store, {"label": ["team=db"]})
"""

from __future__ import annotations

from dockyard.engine.options import Record
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

    from dockyard.state.db import Store
    from dockyard.volumes.store import Volume, VolumeStore

LIST_FILTERS = ("dangling", "name", "label", "driver")


class VolumeSummary(Record):
    """One volume (``created``: unix time)."""

    FIELDS = {"name": "", "driver": "local", "mountpoint": "", "labels": {}, "options": {}, "created": 0.0,
              "anonymous": False, "scope": "local"}
    if TYPE_CHECKING:
        name: str
        driver: str
        mountpoint: str
        labels: dict[str, str]
        options: dict[str, str]
        created: float
        anonymous: bool
        scope: str


class VolumePruneReport(Record):
    FIELDS = {"deleted": [], "reclaimed": 0}
    if TYPE_CHECKING:
        deleted: list[str]
        reclaimed: int


def _vs(store: Store) -> VolumeStore:
    from dockyard.volumes.store import VolumeStore

    return VolumeStore(store)


def _summary(vs: VolumeStore, v: Volume) -> VolumeSummary:
    return VolumeSummary(name=v.name, driver=v.driver, mountpoint=vs.mountpoint(v.name), labels=dict(v.labels),
                         options=dict(v.options), created=v.created, anonymous=v.anonymous)


def create_volume(store: Store, name: str | None = None, driver: str = "local",
                  options: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> VolumeSummary:
    """``volume create``: a new named volume (a random name when None); an existing one of that name is
    returned as it is, as Docker does. InvalidArgument for a bad name, driver or option."""
    vs = _vs(store)
    v, new = vs.create(name, driver, options or {}, labels or {}, anonymous=False)
    if new:
        from dockyard.engine import events

        events.emit(store, "volume", "create", v.name, {"driver": v.driver})
    return _summary(vs, v)


def normalize_filters(filters: dict[str, list[str]] | None) -> dict[str, list[str]]:
    """Filter names checked and lower-cased; ``label!``'s values become ``!value``."""
    out: dict[str, list[str]] = {}
    for key, values in (filters or {}).items():
        neg = key.endswith("!")
        k = key.rstrip("!").strip().lower()
        if k not in LIST_FILTERS:
            raise InvalidArgument(f"invalid filter '{k}'")
        out.setdefault(k, []).extend(("!" if neg else "") + v for v in values)
    for v in out.get("dangling", []):
        if v.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={v}'")
    return out


def list_volumes(store: Store, filters: dict[str, list[str]] | None = None) -> list[VolumeSummary]:
    """``volume ls``: filters ``dangling`` (no container uses it), ``name`` (substring), ``driver``, ``label``."""
    from dockyard.volumes.store import match_labels

    f = normalize_filters(filters)
    vs = _vs(store)
    used = vs.users() if "dangling" in f else {}
    out = []
    for v in vs.list():
        if "dangling" in f:
            want = {x.lower() in ("true", "1") for x in f["dangling"]}
            if len(want) == 1 and (v.name not in used) not in want:
                continue
        if "name" in f and not any(n in v.name for n in f["name"]):
            continue
        if "driver" in f and not any(d == v.driver for d in f["driver"]):
            continue
        if "label" in f and not match_labels(v, f["label"]):
            continue
        out.append(_summary(vs, v))
    return out


def inspect_volume(store: Store, name: str) -> dict[str, Any]:
    """Docker's volume inspect JSON; NotFound for an unknown name."""
    from dockyard.volumes.store import inspect_dict

    vs = _vs(store)
    return inspect_dict(vs, vs.get(name))


def remove_volume(store: Store, name: str, force: bool = False) -> None:
    """``volume rm``: Conflict while a container uses it; NotFound for an unknown name (unless ``force``)."""
    from dockyard.engine import events

    vs = _vs(store)
    try:
        v = vs.get(name)
    except Exception:  # noqa: BLE001 - NotFound: remove reports it (or ignores it with force)
        v = None
    vs.remove(name, force=force)
    if v is not None:
        events.emit(store, "volume", "destroy", v.name, {"driver": v.driver})


def prune_volumes(store: Store, all: bool = False, filters: dict[str, list[str]] | None = None
                  ) -> VolumePruneReport:
    """``volume prune``: unused anonymous volumes (every unused one with ``all`` or filter ``all=true``),
    filters ``label`` and ``label!``."""
    labels: list[str] = []
    for k, values in (filters or {}).items():
        if k.rstrip("!") != "label" and k != "all":
            raise InvalidArgument(f"invalid filter '{k}'")
        for v in values:
            if k == "all":
                all = all or v.lower() in ("true", "1")
            else:
                labels.append(("!" if k.endswith("!") else "") + v)
    names, reclaimed = _vs(store).prune(all=all, labels=labels)
    from dockyard.engine import events

    for n in names:
        events.emit(store, "volume", "destroy", n, {"driver": "local"})
    return VolumePruneReport(deleted=list(names), reclaimed=reclaimed)


def export_volume(store: Store, name: str, output: str | IO[bytes]) -> None:
    """``volume export``: the volume's data as a PAX tar, to a file (appears complete or not at all) or a stream."""
    from dockyard.volumes.archive import export

    vs = _vs(store)
    export(vs, vs.get(name), output)


def check_volume(store: Store, name: str) -> None:
    """NotFound when there is no volume ``name``."""
    _vs(store).get(name)


def import_volume(store: Store, name: str, source: str | IO[bytes]) -> None:
    """``volume import``: fill a new or empty volume from a tar (file or stream) with the safe extractor; a
    volume created here is removed again if the import fails."""
    from dockyard.volumes.archive import import_

    import_(_vs(store), name, source)
