"""What a killed command leaves behind, found and collected; ``builder prune`` and ``system prune``.

Every build step runs in a workspace (``engine.oneshot.Workspace``): a directory ``tmp/build-<32 hex>/`` of the
state root holding the overlay mount (``rootfs/``, ``diff/``, ``work/``), the bundle and an ``owner`` file (the
pid and start time of the command that made it). The runtime keeps the workspace's state in
``/run/dockyard/runtime/build-<hex>/`` and its cgroup in ``dockyard/build-<hex>``; a build on the default bridge
also has an endpoint row. A workspace whose owner is gone (a ``kill -9`` of ``build``) is *dead*: everything of it
is found from its name and removed by ``collect_dead_workspaces`` (processes killed, cgroups and runtime state
removed, endpoint released, overlay unmounted, directory removed). ``image prune``, ``container prune``,
``builder prune`` and ``system prune`` all call it.

Staging files (``tmp/``: layer tars, blob ingests, extraction directories of ``load``/``import``/``build``) are
stale when no process holds them (no fd or working directory in them) and they are more than a few seconds old:
``collect_staging``.

The build cache is ``build-cache/<key>`` (a step's cache key -> the image it made) and ``build-cache-mounts/<id>/``
(``RUN --mount=type=cache``). ``prune_build_cache`` removes dead workspaces and cache keys whose image is gone;
with ``all`` every key and every cache mount (filters ``until=``, ``label=``/``label!=`` on the cached image's
labels, and ``keep_storage`` bytes of the newest entries kept).
"""

from __future__ import annotations

import os
import time

from dockyard import jsonc as json
from dockyard.engine.options import Record
from dockyard.errors import DockyardError, InvalidArgument
from dockyard.state.db import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.engine.images import PruneReport as ImagePruneReport
    from dockyard.engine.networks import NetworkPruneReport
    from dockyard.engine.records import PruneReport
    from dockyard.engine.volumes import VolumePruneReport

WORKSPACE_PREFIX = "build-"
OWNER = "owner"
STAGING_GRACE = 5.0  # seconds: a staging entry younger than this may be between its creation and its first open
BUILD_PRUNE_FILTERS = ("until", "label", "label!", "unused-for", "id", "type", "inuse", "shared", "private")


class BuildPruneReport(Record):
    """``builder prune``: what was removed (cache entries and dead workspaces) and the bytes it held."""

    FIELDS = {"deleted": [], "reclaimed": 0}
    if TYPE_CHECKING:
        deleted: list[str]
        reclaimed: int


# ---- workspaces -------------------------------------------------------------------------------------------------

def record_owner(ws_dir: str) -> None:
    """Write ``ws_dir/owner``: this process (pid and start time) made the workspace."""
    from dockyard.engine.containers import proc_start_time
    from dockyard.fsutil import atomic_write

    me = os.getpid()
    atomic_write(os.path.join(ws_dir, OWNER), json.dumps({"pid": me, "start": proc_start_time(me)}).encode(),
                 0o600, durable=False)


def _owner_alive(ws_dir: str) -> bool:
    from dockyard.engine.containers import alive

    try:
        with open(os.path.join(ws_dir, OWNER), "rb") as f:
            d = json.loads(f.read())
        return alive(int(d["pid"]), d["start"])
    except FileNotFoundError:  # killed between mkdir and the owner file: dead once it is not brand new
        try:
            return time.time() - os.lstat(ws_dir).st_mtime < STAGING_GRACE
        except FileNotFoundError:
            return False
    except (ValueError, KeyError, TypeError, OSError):
        return False


def _is_workspace(name: str) -> bool:
    hexpart = name[len(WORKSPACE_PREFIX):]
    return name.startswith(WORKSPACE_PREFIX) and len(hexpart) == 32 and all(c in "0123456789abcdef" for c in hexpart)


def dead_workspaces(store: Store) -> list[str]:
    """Names (``build-<hex>``) of the workspaces in ``tmp/`` whose owner is gone."""
    return [n for n in _listdir(store.tmp) if _is_workspace(n) and not _owner_alive(os.path.join(store.tmp, n))]


def live_workspaces(store: Store) -> list[str]:
    return [n for n in _listdir(store.tmp) if _is_workspace(n) and _owner_alive(os.path.join(store.tmp, n))]


def collect_dead_workspaces(store: Store) -> tuple[list[str], int]:
    """Remove every dead workspace and what it holds outside ``tmp/``; returns (names, bytes freed)."""
    from dockyard.engine.filters import dir_size

    names, freed = [], 0
    for name in dead_workspaces(store):
        d = os.path.join(store.tmp, name)
        size = dir_size(os.path.join(d, "diff")) if os.path.isdir(os.path.join(d, "diff")) else 0
        try:
            remove_workspace(store, name)
        except (DockyardError, OSError):
            continue  # collected by a later prune
        names.append(name)
        freed += size
    return names, freed


def remove_workspace(store: Store, name: str) -> None:
    """Kill a workspace's processes, remove its cgroups and runtime state, release its endpoint, unmount and
    remove its directory (the workspace itself uses this on its way out, and prune for a dead one)."""
    from dockyard.engine.monitor import RUNTIME_STATE
    from dockyard.engine.rootfs import unmount_root
    from dockyard.fsutil import rmtree

    _remove_runtime_state(name, RUNTIME_STATE)
    _release_endpoint(store, name)
    d = os.path.join(store.tmp, name)
    unmount_root(d)
    rmtree(d)


def _remove_runtime_state(name: str, state_root: str) -> None:
    import signal

    from dockyard.errors import NotFound
    from dockyard.fsutil import rmtree
    from dockyard.runtime.base import get_runtime
    from dockyard.runtime.cgroups import Cgroup

    try:
        get_runtime("dockyard", state_root).delete(name, force=True)
        return
    except NotFound:  # killed inside create, before the state was saved: the cgroup is found by its path
        pass
    cg = Cgroup.for_path(f"/dockyard/{name}")
    deadline = time.monotonic() + 10
    while True:
        try:
            if not cg.procs():
                break
            cg.kill_all(signal.SIGKILL)
            if cg.frozen():
                cg.thaw()
        except OSError:
            break
        if time.monotonic() > deadline:
            raise DockyardError(f"cannot stop the processes of build workspace {name}")
        time.sleep(0.005)
    try:
        cg.remove()
    except (OSError, DockyardError):
        pass
    rmtree(os.path.join(state_root, name))


def _release_endpoint(store: Store, name: str) -> None:
    from dockyard.engine.containers import Container
    from dockyard.engine.options import ContainerSpec

    cid = name[len(WORKSPACE_PREFIX):].ljust(64, "0")[:64]  # as Workspace.run names its sandbox
    if not store.query("SELECT 1 FROM endpoints WHERE container_id=?", (cid,)):
        return
    from dockyard.network.attach import release

    release(store, Container(cid, name, None, "", "exited", ContainerSpec(image="")), forget=True)


# ---- staging files ----------------------------------------------------------------------------------------------

def _held_paths(prefix: str) -> set[str]:
    """Paths under ``prefix`` that some process has open (an fd) or works in (its cwd)."""
    held: set[str] = set()
    for pid in _listdir("/proc"):
        if not pid.isdigit():
            continue
        links = [f"/proc/{pid}/cwd"] + [f"/proc/{pid}/fd/{n}" for n in _listdir(f"/proc/{pid}/fd")]
        for link in links:
            try:
                t = os.readlink(link)
            except OSError:
                continue
            if t.startswith(prefix):
                held.add(t)
    return held


def collect_staging(store: Store) -> tuple[list[str], int]:
    """Remove the staging entries of ``tmp/`` that nobody holds (not a live workspace, no process with an fd or
    its working directory in them, older than a few seconds); returns (names, bytes freed)."""
    from dockyard.engine.filters import dir_size
    from dockyard.fsutil import rmtree

    tmp = store.tmp
    names = [n for n in _listdir(tmp) if not _is_workspace(n) and not n.startswith("reserve")]
    if not names:
        return [], 0
    held = _held_paths(tmp + "/")
    now = time.time()
    removed, freed = [], 0
    for n in names:
        p = os.path.join(tmp, n)
        if any(h == p or h.startswith(p + "/") for h in held):
            continue
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if now - st.st_mtime < STAGING_GRACE:
            continue
        size = dir_size(p) if os.path.isdir(p) else st.st_size
        try:
            from dockyard.engine.rootfs import unmount_root

            unmount_root(p)
            rmtree(p) if os.path.isdir(p) else os.unlink(p)
        except FileNotFoundError:
            continue
        removed.append(n)
        freed += size
    return removed, freed


def collect_leftovers(store: Store) -> int:
    """Dead workspaces and stale staging files (what ``image prune`` and ``container prune`` add); bytes freed."""
    _, a = collect_dead_workspaces(store)
    _, b = collect_staging(store)
    return a + b


# ---- build cache ------------------------------------------------------------------------------------------------

def check_build_filters(filters: dict[str, list[str]]) -> None:
    for k in filters:
        if k not in ("until", "label", "label!"):
            raise InvalidArgument(f"invalid filter '{k}'")


def prune_build_cache(store: Store, all: bool = False, filters: dict[str, list[str]] | None = None,
                      keep_storage: int = 0) -> BuildPruneReport:
    """``builder prune``: dead workspaces and stale staging always; cache keys whose image is gone; with ``all``
    every cache key and every cache mount. ``until=<time>`` keeps entries used since then, ``label=k[=v]`` /
    ``label!=`` match the cached image's labels; ``keep_storage`` keeps the newest entries up to that many bytes.
    """
    from dockyard.engine import filters as flt
    from dockyard.fsutil import rmtree

    filters = filters or {}
    check_build_filters(filters)
    until = flt.time_value(filters["until"][-1]) if filters.get("until") else None
    report = BuildPruneReport()
    names, freed = collect_dead_workspaces(store)
    report.deleted += names
    report.reclaimed += freed
    names, freed = collect_staging(store)
    report.reclaimed += freed

    images = {r["id"]: r["config"] for r in store.query("SELECT id, config FROM images")}
    entries: list[tuple[float, int, str, str]] = []  # (mtime, size, path, id)
    keys_dir = store.path("build-cache")
    for n in _listdir(keys_dir):
        p = os.path.join(keys_dir, n)
        try:
            st = os.lstat(p)
            with open(p) as f:
                image_id = f.read().strip()
        except OSError:
            continue
        if not all and image_id in images:
            continue
        if filters.get("label") or filters.get("label!"):
            labels = _labels(images.get(image_id))
            if not flt.labels_match(labels, filters.get("label", []), filters.get("label!", [])):
                continue
        entries.append((st.st_mtime, st.st_size, p, n))
    if all:
        mounts_dir = store.path("build-cache-mounts")
        for n in _listdir(mounts_dir):
            p = os.path.join(mounts_dir, n)
            if filters.get("label"):
                continue  # a cache mount has no labels
            entries.append((os.lstat(p).st_mtime, flt.dir_size(p), p, n))
    if until is not None:
        entries = [e for e in entries if e[0] < until]
    if keep_storage > 0:
        entries.sort(reverse=True)
        kept = 0
        rest = []
        for e in entries:
            if kept + e[1] <= keep_storage:
                kept += e[1]
            else:
                rest.append(e)
        entries = rest
    for _mtime, size, p, n in entries:
        try:
            rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
        except FileNotFoundError:
            continue
        report.deleted.append(n)
        report.reclaimed += size
    return report


# ---- system prune -----------------------------------------------------------------------------------------------

class SystemPruneReport(Record):
    """``system prune``: each prune's report (``None`` when not asked for) and the bytes freed in all."""

    FIELDS = {"containers": None, "networks": None, "volumes": None, "images": None, "build_cache": None,
              "reclaimed": 0}
    if TYPE_CHECKING:
        containers: PruneReport | None
        networks: NetworkPruneReport | None
        volumes: VolumePruneReport | None
        images: ImagePruneReport | None
        build_cache: BuildPruneReport | None
        reclaimed: int


def system_prune_warnings(all: bool = False, volumes: bool = False) -> list[str]:
    """What ``system prune`` will remove, as Docker's confirmation lists it."""
    out = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        out.append("all anonymous volumes not used by at least one container")
    out.append("all images without at least one container associated to them" if all else "all dangling images")
    out.append("all build cache" if all else "unused build cache")
    return out


def system_prune(store: Store, all: bool = False, volumes: bool = False,
                 filters: dict[str, list[str]] | None = None) -> SystemPruneReport:
    """``system prune``: container prune, network prune, (volume prune with ``volumes``), image prune (dangling,
    or every unused image with ``all``) and builder prune (``all`` too), in that order, with the same filters
    (``until``, ``label``, ``label!``; ``until`` cannot go with ``volumes``, as in Docker)."""
    from dockyard.engine import local
    from dockyard.engine.images import prune_images
    from dockyard.engine.networks import prune_networks
    from dockyard.engine.volumes import prune_volumes

    filters = dict(filters or {})
    for k in filters:
        if k not in ("until", "label", "label!"):
            raise InvalidArgument(f"invalid filter '{k}'")
    if volumes and "until" in filters:
        raise InvalidArgument('The "until" filter is not supported with "--volumes"')
    pairs = [(k, v) for k, vs in filters.items() for v in vs]
    report = SystemPruneReport()
    report.containers = local.prune(store, pairs)
    report.networks = prune_networks(store, filters)
    if volumes:
        report.volumes = prune_volumes(store, filters={k: v for k, v in filters.items() if k != "until"})
    report.images = prune_images(store, all=all, filters=filters)
    report.build_cache = prune_build_cache(store, all=all, filters=filters)
    report.reclaimed = (report.containers.space_reclaimed + report.images.reclaimed + report.build_cache.reclaimed
                        + (report.volumes.reclaimed if report.volumes is not None else 0))
    return report


def _labels(config: str | None) -> dict[str, str]:
    if not config:
        return {}
    try:
        return dict((json.loads(config).get("config") or {}).get("Labels") or {})
    except (ValueError, AttributeError, TypeError):
        return {}


def _listdir(p: str) -> list[str]:
    try:
        return os.listdir(p)
    except (FileNotFoundError, NotADirectoryError):
        return []


__all__ = ["BuildPruneReport", "SystemPruneReport", "system_prune", "system_prune_warnings", "record_owner", "dead_workspaces", "live_workspaces", "collect_dead_workspaces",
           "remove_workspace", "collect_staging", "collect_leftovers", "prune_build_cache", "check_build_filters",
           "BUILD_PRUNE_FILTERS"]
