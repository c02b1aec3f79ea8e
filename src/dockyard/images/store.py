"""The image store: image records, tags and repo digests in SQLite, over the content and snapshot stores.

Vocabulary (see also ``dockyard.ids``):

- an *image* is a config blob (its digest is the *image ID*, ``sha256:<hex>``), a manifest blob and an ordered
  list of layer blobs. Each layer has a *digest* (of the blob as stored, maybe gzip) and a *diff_id* (of the
  uncompressed tar); the *chain ID* of the stack up to a layer keys its unpacked snapshot.
- a *tag* maps a normalised reference (``docker.io/library/busybox:latest``) to an image ID; a *repo digest*
  maps ``repo@sha256:<manifest digest>`` to an image ID.

Lifecycle, e.g. for ``load``::

    cs, ss, images = ContentStore(store), SnapshotStore(store), ImageStore(store)
    digest, size = cs.ingest(layer_stream)                       # 1. blobs (atomic, verified)
    snap = ss.apply_layer(None, cs.open(digest), digest)         # 2. snapshots (atomic)
    image_id, _ = images.add(config_bytes, [LayerRecord(digest, digest, size, OCI_LAYER)],
                             tags=["busybox:latest"])            # 3. ONE transaction makes it visible

``add`` checks inside its transaction that every blob and snapshot it references still exists (a concurrent
``rmi`` may have removed shared ones); if not it raises ``MissingContent`` and the caller re-runs steps 1-2
(``with_retry``). ``remove`` deletes blobs and snapshots no image references inside *its* transaction, so the two
never interleave into an image whose files are gone.
"""

from __future__ import annotations

import contextlib
import os
from collections import namedtuple
from functools import cached_property

TYPE_CHECKING = False

from dockyard import jsonc as json
from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.ids import HEX_DIGITS, chain_ids, sha256_digest
from dockyard.images import reference as refs

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any, TypeVar

    T = TypeVar("T")

    from dockyard.state.db import Store

RUNNING_STATES = ("running", "paused", "restarting")

def _hex_prefix(s: str) -> bool:
    """1 to 64 lowercase hex digits: an image ID or the start of one."""
    return 0 < len(s) <= 64 and HEX_DIGITS.issuperset(s)


class MissingContent(DockyardError):
    """A blob or snapshot an image needs vanished before the image was recorded (retry the ingest)."""


class LayerRecord(namedtuple("LayerRecord", "digest diff_id size media_type")):
    """One layer of an image as recorded: blob digest, uncompressed diff_id, blob size, media type."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "diff_id": self.diff_id, "size": self.size, "media_type": self.media_type}


class Image:
    """An image as the store knows it. ``config`` is the parsed config blob (``config["config"]`` holds Env,
    Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes, StopSignal, Labels...)."""

    def __init__(self, id: str, config_text: str, layers_text: str, size: int, created: str, added: float,
                 manifest_digest: str | None, parent: str | None = None, repo_tags: list[str] | None = None,
                 repo_digests: list[str] | None = None, tag_refs: list[str] | None = None,
                 index_manifest: str | None = None) -> None:
        self.index_manifest = index_manifest        # an image index (multi-platform): its OCI index JSON
        self.id = id                                # sha256:<hex> = config digest
        self.config_text = config_text
        self.layers_text = layers_text
        self.size = size                            # bytes of the unpacked layers
        self.created = created                      # RFC 3339, from the config
        self.added = added
        self.manifest_digest = manifest_digest
        self.parent = parent
        self.repo_tags = repo_tags if repo_tags is not None else []          # familiar: busybox:latest
        self.repo_digests = repo_digests if repo_digests is not None else []  # familiar: busybox@sha256:...
        self.tag_refs = tag_refs if tag_refs is not None else []              # normalised, as stored

    def __repr__(self) -> str:
        return f"Image({self.id!r}, tags={self.repo_tags!r})"

    @cached_property
    def config(self) -> dict[str, Any]:
        c: dict[str, Any] = json.loads(self.config_text)
        return c

    @cached_property
    def layers(self) -> list[LayerRecord]:
        return [LayerRecord(d["digest"], d["diff_id"], int(d["size"]), d["media_type"])
                for d in json.loads(self.layers_text)]

    @property
    def diff_ids(self) -> list[str]:
        return [ly.diff_id for ly in self.layers]

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def top_chain_id(self) -> str | None:
        """Chain ID of the topmost layer (the snapshot to mount as lower dirs); None for an empty image."""
        c = self.chain_ids
        return c[-1] if c else None

    @property
    def short_id(self) -> str:
        return self.id[7:19]

    @property
    def created_ts(self) -> float:
        from dockyard.timeparse import parse_rfc3339

        return parse_rfc3339(self.created)

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})

    @property
    def dangling(self) -> bool:
        return not self.repo_tags

    @property
    def is_index(self) -> bool:
        return self.index_manifest is not None

    @cached_property
    def platforms(self) -> list[str]:
        """``os/arch[/variant]`` of each manifest an index lists (one entry, the config's, for an image)."""
        if self.index_manifest is None:
            c = self.config
            return ["/".join(p for p in (c.get("os"), c.get("architecture"), c.get("variant")) if p)]
        out = []
        for m in json.loads(self.index_manifest).get("manifests") or []:
            p = m.get("platform") or {}
            out.append("/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x))
        return out


def _image_from_row(r: sqlite3.Row) -> Image:
    return Image(id=r["id"], config_text=r["config"], layers_text=r["layers"], size=r["size"],
                 created=r["created"], added=r["added"], manifest_digest=r["manifest_digest"],
                 parent=r["parent"], index_manifest=r["index_manifest"])


def with_retry(prepare_and_add: Callable[[], T], attempts: int = 4) -> T:
    """Run ``prepare_and_add`` again when a concurrent removal took content it needed (MissingContent)."""
    for i in range(attempts):
        try:
            return prepare_and_add()
        except MissingContent:
            if i == attempts - 1:
                raise
    raise AssertionError("unreachable")


class ImageStore:
    """Names -> images. All writes are single SQLite transactions; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- lookup -----------------------------------------------------------------------------------------------

    def _attach_refs(self, c: sqlite3.Connection, images: list[Image]) -> None:
        by_id = {im.id: im for im in images}
        if len(images) == 1:
            q = (images[0].id,)
            tags = c.execute("SELECT ref, image_id FROM tags WHERE image_id=?", q).fetchall()
            digs = c.execute("SELECT ref, image_id FROM repo_digests WHERE image_id=?", q).fetchall()
        else:
            tags = c.execute("SELECT ref, image_id FROM tags").fetchall()
            digs = c.execute("SELECT ref, image_id FROM repo_digests").fetchall()
        for ref, iid in sorted((r[0], r[1]) for r in tags):
            im = by_id.get(iid)
            if im is not None:
                im.tag_refs.append(ref)
                im.repo_tags.append(refs.familiar(ref))
        for ref, iid in sorted((r[0], r[1]) for r in digs):
            im = by_id.get(iid)
            if im is not None:
                im.repo_digests.append(refs.familiar(ref))

    def get(self, image_id: str) -> Image | None:
        c = self.store.conn()
        r = c.execute("SELECT * FROM images WHERE id=?", (image_id,)).fetchone()
        if r is None:
            return None
        im = _image_from_row(r)
        self._attach_refs(c, [im])
        return im

    def list(self, members: bool = False) -> list[Image]:
        """Every image, newest first, with tags and digests attached; the platform images of an index appear
        only through it (unless tagged themselves, or ``members``)."""
        c = self.store.conn()
        images = [_image_from_row(r) for r in c.execute("SELECT * FROM images").fetchall()]
        self._attach_refs(c, images)
        if not members:
            inside = {r[0] for r in c.execute("SELECT image_id FROM index_members").fetchall()}
            images = [im for im in images if im.id not in inside or im.repo_tags or im.repo_digests]
        images.sort(key=lambda im: (im.created, im.added), reverse=True)
        return images

    def lookup_id(self, s: str) -> str | None:
        """The image ID ``s`` names (ID, prefix, reference, repo@digest), or None; raises on an ambiguous prefix."""
        c = self.store.conn()
        if s.startswith("sha256:"):
            hexpart = s[7:]
            if not _hex_prefix(hexpart):
                raise InvalidArgument(f"invalid reference format: {s}")
            return self._by_prefix(c, hexpart, s)
        if refs.is_hex64(s):
            r = c.execute("SELECT id FROM images WHERE id=?", ("sha256:" + s,)).fetchone()
            return r[0] if r else None
        ref = refs.try_parse(s)
        if ref is not None:
            if ref.digest:
                r = c.execute("SELECT image_id FROM repo_digests WHERE ref=?",
                              (f"{ref.name}@{ref.digest}",)).fetchone()
                if r is None:
                    from dockyard.state.db import prefix_range

                    r = c.execute("SELECT i.id FROM images i JOIN tags t ON t.image_id=i.id "
                                  "WHERE i.manifest_digest=? AND t.ref >= ? AND t.ref < ? LIMIT 1",
                                  (ref.digest, *prefix_range(ref.name + ":"))).fetchone()
            else:
                r = c.execute("SELECT image_id FROM tags WHERE ref=?", (str(ref.tagged()),)).fetchone()
            if r is not None:
                return str(r[0])
        if _hex_prefix(s):
            return self._by_prefix(c, s, s)
        return None

    @staticmethod
    def _by_prefix(c: sqlite3.Connection, hexpart: str, shown: str) -> str | None:
        from dockyard.state.db import prefix_range

        rows = c.execute("SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2",
                         prefix_range("sha256:" + hexpart)).fetchall()
        if len(rows) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {shown}")
        return str(rows[0][0]) if rows else None

    def resolve(self, s: str) -> Image:
        """The image named by a unique ID prefix, full ID, ``sha256:ID``, reference or ``repo@digest``.

        Raises NotFound("No such image: X").
        """
        iid = self.lookup_id(s) if s else None
        im = self.get(iid) if iid else None
        if im is None:
            raise NotFound(f"No such image: {s}")
        return im

    def members(self, index_id: str) -> list[tuple[str, str]]:
        """``(platform, image ID)`` of each image an index lists, in the index's order."""
        rows = self.store.conn().execute("SELECT platform, image_id FROM index_members WHERE index_id=? "
                                         "ORDER BY rowid", (index_id,)).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def resolve_image(self, s: str, platform: str = "") -> Image:
        """The runnable image ``s`` names: for an index, its variant for ``platform`` (``os/arch[/variant]``,
        default this machine's); Docker's error when the index has none. An image is returned as it is (the
        caller compares its platform)."""
        im = self.resolve(s)
        if not im.is_index:
            return im
        from dockyard.oci.image import host_platform, parse_platform, platform_matches

        want = parse_platform(platform) if platform else host_platform()
        for plat, iid in self.members(im.id):
            parts = plat.split("/")
            have = {"os": parts[0], "architecture": parts[1] if len(parts) > 1 else ""}
            if len(parts) > 2:
                have["variant"] = parts[2]
            if platform_matches(want, have):
                found = self.get(iid)
                if found is not None:
                    found.repo_tags = found.repo_tags or im.repo_tags
                    return found
        shown = "/".join(x for x in (want["os"], want["architecture"], want.get("variant", "")) if x)
        raise NotFound(f"image with reference {s} was found but does not provide the specified platform "
                       f"({shown})")

    def add_index(self, members: list[tuple[str, str]], tags: Iterable[str] = (),
                  raw: bytes | None = None) -> tuple[str, list[tuple[str, str]]]:
        """Record an OCI image index over local images: ``members`` is ``[(platform, image ID)]``; returns
        ``(index digest, replaced tags)`` as ``add``. The index blob goes to the content store: ``raw`` (an
        index as loaded or pulled, kept byte for byte so its digest stays) when it lists exactly the members'
        manifests, else one written here."""
        from dockyard.content.store import ContentStore
        from dockyard.oci import image as oci

        cs = ContentStore(self.store)
        descs, size, created = [], 0, ""
        for plat, iid in members:
            im = self.get(iid)
            if im is None or im.manifest_digest is None:
                raise NotFound(f"No such image: {iid}")
            mraw = cs.read_bytes(im.manifest_digest)
            mtype = json.loads(mraw).get("mediaType") or oci.OCI_MANIFEST
            parts = plat.split("/")
            p = {"architecture": parts[1], "os": parts[0], **({"variant": parts[2]} if len(parts) > 2 else {})}
            descs.append(oci.Descriptor(mtype, im.manifest_digest, len(mraw), platform=p))
            size += im.size
            created = max(created, im.created)
        data = oci.index_bytes(descs)
        if raw is not None:
            try:
                listed = sorted(m["digest"] for m in json.loads(raw)["manifests"])
            except (ValueError, KeyError, TypeError):
                listed = []
            if listed == sorted(d.digest for d in descs):
                data = raw
        index_id = sha256_digest(data)
        if not cs.has(index_id):
            cs.put_bytes(data, index_id)
        norm_tags = [str(self._tag_ref(t)) for t in tags]
        replaced: list[tuple[str, str]] = []
        with images_lock(self.store, exclusive=False), self.store.write() as cur:
            for _, iid in members:
                if cur.execute("SELECT 1 FROM images WHERE id=?", (iid,)).fetchone() is None:
                    raise MissingContent(f"content vanished during the operation: {iid}")
            cur.execute("INSERT OR IGNORE INTO images (id, config, manifest_digest, layers, size, created, added,"
                        " parent, index_manifest) VALUES (?, '{}', ?, '[]', ?, ?, ?, NULL, ?)",
                        (index_id, index_id, size, created, _now(), data.decode()))
            for plat, iid in members:
                cur.execute("INSERT OR IGNORE INTO index_members (index_id, image_id, platform) VALUES (?, ?, ?)",
                            (index_id, iid, plat))
            for t in norm_tags:
                old = cur.execute("SELECT image_id FROM tags WHERE ref=?", (t,)).fetchone()
                if old is not None and old[0] != index_id:
                    replaced.append((refs.familiar(t), str(old[0])))
                cur.execute("INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)", (t, index_id))
        return index_id, replaced

    def exists(self, s: str) -> bool:
        try:
            return self.lookup_id(s) is not None
        except InvalidArgument:
            return False

    # -- writing ----------------------------------------------------------------------------------------------

    def add(self, config_bytes: bytes, layers: list[LayerRecord], manifest_bytes: bytes | None = None,
            tags: Iterable[str] = (), parent: str | None = None,
            repo_digests: Iterable[str] = ()) -> tuple[str, list[tuple[str, str]]]:
        """Record an image whose blobs and snapshots already exist; returns ``(image_id, replaced)``.

        ``config_bytes`` is the config blob (stored here if missing). ``manifest_bytes`` defaults to an OCI
        manifest over ``layers``. ``tags`` (any reference form) are pointed at the image in the same
        transaction; ``replaced`` lists ``(familiar tag, old image ID)`` for tags that moved.
        Raises MissingContent when a layer blob or snapshot is gone (see ``with_retry``).
        """
        from dockyard.content.store import ContentStore
        from dockyard.oci import image as oci

        config = json.loads(config_bytes)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if diff_ids != [ly.diff_id for ly in layers]:
            raise InvalidArgument("invalid image: layers do not match the config's rootfs.diff_ids")
        cs = ContentStore(self.store)
        image_id = sha256_digest(config_bytes)
        if not cs.has(image_id):
            cs.put_bytes(config_bytes, image_id)
        if manifest_bytes is None:
            manifest_bytes = oci.manifest_bytes(
                oci.Descriptor(oci.OCI_CONFIG, image_id, len(config_bytes)),
                [oci.Descriptor(ly.media_type, ly.digest, ly.size) for ly in layers])
        manifest_digest = sha256_digest(manifest_bytes)
        if not cs.has(manifest_digest):
            cs.put_bytes(manifest_bytes, manifest_digest)
        norm_tags = [str(self._tag_ref(t)) for t in tags]
        chains = chain_ids(diff_ids)
        replaced: list[tuple[str, str]] = []
        with images_lock(self.store, exclusive=False), self.store.write() as cur:
            missing = [ly.digest for ly in layers if not cs.has(ly.digest)]
            missing += [d for d in (image_id, manifest_digest) if not cs.has(d)]
            size = 0
            for ch in chains:
                r = cur.execute("SELECT size FROM snapshots WHERE chain_id=?", (ch,)).fetchone()
                if r is None or not self._snapshot_dir_exists(ch):
                    missing.append(ch)
                else:
                    size += int(r[0])
            if missing:
                raise MissingContent(f"content vanished during the operation: {', '.join(missing)}")
            cur.execute(
                "INSERT OR IGNORE INTO images (id, config, manifest_digest, layers, size, created, added, parent)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (image_id, config_bytes.decode(), manifest_digest,
                 json.dumps([ly.to_json() for ly in layers]), size, str(config.get("created") or ""),
                 _now(), parent))
            for t in norm_tags:
                old = cur.execute("SELECT image_id FROM tags WHERE ref=?", (t,)).fetchone()
                if old is not None and old[0] != image_id:
                    replaced.append((refs.familiar(t), str(old[0])))
                cur.execute("INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)", (t, image_id))
            for d in repo_digests:
                cur.execute("INSERT OR REPLACE INTO repo_digests (ref, image_id) VALUES (?, ?)", (d, image_id))
        return image_id, replaced

    def _snapshot_dir_exists(self, chain_id: str) -> bool:
        from dockyard.snapshots.store import SnapshotStore

        snap = SnapshotStore(self.store).get(chain_id)
        return snap is not None and os.path.isdir(snap.path)

    @staticmethod
    def _tag_ref(ref: str | refs.Reference) -> refs.Reference:
        r = refs.parse(ref) if isinstance(ref, str) else ref
        if r.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        return r.tagged()

    def tag(self, image_id: str, ref: str | refs.Reference) -> str:
        """Point ``ref`` (``:latest`` added if needed) at the image; returns the normalised reference."""
        r = str(self._tag_ref(ref))
        with self.store.write() as cur:
            if cur.execute("SELECT 1 FROM images WHERE id=?", (image_id,)).fetchone() is None:
                raise NotFound(f"No such image: {image_id}")
            cur.execute("INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)", (r, image_id))
        return r

    def untag(self, ref: str) -> bool:
        r = str(refs.parse(ref).tagged())
        with self.store.write() as cur:
            return cur.execute("DELETE FROM tags WHERE ref=?", (r,)).rowcount > 0

    def add_repo_digest(self, image_id: str, repo: str, manifest_digest: str) -> None:
        r = refs.parse(repo)
        with self.store.write() as cur:
            cur.execute("INSERT OR REPLACE INTO repo_digests (ref, image_id) VALUES (?, ?)",
                        (f"{r.name}@{manifest_digest}", image_id))

    # -- removal (rmi / image prune) live in images.remove to keep this module small ---------------------------

    def remove(self, name: str, force: bool = False, prune: bool = True) -> list[tuple[str, str]]:
        """Docker's ``rmi``: returns records ``("Untagged", "busybox:latest")`` / ``("Deleted", "sha256:...")``."""
        from dockyard.images.remove import remove_image

        return remove_image(self, name, force, prune)

    def prune(self, all: bool = False,
              filters: dict[str, list[str]] | None = None) -> tuple[list[tuple[str, str]], int]:
        """``image prune [-a] [--filter]``: (records, reclaimed bytes), then the leftovers of killed loads,
        imports and builds."""
        from dockyard.images.remove import collect_garbage, prune_images

        records, reclaimed = prune_images(self, all, filters)
        return records, reclaimed + collect_garbage(self)


@contextlib.contextmanager
def images_lock(store: Store, exclusive: bool) -> Iterator[None]:
    """``<root>/images.lock``: ``add`` holds it shared while it checks and records; removals hold it exclusively
    while they decide what is garbage and delete it (snapshot removal cannot run inside a transaction)."""
    import fcntl

    os.makedirs(store.root, mode=0o700, exist_ok=True)
    fd = os.open(store.path("images.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _now() -> float:
    import time

    return time.time()
