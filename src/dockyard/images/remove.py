"""``rmi`` and ``image prune`` with Docker's semantics (moby daemon/images/image_delete.go), in one transaction.

- ``rmi NAME`` untags NAME; the image itself goes only when no other reference is left. While a container uses
  an image whose last reference NAME is, the untag is refused unless ``-f``.
- ``rmi ID`` with a single tag (or tag + digests of one repository) removes them and the image; with tags in
  several repositories it is refused ("image is referenced in multiple repositories") unless ``-f``.
- Conflicts: *hard* (cannot be forced): dependent child images, a running container; *soft* (``-f``): other
  references, a stopped container.
- Parents left dangling by a removal are removed too (``--no-prune`` keeps them).

Blobs and snapshots no remaining image references are deleted inside the same transaction, so a concurrent
``load`` either sees them gone (and re-creates them) or commits first and keeps them referenced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dockyard import jsonc as json
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.ids import chain_ids
from dockyard.images import reference as refs
from dockyard.images.store import RUNNING_STATES

if TYPE_CHECKING:
    import sqlite3

    from dockyard.images.store import Image, ImageStore

DEPENDENT_CHILD, RUNNING_CONTAINER, ACTIVE_REFERENCE, STOPPED_CONTAINER = 1, 2, 4, 8
HARD = DEPENDENT_CHILD | RUNNING_CONTAINER
SOFT = ACTIVE_REFERENCE | STOPPED_CONTAINER


class DeleteConflict(Conflict):
    def __init__(self, image_id: str, hard: bool, message: str, used: bool = False) -> None:
        super().__init__(f"conflict: unable to delete {image_id[7:19]} "
                         f"({'cannot be forced' if hard else 'must be forced'}) - {message}")
        self.used = used


@dataclass
class _Tx:
    cur: sqlite3.Cursor
    records: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    pinned: set[str] = field(default_factory=set)   # deleted images a container still uses: keep snapshots
    captured: list[tuple[str, str | None, list[dict[str, str]]]] = field(default_factory=list)

    def refs_of(self, iid: str) -> list[str]:
        rows = self.cur.execute("SELECT ref FROM tags WHERE image_id=? UNION ALL "
                                "SELECT ref FROM repo_digests WHERE image_id=?", (iid, iid)).fetchall()
        return sorted(r[0] for r in rows)

    def remove_ref(self, ref: str) -> None:
        table = "repo_digests" if "@" in ref else "tags"
        self.cur.execute(f"DELETE FROM {table} WHERE ref=?", (ref,))
        self.records.append(("Untagged", refs.familiar(ref)))

    def containers(self, iid: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.cur.execute(
            "SELECT id, state FROM containers WHERE image_id=? ORDER BY created", (iid,)).fetchall()]

    def children(self, iid: str) -> bool:
        return self.cur.execute("SELECT 1 FROM images WHERE parent=? LIMIT 1", (iid,)).fetchone() is not None

    def dangling(self, iid: str) -> bool:
        return not self.refs_of(iid) and not self.children(iid)


def _repo_of(ref: str) -> str:
    return ref.split("@", 1)[0] if "@" in ref else ref.rsplit(":", 1)[0]


def _single_reference(repo_refs: list[str]) -> bool:
    """One tag (plus, maybe, digest references of that same repository)."""
    if len(repo_refs) <= 1:
        return len(repo_refs) == 1
    single: str | None = None
    canonical: set[str] = set()
    for r in repo_refs:
        if "@" in r:
            canonical.add(_repo_of(r))
        elif single is None:
            single = r
        else:
            return False
    if single is None:
        single = repo_refs[0]
    return len(canonical) == 1 and _repo_of(single) in canonical


def _conflict(tx: _Tx, iid: str, mask: int) -> DeleteConflict | None:
    if mask & DEPENDENT_CHILD and tx.children(iid):
        return DeleteConflict(iid, True, "image has dependent child images")
    users = tx.containers(iid)
    if mask & RUNNING_CONTAINER:
        for cid, state in users:
            if state in RUNNING_STATES:
                return DeleteConflict(iid, True, f"image is being used by running container {cid[:12]}", True)
    if mask & ACTIVE_REFERENCE and tx.refs_of(iid):
        return DeleteConflict(iid, False, "image is referenced in multiple repositories")
    if mask & STOPPED_CONTAINER:
        for cid, state in users:
            if state not in RUNNING_STATES:
                return DeleteConflict(iid, False, f"image is being used by stopped container {cid[:12]}", True)
    return None


def _delete_helper(tx: _Tx, iid: str, force: bool, prune: bool, quiet: bool) -> None:
    mask = HARD if force else HARD | SOFT
    c = _conflict(tx, iid, mask)
    if c is not None:
        if quiet and (not tx.dangling(iid) or c.used):
            return
        raise c
    idx = tx.cur.execute("SELECT index_id FROM index_members WHERE image_id=? LIMIT 1", (iid,)).fetchone()
    if idx is not None:  # a platform image of an index goes with the index (rmi of the index)
        if quiet:
            return
        raise DeleteConflict(iid, True, f"image is a platform of image index {idx[0][7:19]}")
    row = tx.cur.execute("SELECT parent FROM images WHERE id=?", (iid,)).fetchone()
    parent = row[0] if row else None
    members = [m[0] for m in tx.cur.execute("SELECT image_id FROM index_members WHERE index_id=?", (iid,))]
    for r in tx.refs_of(iid):
        tx.remove_ref(r)
    if tx.containers(iid):
        tx.pinned.add(iid)
        tx.cur.execute("UPDATE containers SET image_id=NULL WHERE image_id=?", (iid,))
    r = tx.cur.execute("SELECT manifest_digest, layers FROM images WHERE id=?", (iid,)).fetchone()
    tx.captured.append((iid, r[0], json.loads(r[1])))
    tx.cur.execute("DELETE FROM images WHERE id=?", (iid,))
    tx.records.append(("Deleted", iid))
    tx.deleted.append(iid)
    for m in members:  # an index's platform images, unless tagged, listed by another index or used
        if tx.dangling(m):
            _delete_helper(tx, m, False, prune, True)
    if prune and parent:
        if tx.cur.execute("SELECT 1 FROM images WHERE id=?", (parent,)).fetchone():
            _delete_helper(tx, parent, False, True, True)


def _is_id_prefix(iid: str, s: str) -> bool:
    return iid.startswith(s) or iid[7:].startswith(s)


def _delete(tx: _Tx, ist: ImageStore, name: str, force: bool, prune: bool) -> None:
    iid = ist.lookup_id(name)
    if iid is None:
        raise NotFound(f"No such image: {name}")
    repo_refs = tx.refs_of(iid)
    removed_repo_ref = False
    if not _is_id_prefix(iid, name):
        parsed = refs.parse(name)
        ref = str(parsed if parsed.digest else parsed.tagged())
        if parsed.digest:  # name:tag@digest is looked up (and removed) by its digest
            ref = f"{parsed.name}@{parsed.digest}"
        if not force and _single_reference(repo_refs):
            users = tx.containers(iid)
            if users:
                raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force) - '
                               f"container {users[0][0][:12]} is using its referenced image {iid[7:19]}")
        if ref in repo_refs:
            tx.remove_ref(ref)
        repo_refs = tx.refs_of(iid)
        if "@" not in ref:
            same_repo = [r for r in repo_refs if _repo_of(r) == _repo_of(ref)]
            if same_repo and all("@" in r for r in same_repo):
                for r in same_repo:
                    tx.remove_ref(r)
                repo_refs = tx.refs_of(iid)
        if repo_refs:
            return
        removed_repo_ref = True
    elif _single_reference(repo_refs):
        mask = HARD if force else HARD | (SOFT & ~ACTIVE_REFERENCE)
        c = _conflict(tx, iid, mask)
        if c is not None:
            raise c
        for r in repo_refs:
            tx.remove_ref(r)
    _delete_helper(tx, iid, force, prune, removed_repo_ref)


def _plan_garbage(tx: _Tx) -> tuple[set[str], list[str], int]:
    """(blobs, chain IDs top first, bytes) of ``tx.deleted`` that no remaining image uses; read in the tx."""
    if not tx.deleted:
        return set(), [], 0
    keep_blobs: set[str] = set()
    keep_chains: set[str] = set()
    for iid, mdig, layers in tx.cur.execute("SELECT id, manifest_digest, layers FROM images").fetchall():
        lys = json.loads(layers)
        keep_blobs.add(iid)
        if mdig:
            keep_blobs.add(mdig)
        keep_blobs.update(ly["digest"] for ly in lys)
        keep_chains.update(chain_ids([ly["diff_id"] for ly in lys]))
    drop_blobs: set[str] = set()
    drop_chains: list[str] = []
    for iid, mdig, lys in tx.captured:
        drop_blobs.add(iid)
        drop_blobs.update([mdig] if mdig else [])
        drop_blobs.update(ly["digest"] for ly in lys)
        chains = chain_ids([ly["diff_id"] for ly in lys])
        if iid in tx.pinned:  # a container still runs on these layers
            keep_chains.update(chains)
            continue
        for ch in reversed(chains):
            if ch not in drop_chains:
                drop_chains.append(ch)
    drop_chains = [ch for ch in drop_chains if ch not in keep_chains]
    reclaimed = 0
    for ch in drop_chains:
        r = tx.cur.execute("SELECT size FROM snapshots WHERE chain_id=?", (ch,)).fetchone()
        if r is not None:
            reclaimed += int(r[0])
    return drop_blobs - keep_blobs, drop_chains, reclaimed


def remove_image(ist: ImageStore, name: str, force: bool = False,
                 prune: bool = True) -> list[tuple[str, str]]:
    records, _ = remove_image_ex(ist, name, force, prune)
    return records


def remove_image_ex(ist: ImageStore, name: str, force: bool = False,
                    prune: bool = True) -> tuple[list[tuple[str, str]], int]:
    """(records, bytes reclaimed) of ``rmi [-f] [--no-prune] NAME``; all or nothing.

    Runs under the image lock held exclusively, so no ``ImageStore.add`` can check and reference a blob or a
    snapshot between our decision to delete it and its deletion."""
    from dockyard.content.store import ContentStore
    from dockyard.images.store import images_lock
    from dockyard.snapshots.store import SnapshotStore

    with images_lock(ist.store, exclusive=True):
        with ist.store.write() as cur:
            tx = _Tx(cur)
            _delete(tx, ist, name, force, prune)
            blobs, chains, reclaimed = _plan_garbage(tx)
        cs = ContentStore(ist.store)
        for d in blobs:
            cs.remove(d)
        ss = SnapshotStore(ist.store)
        for ch in chains:
            try:
                ss.remove(ch)
            except Conflict:  # a layer being applied on top of it right now: keep it
                pass
    return tx.records, reclaimed


def prune_matches(im: Image, filters: dict[str, list[str]], now: float) -> bool:
    """``image prune --filter``: ``until=`` (a duration like 24h, or a unix/RFC 3339 time: only images created
    before it), ``label=k[=v]`` (all must match) and ``label!=k[=v]`` (none may)."""
    for until in filters.get("until", []):
        limit = _parse_until(until, now)
        if im.created_ts >= limit:
            return False
    labels = im.labels
    for want in filters.get("label", []):
        k, sep, v = want.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    for unwanted in filters.get("label!", []):
        k, sep, v = unwanted.partition("=")
        if k in labels and (not sep or labels[k] == v):
            return False
    return True


def _parse_until(value: str, now: float) -> float:
    from dockyard.timeparse import parse_time

    t = parse_time(value, now)
    if t is None:
        raise InvalidArgument(f'invalid filter "until={value}"')
    return t


def prune_images(ist: ImageStore, all: bool = False,
                 filters: dict[str, list[str]] | None = None) -> tuple[list[tuple[str, str]], int]:
    """``image prune``: dangling images (``all``: every image no container uses), narrowed by ``filters``
    (see ``prune_matches``). (records, bytes reclaimed)."""
    import time

    now = time.time()
    c = ist.store.conn()
    in_use = {r[0] for r in c.execute("SELECT DISTINCT image_id FROM containers WHERE image_id IS NOT NULL")}
    parents = {r[0] for r in c.execute("SELECT DISTINCT parent FROM images WHERE parent IS NOT NULL")}
    records: list[tuple[str, str]] = []
    total = 0
    for im in ist.list():
        if filters and not prune_matches(im, filters, now):
            continue
        if im.id in in_use or im.id in parents:
            continue
        names: list[str]
        if im.tag_refs or im.repo_digests:
            if not all and im.tag_refs:
                continue
            names = list(im.tag_refs) + [str(refs.parse(d)) for d in im.repo_digests]
        else:
            names = [im.id[7:]]
        for n in names:
            try:
                recs, reclaimed = remove_image_ex(ist, n, False, True)
            except (NotFound, Conflict):
                continue
            records += recs
            total += reclaimed
    return records, total


def collect_garbage(ist: ImageStore) -> int:
    """Remove what no image records: blobs, snapshots and staging files that a killed ``load``, ``import`` or
    ``build`` left behind (a rerun would reuse them; nothing else would). Returns the bytes of snapshots freed.

    Holds the images lock exclusively, as rmi does, so no load or build can be between storing its content and
    recording its image meanwhile."""
    from dockyard.content.store import ContentStore
    from dockyard.images.store import images_lock
    from dockyard.snapshots.store import SnapshotStore

    cs = ContentStore(ist.store)
    ss = SnapshotStore(ist.store)
    with images_lock(ist.store, exclusive=True):
        keep_blobs: set[str] = set()
        keep_chains: set[str] = set()
        for iid, mdig, layers in ist.store.conn().execute("SELECT id, manifest_digest, layers FROM images"):
            lys = json.loads(layers)
            keep_blobs.add(iid)
            if mdig:
                keep_blobs.add(mdig)
            keep_blobs.update(ly["digest"] for ly in lys)
            keep_chains.update(chain_ids([ly["diff_id"] for ly in lys]))
        sizes = {r[0]: int(r[1]) for r in ist.store.conn().execute("SELECT chain_id, size FROM snapshots")}
        orphaned = ist.store.conn().execute("SELECT 1 FROM containers WHERE image_id IS NULL LIMIT 1").fetchone()
        # a container whose image was force-removed still runs on that image's snapshots, which no image row
        # names any more: keep every snapshot then (only staging leftovers go)
        removed = ss.gc(set(sizes) if orphaned else keep_chains)
        for d in list(cs.digests()):
            if d not in keep_blobs:
                cs.remove(d)
        cs.cleanup_tmp()
    return sum(sizes.get(ch, 0) for ch in removed)
