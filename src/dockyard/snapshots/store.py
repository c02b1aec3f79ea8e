"""The snapshot store: image layers unpacked once, each into its own directory, stacked by overlayfs.

Vocabulary (see ``dockyard.ids``): a layer tar's *diff_id* is the digest of its uncompressed bytes; the *chain_id*
of a layer names the whole stack below it (``chain = sha256(parent_chain + " " + diff_id)``; the base layer's
chain is its diff_id). Two images that share their first layers share those snapshots.

Lifecycle, for an image with layers L1 (base) .. L3::

    ss = SnapshotStore(store)
    s1 = ss.apply_layer(None, open_blob(L1), expected_diff_id=d1)
    s2 = ss.apply_layer(s1.chain_id, open_blob(L2), expected_diff_id=d2)
    s3 = ss.apply_layer(s2.chain_id, open_blob(L3), expected_diff_id=d3)
    mounts = rootfs_mounts(ss.lowerdirs(s3.chain_id), upper, work, "/run/.../rootfs")  # -> runtime
    ...
    ss.gc(keep={chain IDs of every image still present})

On disk, ``snapshots/<first 16 hex of chain_id>/fs`` is one layer's own files in overlayfs format (whiteouts are 0/0
character devices, opaque directories carry ``trusted.overlay.opaque=y``); the ``snapshots`` table holds
chain_id -> (parent, diff_id, size). A layer is extracted into ``tmp/snap-*`` first and renamed into place inside
the transaction that inserts its row, so a snapshot directory is complete whenever it is visible and a ``kill -9``
leaves at most a staging directory, which ``gc`` removes. Applying holds a shared lock on ``snapshots/.lock``;
``remove`` and ``gc`` hold it exclusively, so a parent cannot vanish under a layer being applied on top of it.
Neither may be called inside a ``store.write()`` transaction.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from collections import namedtuple
TYPE_CHECKING = False

from dockyard.errors import Conflict, CorruptContent, InvalidArgument, NotFound, from_oserror
from dockyard.fsutil import fsync_dir, rmtree
from dockyard.ids import sha256_digest, validate_digest
from dockyard.oci.mounts import Mount

if TYPE_CHECKING:
    from typing import BinaryIO

    from dockyard.state.db import Store

_STAGING_PREFIX = "snap-"
_GC_PREFIX = "gc-snap-"
_EMPTY = "empty"
_PAGE = 4096


class Snapshot(namedtuple("Snapshot", "chain_id parent diff_id size path")):
    """One unpacked layer: ``size`` counts file data and symlink targets of this layer alone; ``path`` is the
    layer's own directory (an overlay lowerdir)."""

    __slots__ = ()


def chain_id_of(parent: str | None, diff_id: str) -> str:
    return diff_id if parent is None else sha256_digest(f"{parent} {diff_id}".encode())


BACKENDS = ("erofs", "dir")


def default_backend() -> str:
    """``$DOCKYARD_SNAPSHOTTER`` (``erofs`` or ``dir``) if set, else ``erofs`` where the host can mount layer
    images (``erofs.unavailable()`` is None), else ``dir``."""
    v = os.environ.get("DOCKYARD_SNAPSHOTTER")
    if v:
        if v not in BACKENDS:
            raise InvalidArgument(f"DOCKYARD_SNAPSHOTTER must be one of {', '.join(BACKENDS)}, not {v!r}")
        return v
    from dockyard import rootless

    if rootless.active():  # a user namespace may not mount EROFS (a block or file-backed fs): unpacked dirs
        return "dir"
    from dockyard.snapshots.erofs import unavailable

    return "erofs" if unavailable() is None else "dir"


class SnapshotStore:
    """The snapshot store of one state root; implements ``snapshotter.Snapshotter``.

    ``backend`` chooses how *new* layers are kept (``erofs``: one image file each; ``dir``: an unpacked
    directory); default ``default_backend()``. Reading works on both kinds, so a store may hold both."""

    def __init__(self, store: Store, backend: str | None = None) -> None:
        self.store = store
        self.dir = store.path("snapshots")
        if backend is not None and backend not in BACKENDS:
            raise InvalidArgument(f"unknown snapshotter {backend!r}")
        self._backend = backend

    @property
    def backend(self) -> str:
        if self._backend is None:
            self._backend = default_backend()
            if self._backend == "erofs" and not os.environ.get("DOCKYARD_SNAPSHOTTER"):
                from dockyard.snapshots.erofs import root_can_mount

                if not root_can_mount(self.dir):  # e.g. a state root on tmpfs: unpacked directories
                    self._backend = "dir"
        return self._backend

    # -- paths ------------------------------------------------------------------------------------------------

    def _dir_of(self, chain_id: str) -> str:
        return os.path.join(self.dir, chain_id[7:23])

    def fs_path(self, chain_id: str) -> str:
        return os.path.join(self._dir_of(chain_id), "fs")

    def empty_dir(self) -> str:
        """An always-empty directory: the lowerdir of a container from ``scratch``."""
        p = os.path.join(self.dir, _EMPTY)
        if not os.path.isdir(p):
            os.makedirs(self.dir, mode=0o711, exist_ok=True)
            try:
                os.mkdir(p, 0o755)
                os.chmod(p, 0o755)
            except FileExistsError:
                pass
        return p

    # -- queries ----------------------------------------------------------------------------------------------

    def _row(self, r: object) -> Snapshot:
        chain, parent, diff_id, size = r  # type: ignore[misc]
        return Snapshot(chain, parent, diff_id, size, self.fs_path(chain))

    def get(self, chain_id: str) -> Snapshot | None:
        rows = self.store.query("SELECT chain_id, parent, diff_id, size FROM snapshots WHERE chain_id=?",
                                (chain_id,))
        return self._row(rows[0]) if rows else None

    def list(self) -> list[Snapshot]:
        return [self._row(r) for r in self.store.query("SELECT chain_id, parent, diff_id, size FROM snapshots")]

    def top_of(self, diff_ids: list[str]) -> str | None:
        """The chain ID of a stack of layers, found through the snapshot rows (parent + diff_id) rather than
        computed: no hashing on the way to starting a container. NotFound if a layer is not unpacked."""
        cur: str | None = None
        for d in diff_ids:
            rows = self.store.query("SELECT chain_id FROM snapshots WHERE diff_id=? AND parent IS ?", (d, cur))
            if not rows:
                raise NotFound(f"snapshot of layer {d} not found")
            cur = rows[0]["chain_id"]
        return cur

    def lowerdirs(self, chain_id: str | None) -> list[str]:
        """The fs directories of the stack ending at ``chain_id``, topmost first; [] for None (scratch)."""
        out: list[str] = []
        cur = chain_id
        while cur is not None:
            s = self.get(cur)
            if s is None:
                raise NotFound(f"snapshot {cur} not found")
            out.append(s.path)
            cur = s.parent
        return out

    def rootfs_mounts(self, chain_id: str | None, upperdir: str | None, workdir: str | None,
                      target: str) -> list[Mount]:
        """The mounts that make ``target`` the root of a container on snapshot ``chain_id``, in order: first one
        ``erofs`` mount per layer kept as an image (shared: skip it when its target is already a mount point),
        then the overlay. Apply them under ``mounts_lock()``; undo them with ``release_root``."""
        from dockyard.snapshots.erofs import layer_image

        lowers = self.lowerdirs(chain_id)
        layers = []
        for d in lowers:
            img = layer_image(os.path.dirname(d))
            if img is not None:
                layers.append(Mount("erofs", img, d, ("ro",)))
        return [*layers, *rootfs_mounts(lowers, upperdir, workdir, target, empty_dir=self.empty_dir())]

    def mounts_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while mounting or releasing layer images (see ``erofs``)."""
        from dockyard.snapshots.erofs import mounts_lock

        os.makedirs(self.dir, mode=0o711, exist_ok=True)
        return mounts_lock(self.dir)

    def mount_layers(self, chain_id: str | None) -> list[str]:
        """Mount the layer images of the stack ending at ``chain_id``; returns its lowerdirs, topmost first.
        The caller holds ``mounts_lock()`` and later calls ``release``."""
        from dockyard.snapshots.erofs import mount_layer

        for m in self.rootfs_mounts(chain_id, None, None, os.devnull):
            if m.type == "erofs" and not os.path.ismount(m.target):
                mount_layer(m.source, m.target)
        return self.lowerdirs(chain_id)

    @contextlib.contextmanager
    def mounted(self, chain_id: str | None) -> Iterator[list[str]]:
        """The lowerdirs of ``chain_id``, readable inside the ``with`` (layer images mounted, released after)."""
        with self.mounts_lock():
            dirs = self.mount_layers(chain_id)
        try:
            yield dirs
        finally:
            from dockyard.snapshots.erofs import release

            with self.mounts_lock():
                release(dirs)

    # -- applying layers --------------------------------------------------------------------------------------

    def apply_layer(self, parent: str | None, stream: BinaryIO, *, expected_diff_id: str | None = None,
                    allow_devices: bool = True) -> Snapshot:
        """Unpack a layer tar (plain, gzip, zstd, bzip2 or xz) on top of snapshot ``parent``.

        If ``expected_diff_id`` is given and the snapshot already exists, the stream is not read at all.
        Raises CorruptContent if the tar's diff_id differs from ``expected_diff_id``, Unsafe for entries that
        would leave the layer directory (or device nodes when ``allow_devices`` is false)."""
        if parent is not None:
            validate_digest(parent)
        if expected_diff_id is not None:
            validate_digest(expected_diff_id)
            known = self.get(chain_id_of(parent, expected_diff_id))
            if known is not None and os.path.isdir(known.path):
                return known
        if parent is not None and self.get(parent) is None:
            raise NotFound(f"snapshot {parent} not found")
        try:
            return self._apply(parent, stream, expected_diff_id, allow_devices)
        except OSError as e:
            raise from_oserror("cannot apply layer", e) from None

    def _apply(self, parent: str | None, stream: BinaryIO, expected_diff_id: str | None,
               allow_devices: bool) -> Snapshot:
        os.makedirs(self.store.tmp, mode=0o700, exist_ok=True)
        with self._lock(exclusive=False):
            import tempfile

            staging = tempfile.mkdtemp(dir=self.store.tmp, prefix=_STAGING_PREFIX)
            try:
                diff_id, size = self._materialize(stream, staging, allow_devices)
                if expected_diff_id is not None and diff_id != expected_diff_id:
                    raise CorruptContent(f"layer content mismatch: expected diff_id {expected_diff_id}, "
                                         f"got {diff_id}")
                chain = chain_id_of(parent, diff_id)
                final = self._dir_of(chain)
                os.makedirs(self.dir, mode=0o711, exist_ok=True)
                with self.store.write() as cur:
                    if parent is not None and not cur.execute(
                            "SELECT 1 FROM snapshots WHERE chain_id=?", (parent,)).fetchone():
                        raise NotFound(f"snapshot {parent} not found")
                    try:
                        os.rename(staging, final)
                    except OSError as e:
                        # another process applied the same layer first: its directory is complete, keep it
                        if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                            raise from_oserror(f"cannot store snapshot {chain}", e) from None
                    else:
                        fsync_dir(self.dir)
                    cur.execute("INSERT OR IGNORE INTO snapshots (chain_id, parent, diff_id, size) "
                                "VALUES (?, ?, ?, ?)", (chain, parent, diff_id, size))
            finally:
                if os.path.lexists(staging):
                    rmtree(staging)
        s = self.get(chain)
        assert s is not None
        return s

    def _materialize(self, stream: BinaryIO, staging: str, allow_devices: bool) -> tuple[str, int]:
        """Store the layer read from ``stream`` in ``staging`` (``fs/`` unpacked, or ``layer.erofs`` plus an
        empty ``fs/`` mount point); returns (diff_id, size)."""
        if self.backend == "erofs":
            from dockyard.snapshots import erofs

            blob = _plain_blob(stream) if allow_devices and erofs.index_tool() else None
            if blob is not None:
                got = self._index(stream, blob, staging)
                if got is not None:
                    return got
                stream.seek(0)
            start = stream.tell() if stream.seekable() else None
            try:
                with erofs.private_tmpfs(staging) as tmp_fd:
                    diff_id, size = self._extract(stream, tmp_fd, allow_devices, sync=False)
                    erofs.make_image(os.path.join(staging, "tree"), os.path.join(staging, erofs.IMAGE))
                os.mkdir(os.path.join(staging, "fs"), 0o755)
                return diff_id, size
            except (OSError, erofs.ImageFailed) as e:
                # larger than memory allows (ENOSPC), or a tree mkfs.erofs 1.5 cannot take (it crashes on
                # thousands of nested directories): this layer is kept unpacked on disk instead
                if start is None or (isinstance(e, OSError) and e.errno != errno.ENOSPC):
                    raise
                stream.seek(start)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(staging, erofs.IMAGE))
        dest = os.path.join(staging, "fs")
        os.mkdir(dest, 0o755)
        root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return self._extract(stream, root_fd, allow_devices, sync=True)
        finally:
            os.close(root_fd)

    @staticmethod
    def _index(stream: BinaryIO, blob: str, staging: str) -> tuple[str, int] | None:
        """Keep the uncompressed layer ``blob`` (a content-store file, read through ``stream``) as the layer's data:
        a hard link to it plus an EROFS index image over it. None when the tar is not plain (``tarindex.scan``) or
        cannot be indexed: the caller extracts it instead (and refuses what the extractor refuses)."""
        import hashlib
        import tarfile
        import threading

        from dockyard.snapshots import erofs
        from dockyard.snapshots.tarindex import scan

        tar = os.path.join(staging, erofs.TAR)
        try:
            os.link(blob, tar)
        except OSError:
            return None  # another file system: no in-place data
        try:
            if os.stat(tar).st_ino != os.fstat(stream.fileno()).st_ino:
                raise erofs.ImageFailed("blob replaced")
            # the diff_id is hashed in a thread (hashlib lets go of the GIL) while scan seeks from header to header
            digest: list[str] = []

            def hash_file() -> None:
                with open(tar, "rb") as f:
                    digest.append("sha256:" + hashlib.file_digest(f, "sha256").hexdigest())

            t = threading.Thread(target=hash_file, name="layer-hash", daemon=True)
            t.start()
            try:
                try:
                    tf = tarfile.open(fileobj=stream, mode="r:", encoding="utf-8", errors="surrogateescape")
                except tarfile.TarError:
                    return None
                size = scan(tf, allow_devices=True)  # a tar cut short in a file's data: ReadError, not plain
            finally:
                t.join()
            if size is None or not digest:
                return None
            erofs.make_index_image(tar, os.path.join(staging, erofs.IMAGE))
            os.mkdir(os.path.join(staging, "fs"), 0o755)
            tar = ""  # kept
            return digest[0], size
        except erofs.ImageFailed:
            return None
        finally:
            if tar:
                for name in (erofs.TAR, erofs.IMAGE):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(staging, name))

    @staticmethod
    def _extract(stream: BinaryIO, root_fd: int, allow_devices: bool, *, sync: bool) -> tuple[str, int]:
        import tarfile

        from dockyard.snapshots.compression import open_layer
        from dockyard.snapshots.extract import Extractor

        os.fchmod(root_fd, 0o755)  # whatever the umask: the root of every container is 0755
        reader = open_layer(stream)
        try:
            ex = Extractor(root_fd, allow_devices=allow_devices)
            try:
                tf = tarfile.open(fileobj=reader, mode="r|", encoding="utf-8", errors="surrogateescape",
                                  bufsize=1 << 16)
            except tarfile.TarError as e:
                reader.drain()
                if reader.size:
                    raise CorruptContent(f"invalid layer archive: {e}") from None
                tf = None  # a zero-byte stream is an empty layer, as for Go's archive/tar
            if tf is not None:
                ex.extract(tf)
            reader.drain()
        finally:
            reader.close()
        if sync:
            _syncfs(root_fd)
        return reader.digest(), ex.size

    # -- removal ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, exclusive: bool) -> Iterator[None]:
        os.makedirs(self.dir, mode=0o711, exist_ok=True)
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def _retire(self, chain_id: str) -> str | None:
        """Move a snapshot directory out of sight (atomically); the caller deletes it after committing."""
        src = self._dir_of(chain_id)
        from dockyard.snapshots.erofs import unmount_all_under

        unmount_all_under(src)
        dst = os.path.join(self.store.tmp, _GC_PREFIX + os.path.basename(src) + "-" + os.urandom(4).hex())
        try:
            os.rename(src, dst)
        except FileNotFoundError:
            return None
        return dst

    def remove(self, chain_id: str) -> None:
        """Delete one snapshot; Conflict if another snapshot is stacked on it. A missing snapshot is fine."""
        os.makedirs(self.store.tmp, mode=0o700, exist_ok=True)
        with self._lock(exclusive=True):
            with self.store.write() as cur:
                child = cur.execute("SELECT chain_id FROM snapshots WHERE parent=? LIMIT 1",
                                    (chain_id,)).fetchone()
                if child:
                    raise Conflict(f"snapshot {chain_id} is in use: it is the parent of {child[0]}")
                retired = self._retire(chain_id)
                cur.execute("DELETE FROM snapshots WHERE chain_id=?", (chain_id,))
                if retired:
                    fsync_dir(self.dir)
            if retired:
                rmtree(retired)

    def gc(self, keep: set[str]) -> list[str]:
        """Remove every snapshot that is neither in ``keep`` nor below one that is, every snapshot directory
        without a row (a crash between rename and commit) and every stale staging directory.

        Returns the chain IDs removed."""
        os.makedirs(self.store.tmp, mode=0o700, exist_ok=True)
        removed: list[str] = []
        retired: list[str] = []
        with self._lock(exclusive=True):
            with self.store.write() as cur:
                rows = cur.execute("SELECT chain_id, parent FROM snapshots").fetchall()
                parents = {r[0]: r[1] for r in rows}
                live: set[str] = set()
                for c in keep:
                    while c is not None and c in parents and c not in live:
                        live.add(c)
                        c = parents[c]
                for c in parents:
                    if c not in live:
                        d = self._retire(c)
                        if d:
                            retired.append(d)
                        cur.execute("DELETE FROM snapshots WHERE chain_id=?", (c,))
                        removed.append(c)
                known = {self._dir_of(c) for c in live}
                for name in _listdir(self.dir):
                    p = os.path.join(self.dir, name)
                    if len(name) == 16 and p not in known and os.path.isdir(p):
                        from dockyard.snapshots.erofs import unmount_all_under

                        unmount_all_under(p)
                        dst = os.path.join(self.store.tmp, _GC_PREFIX + name + "-" + os.urandom(4).hex())
                        os.rename(p, dst)
                        retired.append(dst)
                if retired:
                    fsync_dir(self.dir)
            # no apply is running (we hold the lock exclusively): every staging directory is stale
            for name in _listdir(self.store.tmp):
                if name.startswith((_STAGING_PREFIX, _GC_PREFIX)):
                    from dockyard.snapshots.erofs import unmount_all_under

                    unmount_all_under(os.path.join(self.store.tmp, name))
                    rmtree(os.path.join(self.store.tmp, name))
        return removed


def _plain_blob(stream: BinaryIO) -> str | None:
    """The path of the file ``stream`` reads, if it is an uncompressed tar read from its start, else None."""
    name = getattr(stream, "name", None)
    if not isinstance(name, str) or not os.path.isabs(name) or not stream.seekable() or stream.tell() != 0:
        return None
    from dockyard.snapshots.compression import detect

    head = stream.read(8)
    stream.seek(0)
    return name if detect(head) == "tar" and len(head) == 8 else None


def _listdir(p: str) -> list[str]:
    try:
        return os.listdir(p)
    except FileNotFoundError:
        return []


_libc = None


def _syncfs(fd: int) -> None:
    """Flush the file system holding ``fd`` (one syscall instead of an fsync per extracted file)."""
    global _libc
    import ctypes

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.syncfs(fd) != 0:
        e = ctypes.get_errno()
        raise from_oserror("cannot sync snapshot", OSError(e, os.strerror(e)))


# -- mounts -----------------------------------------------------------------------------------------------------

OVERLAY_OPTIONS = ("index=off", "redirect_dir=off", "metacopy=off")
# in a user namespace overlay refuses redirect_dir=off (nofollow: no redirect is made or followed either) and keeps
# its markers in user.* xattrs (see extract.OPAQUE_XATTR)
ROOTLESS_OVERLAY_OPTIONS = ("userxattr", "index=off", "redirect_dir=nofollow", "metacopy=off")


def rootfs_mounts(lowerdirs: list[str], upperdir: str | None, workdir: str | None, target: str, *,
                  empty_dir: str | None = None) -> list[Mount]:
    """The mount(s) that make ``target`` a container's root file system.

    ``lowerdirs`` are layer directories topmost first (``SnapshotStore.lowerdirs``). With an ``upperdir`` (and its
    ``workdir``, on the same file system) the result is a writable overlay whose changes land in ``upperdir``;
    without one it is read-only. Overlay needs at least one lower directory (two without an upper), so a scratch
    image uses ``empty_dir`` (default: ``<dirname(upperdir)>/empty``, created) and a one-layer read-only root is a
    read-only bind mount. ``index=off``, ``redirect_dir=off`` and ``metacopy=off`` keep the upper directory a plain
    diff that ``write_layer`` can turn into a layer."""
    for p in [*lowerdirs, upperdir or "", workdir or ""]:
        if "," in p or ":" in p:
            raise InvalidArgument(f"overlay cannot use a path containing ',' or ':': {p}")
    lowers = list(lowerdirs)
    if not lowers:
        if empty_dir is None:
            empty_dir = os.path.join(os.path.dirname((upperdir or target).rstrip("/")), "empty")
            os.makedirs(empty_dir, mode=0o755, exist_ok=True)
        lowers = [empty_dir]
    from dockyard import rootless

    options = ROOTLESS_OVERLAY_OPTIONS if rootless.active() else OVERLAY_OPTIONS
    if upperdir is None:
        if len(lowers) == 1:
            return [Mount("bind", lowers[0], target, ("rbind", "ro"))]
        opts = ("ro", "lowerdir=" + ":".join(lowers), *options)
    else:
        if workdir is None:
            raise InvalidArgument("an overlay with an upperdir needs a workdir")
        opts = ("lowerdir=" + ":".join(lowers), f"upperdir={upperdir}", f"workdir={workdir}", *options)
    if len(",".join(opts)) >= _PAGE:
        raise InvalidArgument(f"too many layers ({len(lowers)}) for one overlay mount: "
                              f"its options exceed {_PAGE - 1} bytes")
    if options is ROOTLESS_OVERLAY_OPTIONS and rootless.overlay_driver(os.path.dirname(os.path.dirname(
            lowers[0].rstrip("/")))) == rootless.FUSE_OVERLAYFS:  # the kernel refuses overlay in the user namespace
        return [Mount(rootless.FUSE_OVERLAYFS, rootless.FUSE_OVERLAYFS, target, rootless.fuse_overlay_options(opts))]
    return [Mount("overlay", "overlay", target, opts)]
