"""Named volumes: data that outlives containers.

Vocabulary:
- a *volume* is a directory ``ROOT/volumes/<name>/_data`` (its *mountpoint*) plus a row in the ``volumes`` table
  (driver, options, labels, creation time). Containers bind-mount the mountpoint.
- a *named* volume was named by a user (``volume create data``, ``-v data:/x``); an *anonymous* one got a random
  64-hex name because a container asked for a volume without naming it (``-v /x``, ``VOLUME`` in the image). Only
  anonymous volumes go away with their container (``rm -v``, ``run --rm``) or by a plain ``volume prune``.
- a volume is *in use* while any container (running or not) lists it in its mounts; *dangling* when none does.
- the only driver is ``local``. Its options follow Docker's local driver: ``type``/``device``/``o`` make the volume
  a mount of its own (``type=tmpfs,device=tmpfs,o=size=64m``; ``type=none,o=bind,device=/srv/x``; ``type=nfs``...)
  that is mounted on the mountpoint when a container starts using it (``activate``) and unmounted when no running
  container uses it any more (``deactivate``).

Life cycle, as in Docker: ``create`` (idempotent for an existing name) -> used by containers -> ``remove`` (refused
while in use) or ``prune``. Rows and directories change inside one write transaction, so concurrent creators of the
same name agree on one volume and a crash leaves at worst an orphan directory, which the next ``create`` of that
name clears.
"""

from __future__ import annotations

import os
import re
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard import jsonc as json
from dockyard.errors import Conflict, InvalidArgument, NotFound, from_oserror
from dockyard.state.db import Store

ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # Docker (23+) marks anonymous volumes with it
NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")
_VALID_OPTS = ("type", "o", "device", "size")
_REQUIRED_OPTS = {"device": ("type",), "type": ("device",), "o": ("device", "type")}
RUNNING_STATES = ("running", "paused", "restarting")


def validate_name(name: str) -> None:
    """Docker's local-driver rule: at least two characters of ``[a-zA-Z0-9][a-zA-Z0-9_.-]``."""
    if len(name) == 1:
        raise InvalidArgument(f"create {name}: volume name is too short, names should be at least two "
                              "alphanumeric characters")
    if not _NAME_RE.match(name):
        raise InvalidArgument(f'create {name}: "{name}" includes invalid characters for a local volume name, '
                              f'only "{NAME_CHARS}" are allowed. If you intended to pass a host directory, use '
                              "absolute path")


def validate_driver(name: str, driver: str) -> None:
    if driver != "local":
        raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')


def validate_options(name: str, opts: dict[str, str]) -> None:
    for k in opts:
        if k not in _VALID_OPTS:
            raise InvalidArgument(f'create {name}: invalid option: "{k}"')
    if opts.get("size"):
        raise InvalidArgument(f"create {name}: quota size requested but no quota support")
    for k, needs in _REQUIRED_OPTS.items():
        if k in opts:
            for n in needs:
                if n not in opts:
                    raise InvalidArgument(f'create {name}: missing required option: "{n}"')


class Volume:
    """One row of the ``volumes`` table."""

    __slots__ = ("name", "driver", "options", "labels", "created", "anonymous")

    def __init__(self, name: str, driver: str = "local", options: dict[str, str] | None = None,
                 labels: dict[str, str] | None = None, created: float = 0.0, anonymous: bool = False) -> None:
        self.name, self.driver, self.created, self.anonymous = name, driver, created, anonymous
        self.options = options or {}
        self.labels = labels or {}

    @classmethod
    def from_row(cls, r: Any) -> Volume:
        return cls(r["name"], r["driver"], json.loads(r["options"]), json.loads(r["labels"]), r["created"],
                   bool(r["anonymous"]))

    @property
    def needs_mount(self) -> bool:
        """The local driver mounts something on the mountpoint (``type``/``device`` options)."""
        return bool(self.options.get("type") or self.options.get("device"))


def _unescape(field: bytes) -> str:
    """/proc/self/mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field).decode("utf-8", "replace")


def mount_points() -> list[str]:
    with open("/proc/self/mountinfo", "rb") as f:
        return [_unescape(ln.split(b" ", 5)[4]) for ln in f]


def is_mounted(path: str) -> bool:
    """True if something is mounted exactly on ``path`` (a same-filesystem bind included, which
    ``os.path.ismount`` cannot see)."""
    path = os.path.realpath(path)
    return path in mount_points()


class VolumeStore:
    """The volumes of one state root."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- paths ----------------------------------------------------------------------------------------------------
    def dir(self, name: str) -> str:
        return self.store.path("volumes", name)

    def mountpoint(self, name: str) -> str:
        return self.store.path("volumes", name, "_data")

    # -- rows -----------------------------------------------------------------------------------------------------
    def create(self, name: str | None = None, driver: str = "local", options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None, anonymous: bool = False) -> tuple[Volume, bool]:
        """(the volume, whether it is new). An existing name returns the existing volume, as Docker does."""
        if not name:
            from dockyard.ids import new_id

            name, anonymous = new_id(), True
        validate_name(name)
        validate_driver(name, driver or "local")
        opts = dict(options or {})
        validate_options(name, opts)
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault(ANONYMOUS_LABEL, "")
        with self.store.write() as cur:
            rows = cur.execute("SELECT * FROM volumes WHERE name=?", (name,)).fetchall()
            if rows:
                return Volume.from_row(rows[0]), False
            d = self.dir(name)
            if os.path.lexists(d):  # left by a crash between mkdir and commit, or by an interrupted remove
                self._discard_dir(name)
            try:
                os.makedirs(self.store.path("volumes"), 0o701, exist_ok=True)
                os.mkdir(d, 0o701)
                os.mkdir(os.path.join(d, "_data"), 0o755)
            except OSError as e:
                raise from_oserror(f"create {name}", e) from None
            v = Volume(name, driver or "local", opts, labels, time.time(), anonymous)
            cur.execute("INSERT INTO volumes (name, driver, options, labels, created, anonymous)"
                        " VALUES (?,?,?,?,?,?)",
                        (v.name, v.driver, json.dumps(v.options), json.dumps(v.labels), v.created, int(anonymous)))
        return v, True

    def get(self, name: str) -> Volume:
        rows = self.store.query("SELECT * FROM volumes WHERE name=?", (name,))
        if not rows:
            raise NotFound(f"get {name}: no such volume")
        return Volume.from_row(rows[0])

    def list(self) -> list[Volume]:
        return [Volume.from_row(r) for r in self.store.query("SELECT * FROM volumes ORDER BY name")]

    def users(self, name: str | None = None, running_only: bool = False) -> dict[str, list[str]]:
        """volume name -> IDs of the containers whose mounts name it (oldest first)."""
        sql = ("SELECT json_extract(m.value, '$.source') AS vol, c.id AS cid FROM containers c,"
               " json_each(c.config, '$.mounts') m WHERE json_extract(m.value, '$.type') = 'volume'")
        args: list[Any] = []
        if name is not None:
            sql += " AND json_extract(m.value, '$.source') = ?"
            args.append(name)
        if running_only:
            sql += f" AND c.state IN ({','.join('?' * len(RUNNING_STATES))})"
            args += RUNNING_STATES
        out: dict[str, list[str]] = {}
        for r in self.store.query(sql + " ORDER BY c.created", tuple(args)):
            ids = out.setdefault(r["vol"], [])
            if r["cid"] not in ids:
                ids.append(r["cid"])
        return out

    def remove(self, name: str, force: bool = False) -> int:
        """Remove a volume that no container uses; returns the bytes it held. ``force``: a missing name is fine."""
        try:
            v = self.get(name)
        except NotFound:
            if force:
                return 0
            raise
        using = self.users(name).get(name)
        if using:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(using)}]")
        self.deactivate(v)
        size = disk_usage(self.mountpoint(name))
        with self.store.write() as cur:
            if self.users(name).get(name):  # a container took it meanwhile
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(self.users(name)[name])}]")
            cur.execute("DELETE FROM volumes WHERE name=?", (name,))
            self._discard_dir(name)
        return size

    def _discard_dir(self, name: str) -> None:
        """Move the volume's directory out of the way (atomically), then delete it; never crosses a mount."""
        from dockyard.fsutil import rmtree

        d = self.dir(name)
        if not os.path.lexists(d):
            return
        prefix = os.path.realpath(d) + "/"
        if any((m + "/").startswith(prefix) for m in mount_points()):
            raise Conflict(f"remove {name}: volume has active mounts")
        os.makedirs(self.store.tmp, 0o700, exist_ok=True)
        trash = os.path.join(self.store.tmp, f"volume-{os.urandom(6).hex()}")
        os.rename(d, trash)
        rmtree(trash)

    def prune(self, all: bool = False, labels: list[str] | None = None) -> tuple[list[str], int]:
        """Remove unused volumes (only anonymous ones unless ``all``); returns (names, bytes reclaimed)."""
        used = self.users()
        names: list[str] = []
        total = 0
        for v in self.list():
            if v.name in used or (not all and not v.anonymous) or not match_labels(v, labels or []):
                continue
            try:
                total += self.remove(v.name)
            except (Conflict, NotFound):
                continue
            names.append(v.name)
        return names, total

    # -- mounting -------------------------------------------------------------------------------------------------
    def activate(self, v: Volume) -> str:
        """Make the volume's data reachable at its mountpoint (mounting its ``type``/``device`` if it has one);
        returns the mountpoint."""
        path = self.mountpoint(v.name)
        if not v.needs_mount:
            return path
        with lock(self.dir(v.name)):
            if is_mounted(path):
                return path
            from dockyard.runtime import syscalls
            from dockyard.runtime.mounts import parse_options

            o = v.options
            device = o.get("device", "")
            if not device:
                raise InvalidArgument(f"error while mounting volume '{path}': missing device in volume options")
            flags, _prop, data = parse_options([x for x in o.get("o", "").split(",") if x])
            fstype = o.get("type") or None
            if fstype == "none":
                fstype = None
            try:
                if flags & syscalls.MS_BIND:
                    syscalls.mount(device, path, None, flags & (syscalls.MS_BIND | syscalls.MS_REC))
                    extra = flags & ~(syscalls.MS_BIND | syscalls.MS_REC | syscalls.MS_REMOUNT)
                    if extra:
                        syscalls.mount(None, path, None, syscalls.MS_BIND | syscalls.MS_REMOUNT | extra)
                else:
                    syscalls.mount(device, path, fstype, flags, data or None)
            except OSError as e:
                raise from_oserror(f"error while mounting volume '{path}': failed to mount local volume: mount "
                                   f"{device}:{path}", e) from None
        return path

    def deactivate(self, v: Volume) -> None:
        """Unmount what ``activate`` mounted (a tmpfs volume loses its data, as in Docker)."""
        if not v.needs_mount:
            return
        from dockyard.runtime import syscalls

        path = self.mountpoint(v.name)
        with lock(self.dir(v.name)):
            while is_mounted(path):
                try:
                    syscalls.umount2(path, syscalls.MNT_DETACH)
                except OSError as e:
                    raise from_oserror(f"unmount volume {v.name}", e) from None

    def host_path(self, name: str) -> str:
        """Where the volume's files are on the host right now (for ``cp`` of a stopped container: a bind-type
        volume that is not mounted is its device)."""
        path = self.mountpoint(name)
        try:
            v = self.get(name)
        except NotFound:
            return path
        o = v.options
        if v.needs_mount and "bind" in o.get("o", "").split(",") and not is_mounted(path):
            return o.get("device") or path
        return path


class lock:
    """An exclusive flock on a volume's directory (mounting, copy-up), released on exit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> lock:
        import fcntl

        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # releases the lock


def match_labels(v: Volume, filters: list[str]) -> bool:
    """Docker's ``label=KEY``/``label=KEY=VALUE`` (all must match) and ``label!=...`` (none may match)."""
    for f in filters:
        neg = f.startswith("!")
        k, eq, val = f.lstrip("!").partition("=")
        hit = k in v.labels and (not eq or v.labels[k] == val)
        if hit == neg:
            return False
    return True


def disk_usage(path: str) -> int:
    """Bytes held by the files under ``path`` (hard links counted once), as Docker's volume size."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def inspect_dict(vs: VolumeStore, v: Volume) -> dict[str, Any]:
    """``docker volume inspect`` shape (Engine API ``Volume``)."""
    return {"CreatedAt": rfc3339(v.created), "Driver": v.driver, "Labels": dict(v.labels),
            "Mountpoint": vs.mountpoint(v.name), "Name": v.name,
            "Options": dict(v.options) if v.options or not v.anonymous else None,
            "Scope": "local"}
