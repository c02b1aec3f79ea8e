"""The crash-safe metadata store: one SQLite database in WAL mode, shared by every dockyard process.

There is no daemon: every CLI command, every container monitor and the optional API service open the same database
file and change it only inside transactions (``with store.write() as cur: ...``, which is ``BEGIN IMMEDIATE``), so
a ``kill -9`` at any instant leaves either the old or the new state, never a half one. Files that metadata points
at (blobs, snapshots) are written *before* the transaction that makes them visible; a crash in between leaves only
unreferenced files, which garbage collection removes.

Layout of a root directory (``--root``, ``$DOCKYARD_ROOT``, default ``/var/lib/dockyard``)::

    dockyard.db            this database
    content/blobs/sha256/  content-addressed blobs (content.store)
    snapshots/<hex>/       unpacked layers, keyed by chain ID (snapshots.store)
    containers/<id>/       per-container bundle, upper dir, log, monitor files
    volumes/<name>/_data   named volumes
    tmp/                   staging area on the same filesystem, for atomic renames
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # the module sqlite3 wraps: its wrapper imports datetime for adapters never used here
import contextlib
import os
import stat
from _thread import _local as _thread_local  # what threading.local is, without importing threading
from collections.abc import Iterator

IntegrityError = sqlite3.IntegrityError  # for callers: `import sqlite3` would import datetime
DEFAULT_ROOT = "/var/lib/dockyard"
# Space held back for the store itself: when the filesystem is (nearly) full, a container or a build having
# filled it, this file is released so that reading the store (SQLite recreates its -wal and -shm files when a
# database is opened afresh) and removing things (a write transaction, then the files) still work. It is made
# again once there is room.
RESERVE = "reserve"
RESERVE_SIZE = 4 << 20

# Each entry is applied once, in order; user_version records how many ran. Append, never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY,              -- image ID = config digest
        config TEXT NOT NULL,             -- the config blob, as stored (JSON text)
        manifest_digest TEXT,             -- digest of the manifest we hold for it
        layers TEXT NOT NULL,             -- JSON list of {digest, diff_id, size, media_type}
        size INTEGER NOT NULL,            -- sum of uncompressed layer sizes
        created TEXT NOT NULL,            -- config.created (RFC 3339)
        added REAL NOT NULL               -- when it entered this store (unix time)
    );
    CREATE TABLE tags (
        ref TEXT PRIMARY KEY,             -- fully normalised, e.g. docker.io/library/busybox:latest
        image_id TEXT NOT NULL REFERENCES images(id)
    );
    CREATE INDEX tags_image ON tags(image_id);
    CREATE TABLE repo_digests (
        ref TEXT PRIMARY KEY,             -- repo@sha256:... (manifest digest)
        image_id TEXT NOT NULL REFERENCES images(id)
    );
    CREATE TABLE snapshots (
        chain_id TEXT PRIMARY KEY,
        parent TEXT,                      -- chain ID of the layer below, NULL for the base layer
        diff_id TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        image_id TEXT,                    -- NULL only for containers whose image was force-removed
        image_ref TEXT NOT NULL,          -- what the user typed, as docker ps shows it
        state TEXT NOT NULL,              -- created|running|paused|restarting|exited|removing|dead
        config TEXT NOT NULL,             -- JSON: the create options (engine.options.ContainerSpec)
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        pid INTEGER,                      -- the container's init process, as seen from the host
        monitor_pid INTEGER,
        exit_code INTEGER,
        oom_killed INTEGER NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        restart_count INTEGER NOT NULL DEFAULT 0,
        labels TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX containers_image ON containers(image_id);
    """,
    # 1: pid start times guard against pid reuse when judging whether a container still runs
    """
    ALTER TABLE containers ADD COLUMN pid_start INTEGER;
    ALTER TABLE containers ADD COLUMN monitor_start INTEGER;
    """,
    # 2: the image an image was committed/built from (docker's Parent; rmi's "dependent child images")
    """
    ALTER TABLE images ADD COLUMN parent TEXT;
    CREATE INDEX images_parent ON images(parent);
    """,
    # 3: named and anonymous volumes (volumes.store); data lives at volumes/<name>/_data
    """
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL DEFAULT 'local',
        options TEXT NOT NULL DEFAULT '{}',   -- JSON: the local driver's type/device/o
        labels TEXT NOT NULL DEFAULT '{}',    -- JSON
        created REAL NOT NULL,
        anonymous INTEGER NOT NULL DEFAULT 0  -- 1: made for a container (-v /path, VOLUME), removed by rm -v
    );
    """,
    # 4: networks (network.store): bridges, their IPAM allocations (endpoints) and published ports. The UNIQUE
    # constraints make a double allocation impossible even if two writers raced past the allocator's check.
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        driver TEXT NOT NULL DEFAULT 'bridge',
        bridge TEXT NOT NULL UNIQUE,          -- the Linux bridge's name
        subnet TEXT NOT NULL,                 -- CIDR, e.g. 172.18.0.0/16
        gateway TEXT NOT NULL,                -- the bridge's address
        ip_range TEXT NOT NULL DEFAULT '',    -- CIDR inside subnet that container addresses come from
        internal INTEGER NOT NULL DEFAULT 0,
        labels TEXT NOT NULL DEFAULT '{}',
        options TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE TABLE endpoints (
        network_id TEXT NOT NULL REFERENCES networks(id),
        container_id TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',   -- JSON: --network-alias / connect --alias
        ip_request TEXT NOT NULL DEFAULT '',  -- --ip
        ip TEXT,                              -- allocated while the container runs, NULL otherwise
        mac TEXT,
        veth TEXT,                            -- host end of the container's veth pair
        connected INTEGER NOT NULL DEFAULT 0, -- 1: added by network connect (kept across stops)
        PRIMARY KEY (network_id, container_id),
        UNIQUE (network_id, ip)
    );
    CREATE INDEX endpoints_container ON endpoints(container_id);
    CREATE TABLE ports (
        host_port INTEGER NOT NULL,
        proto TEXT NOT NULL,                  -- tcp | udp
        host_ip TEXT NOT NULL,                -- '' = every address
        container_id TEXT NOT NULL,
        container_port INTEGER NOT NULL,
        network_id TEXT NOT NULL,
        PRIMARY KEY (host_port, proto)
    );
    CREATE INDEX ports_container ON ports(container_id);
    """,
    # 5: finding a stack's chain ID through the snapshot rows (SnapshotStore.top_of) when starting a container
    """
    CREATE INDEX IF NOT EXISTS snapshots_diff ON snapshots(diff_id);
    """,
    # 6: whether dockyard made a network's bridge: network rm deletes only those, never an adopted host bridge.
    # Older rows: the names dockyard generates were its own.
    """
    ALTER TABLE networks ADD COLUMN own_bridge INTEGER NOT NULL DEFAULT 0;
    UPDATE networks SET own_bridge=1 WHERE bridge LIKE 'dy-%' OR bridge LIKE 'dyd%' OR bridge='dockyard0';
    """,
    # 7: the events log (engine.events): every state change, bounded (the last 10,000 and 7 days), read by
    # ``dockyard events`` and GET /events; seq orders them and is what a follower polls.
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time_nano INTEGER NOT NULL,           -- unix time in nanoseconds
        type TEXT NOT NULL,                   -- container, image, volume, network
        action TEXT NOT NULL,                 -- create, start, die, exec_start: sh, tag...
        actor TEXT NOT NULL,                  -- the object's ID (or name, for volumes)
        attributes TEXT NOT NULL DEFAULT '{}' -- JSON: name, image, exitCode...
    );
    CREATE INDEX events_time ON events(time_nano);
    """,
    # 8: image indexes (multi-platform images): an index is an images row whose ``index_manifest`` holds the OCI
    # index JSON (its digest is the row's id, config '{}', no layers); index_members ties it to the images of its
    # platforms (a member cannot be removed while an index lists it).
    """
    ALTER TABLE images ADD COLUMN index_manifest TEXT;
    CREATE TABLE index_members (
        index_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        image_id TEXT NOT NULL REFERENCES images(id),
        platform TEXT NOT NULL,               -- os/arch[/variant]
        PRIMARY KEY (index_id, image_id)
    );
    CREATE INDEX index_members_image ON index_members(image_id);
    """,
    # 9: ``ps`` (running containers only) reads the rows of running containers, not the whole table, newest first
    """
    CREATE INDEX IF NOT EXISTS containers_state ON containers(state, created);
    """,
]


def prefix_range(prefix: str) -> tuple[str, str]:
    """``(lo, hi)`` such that ``col >= lo AND col < hi`` holds exactly for the strings that start with ``prefix``
    (SQLite's BINARY collation orders UTF-8 text as its code points). Unlike ``col LIKE 'prefix%'`` (which
    ignores case, so never uses an index, and takes ``_`` and ``%`` in the prefix as wildcards) the range is a
    search of the column's index: an ID prefix or a repository's tags cost the same in a store of 1,000 rows as
    in one of 10."""
    if not prefix:
        return "", "\U0010ffff"
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def translate(e: sqlite3.DatabaseError, path: str) -> Exception:
    """The user's one line for SQLite's failures that are not the engine's bug: a damaged file, a full disk.
    Other errors (constraints, "locked") are returned as they are, for the caller's own handling."""
    from dockyard.errors import NoSpace, StoreDamaged

    msg = str(e)
    low = msg.lower()
    if "disk is full" in low:
        return NoSpace(f"no space left on device: cannot write the store's database {path}")
    if type(e) is sqlite3.DatabaseError or "malformed" in low or "not a database" in low or "disk i/o" in low:
        return StoreDamaged(f"the store's database {path} is damaged ({msg}): restore it (and its -wal file) from "
                            "a backup, or move the three dockyard.db* files away to start an empty store")
    return e


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: object = (), /) -> _Cursor:  # type: ignore[override]
        try:
            return super().execute(sql, parameters)  # type: ignore[arg-type,return-value]
        except sqlite3.DatabaseError as e:
            raise translate(e, self.connection.path) from None  # type: ignore[attr-defined]


class _Connection(sqlite3.Connection):
    """A connection whose statements report a damaged database or a full disk as one line (StoreDamaged,
    SystemFailure), never as an internal error."""

    path = ""

    def cursor(self, factory: type = _Cursor) -> _Cursor:  # type: ignore[override]
        return super().cursor(factory)  # type: ignore[return-value]

    def execute(self, sql: str, parameters: object = (), /) -> _Cursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: object, /) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().executemany(sql, seq)  # type: ignore[arg-type]
        except sqlite3.DatabaseError as e:
            raise translate(e, self.path) from None


class Store:
    """A handle on one root directory and its database. Cheap to create; open one per process."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._local = _thread_local()

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def tmp(self) -> str:
        return self.path("tmp")

    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            self.ensure_root()
            path = self.path("dockyard.db")
            self.make_room()
            if os.stat(path).st_size == 0:  # a new database is made whole (ensure_root): this one lost its data
                from dockyard.errors import StoreDamaged

                raise StoreDamaged(f"the store's database {path} is empty (0 bytes, truncated): restore it (and "
                                   "its -wal file) from a backup, or move the three dockyard.db* files away to "
                                   "start an empty store")
            c = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False,
                                factory=_Connection)
            c.path = path  # type: ignore[attr-defined]
            try:
                c.execute("PRAGMA busy_timeout=60000")
                self._wal(c)
                c.execute("PRAGMA synchronous=NORMAL")
                c.execute("PRAGMA foreign_keys=ON")
                c.row_factory = sqlite3.Row
                self._migrate(c)
            except BaseException:
                c.close()
                raise
            self._local.conn = c
        return c

    def ensure_root(self) -> None:
        """Make the root directory (0700: only root may enter it; the store holds containers' environments and
        logs) and its tmp/, and the database file (0600: SQLite gives its -wal and -shm files the same mode).

        A root made by an older dockyard (0711, files 0644) is narrowed once, here."""
        try:
            os.mkdir(self.root, 0o700)
        except FileExistsError:
            if os.stat(self.root).st_mode & 0o077:
                narrow(self.root)
        except FileNotFoundError:
            os.makedirs(self.root, 0o700)
        os.makedirs(self.tmp, mode=0o700, exist_ok=True)
        db = self.path("dockyard.db")
        if not os.path.exists(db):
            self._create_db(db)
        if not os.path.exists(self.path(RESERVE)):
            self._make_reserve()

    def _free(self) -> int:
        try:
            st = os.statvfs(self.root)
        except OSError:
            return 1 << 62
        return st.f_bavail * st.f_frsize

    def _make_reserve(self) -> None:
        """Hold RESERVE_SIZE bytes in ``reserve`` when there is plenty of room (a best effort)."""
        if self._free() < 4 * RESERVE_SIZE:
            return
        tmp = os.path.join(self.tmp, f"reserve-{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, RESERVE_SIZE)
            finally:
                os.close(fd)
            os.rename(tmp, self.path(RESERVE))
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def make_room(self) -> None:
        """When the filesystem is nearly full, release the reserve so that the store can still be opened,
        read and written (to record an exit, to remove what fills the disk). One statvfs when there is room."""
        if self._free() < RESERVE_SIZE // 2:
            try:
                os.unlink(self.path(RESERVE))
            except FileNotFoundError:
                pass

    def _create_db(self, db: str) -> None:
        """Make a new database whole (a WAL header page) in tmp/ and link it into place, so that the database
        file never exists empty: an empty one found later is damage, never silently taken for a new store.
        Concurrent first openers race harmlessly: link() does not replace, the loser uses the winner's."""
        tmp = os.path.join(self.tmp, f"new-db-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            os.close(os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            c = sqlite3.connect(tmp, isolation_level=None)
            try:
                c.execute("PRAGMA journal_mode=WAL")
            finally:
                c.close()
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, db)
            except FileExistsError:
                pass
        finally:
            for name in (tmp, tmp + "-wal", tmp + "-shm"):
                try:
                    os.unlink(name)
                except FileNotFoundError:
                    pass

    @staticmethod
    def _begin(c: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, waiting for other writers in steps of about a millisecond. SQLite's own busy handler
        sleeps 1, 2, 5, 10... up to 100 ms at a time, which made 20 concurrent `run -d` wait for each other for
        hundreds of milliseconds; write transactions here last well under a millisecond."""
        c.execute("PRAGMA busy_timeout=0")
        try:
            try:
                c.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
            import random
            import time

            deadline = time.monotonic() + 60
            n = 0
            while True:
                try:
                    c.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as e:
                    if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                        raise
                n += 1
                time.sleep(random.uniform(0.2, 1.0) * min(1 + n // 20, 5) / 1000)
        finally:
            c.execute("PRAGMA busy_timeout=60000")

    @staticmethod
    def _wal(c: sqlite3.Connection) -> None:
        """Switch to WAL. On a new database file, concurrent first openers race for this change, and SQLite
        answers "database is locked" at once instead of waiting: retry with back-off for a bounded time."""
        import time

        deadline = time.monotonic() + 60
        delay = 0.001
        while True:
            try:
                c.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    @staticmethod
    def _migrate(c: sqlite3.Connection) -> None:
        (version,) = c.execute("PRAGMA user_version").fetchone()
        if version >= len(MIGRATIONS):
            return
        c.execute("BEGIN IMMEDIATE")
        try:
            (version,) = c.execute("PRAGMA user_version").fetchone()
            for i in range(version, len(MIGRATIONS)):
                for stmt in MIGRATIONS[i].split(";"):
                    if stmt.strip():
                        c.execute(stmt)
            c.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close this thread's connection. Call before fork(): SQLite state must not cross a fork."""
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (BEGIN IMMEDIATE: writers queue instead of deadlocking)."""
        c = self.conn()
        self.make_room()
        self._begin(c)
        try:
            yield c.cursor()
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        cur = self.conn().execute(sql, args)
        try:
            return cur.fetchall()
        except sqlite3.DatabaseError as e:
            raise translate(e, self.path("dockyard.db")) from None


def narrow(root: str) -> None:
    """Take a state root away from other users: the root 0700, and (should it be exposed again) what holds secrets
    0600: the database, blobs (image configs carry ENV), containers' bundles (config.json: their environment) and
    logs. Directories below keep their modes: containers never reach their files through this path."""
    os.chmod(root, 0o700)
    for name in ("dockyard.db", "dockyard.db-wal", "dockyard.db-shm"):
        _chmod(os.path.join(root, name), 0o600)
    blobs = os.path.join(root, "content", "blobs", "sha256")
    for name in _listdir(blobs):
        _chmod(os.path.join(blobs, name), 0o600)
    containers = os.path.join(root, "containers")
    for cid in _listdir(containers):
        d = os.path.join(containers, cid)
        for name in _listdir(d):
            if name == "config.json" or "-json.log" in name or name == "monitor.err":
                _chmod(os.path.join(d, name), 0o600)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _chmod(path: str, mode: int) -> None:
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):  # a symlink where a file should be: not ours to change
            os.chmod(path, mode)
    except FileNotFoundError:
        pass


def open_store(root: str | None = None) -> Store:
    return Store(root or os.environ.get("DOCKYARD_ROOT") or DEFAULT_ROOT)
