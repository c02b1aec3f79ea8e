"""How containers use volumes, in plain data: mounts are the JSON form of ``engine.options.MountSpec``
(``{"type", "source", "target", "readonly", "options", "nocopy", "mode", "volume_driver", "volume_options",
"volume_labels"}``); this module never imports the engine.

Life cycle of a container's volumes (Docker's rules):

- ``resolve`` at create time: ``--volumes-from`` entries become the other container's volume and bind mounts
  (their mode, or ``:ro``/``:rw`` of the flag); a named volume is created on first use; ``-v /path`` and the image's
  ``VOLUME`` paths not already covered by a mount get new anonymous volumes. The result is what the container row
  records, so a restart reuses the same volumes.
- ``source`` at start time (in the monitor, with the container's root mounted): the volume is mounted on the host if
  its options say so, and an empty volume gets the image's files at its target (copy-up) unless ``nocopy``.
- ``release`` when a container stops: volumes mounted on the host are unmounted once no running container uses
  them.
- ``remove_anonymous`` after a container is removed with ``rm -v``/``--rm``: its anonymous volumes that no other
  container uses go too; named ones stay.
"""

from __future__ import annotations

import os
import posixpath
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.errors import InvalidArgument, NotFound
from dockyard.state.db import Store


def clean_target(path: str) -> str:
    return posixpath.normpath(path) if path else path


def _container_mounts(store: Store, ref: str) -> tuple[str, list[dict[str, Any]]]:
    """(ID, mounts) of a container by name, ID or unique ID prefix (read from the containers table)."""
    from dockyard import jsonc as json

    ref = ref.lstrip("/")
    rows = store.query("SELECT id, config FROM containers WHERE id=? OR name=?", (ref, ref))
    if not rows and ref and all(ch in "0123456789abcdef" for ch in ref):
        from dockyard.state.db import prefix_range

        rows = store.query("SELECT id, config FROM containers WHERE id >= ? AND id < ? LIMIT 2", prefix_range(ref))
        if len(rows) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
    if not rows:
        raise NotFound(f"No such container: {ref}")
    row = [r for r in rows if r["id"] == ref] or rows[:1]
    return row[0]["id"], list(json.loads(row[0]["config"]).get("mounts") or [])


def resolve(store: Store, mounts: list[dict[str, Any]], image_volumes: dict[str, Any] | None,
            tmpfs_targets: list[str] | None = None) -> list[dict[str, Any]]:
    """The mounts a new container records: volumes-from expanded, volumes created, image VOLUMEs added."""
    from dockyard.volumes.store import VolumeStore

    vs = VolumeStore(store)
    explicit = [dict(m) for m in mounts if m.get("type") != "volumes-from"]
    taken = {clean_target(m["target"]) for m in explicit} | {clean_target(t) for t in tmpfs_targets or []}
    out: list[dict[str, Any]] = []
    for vf in (m for m in mounts if m.get("type") == "volumes-from"):
        _cid, theirs = _container_mounts(store, vf["source"])
        for m in theirs:
            t = clean_target(m.get("target", ""))
            if m.get("type") not in ("volume", "bind") or t in taken:
                continue
            m = dict(m)
            if vf.get("mode") in ("ro", "rw"):
                m["readonly"] = vf["mode"] == "ro"
                m["mode"] = vf["mode"]
            m["nocopy"] = True  # the data is the other container's: never copied up again
            taken.add(t)
            out.append(m)
    created: list[str] = []
    try:
        for m in explicit:
            if m.get("type") == "volume":
                v, new = vs.create(m.get("source") or None, m.get("volume_driver") or "local",
                                   m.get("volume_options") or {}, m.get("volume_labels") or {})
                m["source"] = v.name
                if new and v.anonymous:
                    created.append(v.name)
            out.append(m)
        for path in sorted(image_volumes or {}):
            t = clean_target(path)
            if not t.startswith("/") or t in taken:
                continue
            taken.add(t)
            v, _ = vs.create(None)
            created.append(v.name)
            out.append({"type": "volume", "source": v.name, "target": t, "readonly": False, "options": []})
    except BaseException:
        for name in created:  # nothing half-made stays behind
            try:
                vs.remove(name)
            except Exception:  # noqa: BLE001
                pass
        raise
    return out


def source(root: str, name: str, copy_from: str | None) -> str:
    """The host path to bind for a container's volume mount, ready to use: mounted if its options say so, and
    if empty, filled from ``copy_from`` (the image's directory at the mount's target, as the container sees it;
    None for ``nocopy``)."""
    from dockyard.volumes.store import VolumeStore, lock

    vs = VolumeStore(Store(root))
    try:
        v = vs.get(name)
    except NotFound:  # removed between create and start: Docker creates a named volume again
        v, _ = vs.create(name)
    path = vs.activate(v)
    if copy_from is not None and os.path.isdir(copy_from):
        from dockyard.volumes.copyup import copy_up, is_empty

        if is_empty(path):
            with lock(vs.dir(name)):
                copy_up(copy_from, path)
    return path


def _volume_names(mounts: list[Any]) -> list[str]:
    out = []
    for m in mounts:
        typ, src = (m.get("type"), m.get("source")) if isinstance(m, dict) else (m.type, m.source)
        if typ == "volume" and src and src not in out:
            out.append(src)
    return out


def release(store: Store, cid: str, mounts: list[Any]) -> None:
    """A container stopped: unmount its host-mounted volumes that no other running container uses."""
    names = _volume_names(mounts)
    if not names:
        return
    from dockyard.volumes.store import VolumeStore

    vs = VolumeStore(store)
    running = vs.users(running_only=True)
    for name in names:
        if [c for c in running.get(name, []) if c != cid]:
            continue
        try:
            v = vs.get(name)
        except NotFound:
            continue
        if v.needs_mount:
            vs.deactivate(v)


def remove_anonymous(store: Store, mounts: list[Any]) -> list[str]:
    """After a container's removal: remove its anonymous volumes that no container uses any more."""
    from dockyard.errors import Conflict
    from dockyard.volumes.store import VolumeStore

    vs = VolumeStore(store)
    removed = []
    for name in _volume_names(mounts):
        try:
            if vs.get(name).anonymous:
                vs.remove(name)
                removed.append(name)
        except (NotFound, Conflict):
            continue
    return removed


def host_path(root: str, name: str) -> str:
    """Where a volume's files are on the host now (``cp`` into a container reads and writes there)."""
    from dockyard.volumes.store import VolumeStore

    return VolumeStore(Store(root)).host_path(name)
