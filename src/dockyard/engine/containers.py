"""Container records and their state machine.

A container's life: ``created`` (a row and a bundle directory, nothing running) -> ``running`` (its monitor started
the process) <-> ``paused`` -> ``exited`` (the monitor recorded the status) -> removed. ``restarting`` while the
monitor applies a restart policy; ``removing`` during ``rm``; ``dead`` when removal failed half way.

Every action checks ``can_*`` first and raises Docker's Conflict message when the state forbids it. The database
row is the truth, but a row claiming ``running`` is checked against the kernel (``refresh``): if the container's
init process is gone and its monitor too (``kill -9``), the row is corrected to ``exited`` with status 255
rather than shown as running.
"""

from __future__ import annotations

import os
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.engine.options import ContainerSpec

from dockyard import jsonc as json
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.state.db import Store, prefix_range


def proc_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] == b"Z":  # a zombie has finished running
        return None
    return int(rest[19])


def alive(pid: int | None, start: int | None) -> bool:
    return bool(pid) and proc_start_time(pid) == start  # type: ignore[arg-type]


RUNNING_STATES = ("running", "paused", "restarting")


class Container:
    """One row of the ``containers`` table. ``spec`` (the create options) is parsed only when used."""

    __slots__ = ("id", "name", "image_id", "image_ref", "state", "config", "created", "started", "finished",
                 "pid", "pid_start", "monitor_pid", "monitor_start", "exit_code", "oom_killed", "error",
                 "restart_count", "labels", "_spec", "warnings")

    def __init__(self, id: str, name: str, image_id: str | None, image_ref: str, state: str,
                 spec: ContainerSpec | None = None, created: float = 0.0, *, config: dict[str, Any] | None = None,
                 started: float | None = None, finished: float | None = None, pid: int | None = None,
                 pid_start: int | None = None, monitor_pid: int | None = None, monitor_start: int | None = None,
                 exit_code: int | None = None, oom_killed: bool = False, error: str = "", restart_count: int = 0,
                 labels: dict[str, str] | None = None) -> None:
        self.id, self.name, self.image_id, self.image_ref, self.state = id, name, image_id, image_ref, state
        self._spec = spec
        self.config = config if config is not None else (spec.to_json() if spec is not None else {})
        self.created, self.started, self.finished = created, started, finished
        self.pid, self.pid_start, self.monitor_pid, self.monitor_start = pid, pid_start, monitor_pid, monitor_start
        self.exit_code, self.oom_killed, self.error = exit_code, oom_killed, error
        self.restart_count = restart_count
        self.labels = labels or {}
        self.warnings: list[str] = []  # what create answers besides the container (Docker's ``Warnings``)

    @property
    def spec(self) -> ContainerSpec:
        if self._spec is None:
            from dockyard.engine.options import ContainerSpec

            self._spec = ContainerSpec.from_json(self.config)
        return self._spec

    @classmethod
    def from_row(cls, r: Any) -> Container:
        return cls(r["id"], r["name"], r["image_id"], r["image_ref"], r["state"], None, r["created"],
                   config=json.loads(r["config"]), started=r["started"], finished=r["finished"], pid=r["pid"],
                   pid_start=r["pid_start"], monitor_pid=r["monitor_pid"], monitor_start=r["monitor_start"],
                   exit_code=r["exit_code"], oom_killed=bool(r["oom_killed"]), error=r["error"],
                   restart_count=r["restart_count"], labels=json.loads(r["labels"]))

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused", "restarting")

    def can_start(self) -> None:
        if self.state == "paused":
            raise Conflict(f"cannot start a paused container {self.name}, try unpause instead")
        if self.state in ("removing", "dead"):
            raise Conflict(f"container {self.name} is marked for removal and cannot be started")

    def can_remove(self, force: bool) -> None:
        if self.running and not force:
            verb = "paused" if self.state == "paused" else "running"
            raise Conflict(f"cannot remove container \"/{self.name}\": container is {verb}: stop the container "
                           "before removing or force remove")

    def can_exec(self) -> None:
        if self.state == "paused":
            raise Conflict(f"Container {self.id} is paused, unpause the container before exec")
        if self.state != "running":
            raise Conflict(f"container {self.id} is not running")

    def dir(self, store: Store) -> str:
        return store.path("containers", self.id)


class ContainerStore:
    """Rows of the ``containers`` table, looked up by name, full ID or unique ID prefix."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def insert(self, c: Container, also: Callable[[Any], None] | None = None) -> None:
        """Add the row; ``also(cursor)`` writes more in the same transaction (the create event)."""
        from dockyard.state.db import IntegrityError

        try:
            with self.store.write() as cur:
                cur.execute(
                    "INSERT INTO containers (id, name, image_id, image_ref, state, config, created, labels)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (c.id, c.name, c.image_id, c.image_ref, c.state, json.dumps(c.spec.to_json()), c.created,
                     json.dumps(c.labels)))
                if also is not None:
                    also(cur)
        except IntegrityError:
            other = self.store.query("SELECT id FROM containers WHERE name=?", (c.name,))
            oid = other[0]["id"] if other else "?"
            raise Conflict(f'Conflict. The container name "/{c.name}" is already in use by container "{oid}". '
                           "You have to remove (or rename) that container to be able to reuse that name.") from None

    def get(self, ref: str) -> Container:
        ref = ref.lstrip("/") if ref.startswith("/") else ref
        rows = self.store.query("SELECT * FROM containers WHERE id=? OR name=?", (ref, ref))
        if not rows and ref and all(ch in "0123456789abcdef" for ch in ref):
            # an ID prefix: a range of the primary key (LIKE would read every row)
            rows = self.store.query("SELECT * FROM containers WHERE id >= ? AND id < ? LIMIT 2", prefix_range(ref))
            if len(rows) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        if not rows:
            raise NotFound(f"No such container: {ref}")
        if len(rows) > 1:  # a name equal to another container's ID: the ID wins, as in Docker
            rows = [r for r in rows if r["id"] == ref] or rows[:1]
        return self.refresh(Container.from_row(rows[0]))

    def list(self, all: bool = True) -> list[Container]:
        """Every container, newest first; with ``all=False`` only the running (paused, restarting) ones, read
        through the state index: ``ps`` costs what the running containers cost, not what the store holds."""
        if all:
            rows = self.store.query("SELECT * FROM containers ORDER BY created DESC")
        else:
            rows = self.store.query("SELECT * FROM containers WHERE state IN (?,?,?) ORDER BY created DESC",
                                    RUNNING_STATES)
        out = [self.refresh(Container.from_row(r)) for r in rows]
        return out if all else [c for c in out if c.running]

    def update(self, cid: str, **values: Any) -> None:
        if not values:
            return
        cols = ", ".join(f"{k}=?" for k in values)
        with self.store.write() as cur:
            cur.execute(f"UPDATE containers SET {cols} WHERE id=?", (*values.values(), cid))

    def delete(self, cid: str) -> None:
        with self.store.write() as cur:
            cur.execute("DELETE FROM containers WHERE id=?", (cid,))

    def refresh(self, c: Container) -> Container:
        """Correct a row that claims the container runs when neither it nor its monitor is alive."""
        if c.state in ("running", "paused", "restarting") and not alive(c.pid, c.pid_start):
            if alive(c.monitor_pid, c.monitor_start):
                return c  # the monitor is about to record the exit (or restart it)
            now = time.time()
            from dockyard.errors import NoSpace

            try:
                with self.store.write() as cur:
                    cur.execute("UPDATE containers SET state='exited', exit_code=255, finished=?, error=?,"
                                " pid=NULL WHERE id=? AND state IN ('running','paused','restarting')",
                                (now, "container monitor died before recording the exit status", c.id))
            except NoSpace:
                pass  # a full disk: show the truth now, record it when there is room (reads must work)
            c.state, c.exit_code, c.finished = "exited", 255, now
            c.error = "container monitor died before recording the exit status"
        return c


ASIDE = "removed-"  # tmp/removed-<id>: a removed container's files, deleted after its removal was reported


def set_aside(store: Store, c: Container) -> str | None:
    """Unmount the container's rootfs and move its directory out of ``containers/`` into ``tmp/`` with one rename;
    returns the new path, for ``fsutil.rmtree`` once the caller has answered (None: nothing left to delete).

    This is how ``run --rm`` answers early (docs/decisions.md): every unlink costs milliseconds on a slow-metadata
    disk, and a container's directory holds about ten entries. Once the rootfs is unmounted and the directory
    renamed, nothing of the container remains where anything looks for it; a process killed before deleting it
    leaves ``tmp/removed-<id>``, which ``prune`` removes with the other stale staging entries."""
    from dockyard.engine.rootfs import unmount_root

    d = c.dir(store)
    unmount_root(d)
    dst = os.path.join(store.tmp, ASIDE + c.id)
    try:
        os.rename(d, dst)
        return dst
    except FileNotFoundError:
        return None
    except OSError:  # e.g. a leftover of an earlier attempt at dst: delete in place, as remove_files
        from dockyard.fsutil import rmtree

        rmtree(d)
        return None


def remove_files(store: Store, c: Container) -> None:
    """Unmount whatever is left of the container's rootfs and remove its directory."""
    from dockyard.engine.rootfs import unmount_root
    from dockyard.fsutil import rmtree

    d = c.dir(store)
    unmount_root(d)
    rmtree(d)


REMOVING = "removing"  # <container dir>/removing: rm -f's word to the monitor (local.remove), then its answer


def removal_flag(root: str, cid: str) -> str:
    return os.path.join(root, "containers", cid, REMOVING)


def take_removal(root: str, cid: str, status: int) -> bool:
    """In the monitor, once the container has exited: True when ``rm -f`` is removing it, with ``status`` written
    for the remover. The monitor then records nothing and leaves the clean-up to the remover (the C loop does the
    same, monitor_loop.c ``removal``)."""
    try:
        fd = os.open(removal_flag(root, cid), os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, f"{status}\n".encode())
    finally:
        os.close(fd)
    return True
