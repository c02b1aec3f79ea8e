"""The engine's image verbs: what ``dockyard images|tag|rmi|history|image inspect|image prune|import|save|load`` and
the Engine API's ``/images`` routes call. Edges parse their input, call one function here and format the result.

Vocabulary: an image ID is ``sha256:<hex>`` of its config blob; a *reference* is ``[registry/]repo[:tag|@digest]``
(``busybox`` means ``docker.io/library/busybox:latest``; ``repo_tags`` and ``repo_digests`` are shown in Docker's
familiar form). ``name`` arguments accept a reference, a full ID or an unambiguous ID prefix.

Results are small records (``engine.options.Record``: ``images`` is called often by scripts, and ``dataclasses``
costs more to import than the whole listing); ``inspect_image`` returns Docker's image inspect JSON, built here and
only here, for both edges. Errors are ``DockyardError`` subclasses (NotFound, Conflict, InvalidArgument...).

    for im in list_images(store, filters={"dangling": ["true"]}):
        print(im.id, im.repo_tags, im.size)
    for ev in load_images(store, open("busybox.tar", "rb")):
        print(ev.tag or ev.image_id)
"""

from __future__ import annotations

import builtins  # `all` is a parameter of Docker's verbs below

from dockyard import jsonc as json
from dockyard.engine.options import Record
from dockyard.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Iterator
    from typing import IO, Any, BinaryIO

    from dockyard.images.store import Image, ImageStore
    from dockyard.state.db import Store

IMAGE_FILTERS = ("dangling", "label", "before", "since", "reference")
PRUNE_FILTERS = ("until", "label", "label!")


class ImageSummary(Record):
    """One image of ``list_images`` (``created``: unix time; ``size``: bytes of its unpacked layers)."""

    FIELDS = {"id": "", "parent": "", "repo_tags": [], "repo_digests": [], "created": 0.0, "size": 0, "labels": {}}
    if TYPE_CHECKING:
        id: str
        parent: str
        repo_tags: list[str]
        repo_digests: list[str]
        created: float
        size: int
        labels: dict[str, str]


class HistoryItem(Record):
    """One entry of ``history``, newest first: ``id`` is ``<missing>`` for layers not recorded as images here."""

    FIELDS = {"id": "<missing>", "created": 0.0, "created_by": "", "comment": "", "size": 0, "tags": []}
    if TYPE_CHECKING:
        id: str
        created: float
        created_by: str
        comment: str
        size: int
        tags: list[str]


class PruneReport(Record):
    """``deleted``: ("Untagged"|"Deleted", value) in order; ``reclaimed``: bytes freed."""

    FIELDS = {"deleted": [], "reclaimed": 0}
    if TYPE_CHECKING:
        deleted: list[tuple[str, str]]
        reclaimed: int


class LoadEvent(Record):
    """Progress of ``load_images``: ``kind`` is ``replaced`` (``tag`` moved away from ``old_id``) or ``loaded``
    (``image_id``, with ``tag`` when the archive named it)."""

    FIELDS = {"kind": "loaded", "image_id": "", "tag": "", "old_id": ""}
    if TYPE_CHECKING:
        kind: str
        image_id: str
        tag: str
        old_id: str


def _images(store: Store) -> ImageStore:
    from dockyard.images.store import ImageStore

    return ImageStore(store)


# ---- list -----------------------------------------------------------------------------------------------------

def check_filter(key: str) -> str:
    """A ``list_images`` filter name, lower-cased; InvalidArgument when Docker has no such filter."""
    k = key.strip().lower()
    if k not in IMAGE_FILTERS:
        raise InvalidArgument(f"invalid filter '{k}'")
    return k


def reference_pattern(pattern: str) -> re.Pattern[str]:
    """A ``reference=`` filter as Go's path.Match: ``*`` and ``?`` do not cross ``/``."""
    import re  # only with a filter: not on the way of a plain `images`

    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise InvalidArgument(f"invalid reference filter: syntax error in pattern {pattern!r}")
            cls = pattern[i + 1:j]
            out += "[" + cls.replace("\\", "\\\\") + "]"
            i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile("^" + out + "\\Z")


def _ref_matches(pats: list[re.Pattern[str]], familiar_ref: str) -> bool:
    name = familiar_ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return any(p.match(familiar_ref) or p.match(name) for p in pats)


def list_images(store: Store, filters: dict[str, list[str]] | None = None, all: bool = False) -> list[ImageSummary]:
    """Docker's image list: filters ``dangling``, ``label`` (``k`` or ``k=v``), ``before``/``since`` (an image),
    ``reference`` (a pattern; also narrows the tags shown). Intermediate images (parents of others, untagged) only
    with ``all``."""
    filters = {check_filter(k): v for k, v in (filters or {}).items()}
    ist = _images(store)
    dangling: bool | None = None
    for v in filters.get("dangling", []):
        if v.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={v}'")
        dangling = v.lower() in ("true", "1")
    before = [ist.resolve(v).created for v in filters.get("before", [])]
    since = [ist.resolve(v).created for v in filters.get("since", [])]
    pats = [reference_pattern(p) for p in filters.get("reference", [])]
    labels = filters.get("label", [])
    parents: set[str] | None = None
    out: list[ImageSummary] = []
    for im in ist.list():
        if before and not builtins.all(im.created < b for b in before):
            continue
        if since and not builtins.all(im.created > s for s in since):
            continue
        if labels:
            have = im.labels
            ok = True
            for lab in labels:
                k, sep, val = lab.partition("=")
                if k not in have or (sep and have[k] != val):
                    ok = False
            if not ok:
                continue
        if pats:
            im.repo_tags = [t for t in im.repo_tags if _ref_matches(pats, t)]
            im.repo_digests = [d for d in im.repo_digests if _ref_matches(pats, d)]
            if not im.repo_tags and not im.repo_digests:
                continue
        if not im.repo_tags and not im.repo_digests:
            if not all:
                if parents is None:
                    parents = {r[0] for r in store.query(
                        "SELECT DISTINCT parent FROM images WHERE parent IS NOT NULL")}
                if im.id in parents:
                    continue  # an intermediate image (all=True shows it)
            if dangling is False:
                continue
        elif dangling is True and im.repo_tags:
            continue
        out.append(ImageSummary(id=im.id, parent=im.parent or "", repo_tags=list(im.repo_tags),
                                repo_digests=list(im.repo_digests), created=im.created_ts, size=im.size,
                                labels=im.labels))
    return out


class TreeEntry(Record):
    """One platform line of ``images --tree``."""

    FIELDS = {"platform": "", "id": "", "disk_usage": 0, "content_size": 0, "in_use": False, "available": True}


class TreeImage(Record):
    """One image of ``images --tree``: its names, ID, sizes and one entry per platform."""

    FIELDS = {"names": [], "id": "", "disk_usage": 0, "content_size": 0, "in_use": False, "platforms": []}


def image_tree(store: Store, filters: dict[str, list[str]] | None = None, all: bool = False) -> list[TreeImage]:
    """Docker 28's ``images --tree``: each listed image (an index once) with one entry per platform: its image
    ID (the manifest's digest, as Docker shows), disk usage (unpacked + content), content size (blobs as
    stored), and whether a container uses it."""
    ist = _images(store)
    used = {r[0] for r in store.query("SELECT DISTINCT image_id FROM containers WHERE image_id IS NOT NULL")}
    out: list[TreeImage] = []
    for s in list_images(store, filters, all):
        im = ist.get(s.id)
        if im is None:
            continue
        entries: list[TreeEntry] = []
        if im.is_index:
            for m in index_manifests(store, im):
                p = (m["Descriptor"].get("platform") or {})
                plat = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
                size = m.get("Size") or {"Total": 0, "Content": 0}
                entries.append(TreeEntry(platform=plat, id=m["ID"], disk_usage=size["Total"],
                                         content_size=size["Content"], in_use=m.get("ImageID") in used,
                                         available=bool(m["Available"])))
        else:
            content = sum(ly.size for ly in im.layers)
            entries.append(TreeEntry(platform=im.platforms[0], id=im.manifest_digest or im.id,
                                     disk_usage=content + im.size, content_size=content, in_use=im.id in used,
                                     available=True))
        names = list(s.repo_tags) or list(s.repo_digests) or ["<untagged>"]
        out.append(TreeImage(names=names, id=im.id, disk_usage=sum(e.disk_usage for e in entries),
                             content_size=sum(e.content_size for e in entries),
                             in_use=any(e.in_use for e in entries), platforms=entries))
    return out


# ---- inspect / history / tag ------------------------------------------------------------------------------------

_CONFIG_FIELDS: list[tuple[str, Any]] = [
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False),
    ("Env", None), ("Cmd", None), ("Healthcheck", None), ("ArgsEscaped", None), ("Image", ""), ("Volumes", None),
    ("WorkingDir", ""), ("Entrypoint", None), ("OnBuild", None), ("Labels", None), ("StopSignal", None),
]
_OMIT_EMPTY = {"ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal"}


def image_inspect_data(store: Store, im: Image) -> dict[str, Any]:
    """Docker's image inspect JSON (API v1.44 shape) for an image already resolved."""
    cfg = im.config
    inner = cfg.get("config") or {}
    config: dict[str, Any] = {}
    for k, default in _CONFIG_FIELDS:
        v = inner.get(k, default)
        if k in _OMIT_EMPTY and not v:
            continue
        config[k] = v
    for k, v in inner.items():
        if k not in config and k not in _OMIT_EMPTY:
            config[k] = v
    graph: dict[str, Any] = {"Data": None, "Name": "overlay"}
    try:
        from dockyard.snapshots.store import SnapshotStore

        dirs = SnapshotStore(store).lowerdirs(im.top_chain_id)
        if dirs:
            graph["Data"] = {"LowerDir": ":".join(dirs)}
    except Exception:  # noqa: BLE001 - inspect must work even if a snapshot is damaged
        pass
    d: dict[str, Any] = {
        "Id": im.id,
        "RepoTags": list(im.repo_tags),
        "RepoDigests": list(im.repo_digests),
        "Parent": im.parent or "",
        "Comment": cfg.get("comment", ""),
        "Created": cfg.get("created", ""),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": config,
        "Architecture": cfg.get("architecture", ""),
    }
    if cfg.get("variant"):
        d["Variant"] = cfg["variant"]
    d["Os"] = cfg.get("os", "")
    if cfg.get("os.version"):
        d["OsVersion"] = cfg["os.version"]
    d["Size"] = im.size
    d["GraphDriver"] = graph
    d["RootFS"] = {"Type": (cfg.get("rootfs") or {}).get("type", "layers"), "Layers": im.diff_ids}
    d["Metadata"] = {"LastTagTime": "0001-01-01T00:00:00Z"}
    return d


def inspect_image(store: Store, name: str, platform: str = "") -> dict[str, Any]:
    """``docker image inspect [--platform P] NAME``: NotFound when no image answers to ``name``.

    An image index (multi-platform) is shown as Docker 28's containerd store shows it: its own ``Id``, tags and
    digests over the configuration of one platform's image (``platform``, default this machine's, else the
    index's first), plus ``Descriptor`` (the index's) and ``Manifests`` (one entry per platform, see
    ``index_manifests``)."""
    ist = _images(store)
    im = ist.resolve(name)
    if not im.is_index:
        if platform:
            _check_platform(im, name, platform)
        return image_inspect_data(store, im)
    try:
        variant = ist.resolve_image(im.id, platform)
    except NotFound:
        if platform:
            raise
        members = ist.members(im.id)
        got = ist.get(members[0][1]) if members else None
        if got is None:
            raise
        variant = got
    d = image_inspect_data(store, variant)
    d["Id"], d["RepoTags"], d["RepoDigests"] = im.id, list(im.repo_tags), list(im.repo_digests)
    d["Descriptor"] = {"mediaType": json.loads(im.index_manifest or "{}").get("mediaType") or _OCI_INDEX,
                       "digest": im.id, "size": len((im.index_manifest or "").encode())}
    d["Manifests"] = index_manifests(store, im)
    return d


_OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _check_platform(im: Image, name: str, platform: str) -> None:
    from dockyard.oci.image import parse_platform, platform_matches

    c = im.config
    have = {"os": c.get("os") or "", "architecture": c.get("architecture") or ""}
    if c.get("variant"):
        have["variant"] = c["variant"]
    if not platform_matches(parse_platform(platform), have):
        raise NotFound(f"image with reference {name} was found but does not provide the specified platform "
                       f"({platform})")


def index_manifests(store: Store, im: Image) -> list[dict[str, Any]]:
    """Docker 28's ImageManifestSummary for each manifest of an index: ``ID`` (manifest digest), ``Descriptor``
    (with its platform), ``Available``, ``Size`` (``Total``/``Content``: bytes of its blobs as stored),
    ``Kind`` ("image"), ``ImageData`` (``Platform``, ``Containers`` using it, ``Size.Unpacked``), and ``ImageID``
    (the local image ID, a dockyard addition)."""
    from dockyard.content.store import ContentStore

    ist = _images(store)
    cs = ContentStore(store)
    by_plat = dict(ist.members(im.id))
    out: list[dict[str, Any]] = []
    for m in json.loads(im.index_manifest or "{}").get("manifests") or []:
        p = m.get("platform") or {}
        plat = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
        iid = by_plat.get(plat)
        member = ist.get(iid) if iid else None
        entry: dict[str, Any] = {"ID": m.get("digest"), "Descriptor": m, "Available": member is not None,
                                 "Kind": "image"}
        if member is not None:
            content = int(m.get("size") or 0) + sum(ly.size for ly in member.layers)
            if cs.has(member.id):
                content += cs.size(member.id)
            users = [r[0] for r in store.query("SELECT id FROM containers WHERE image_id=?", (member.id,))]
            entry["Size"] = {"Total": content + member.size, "Content": content}
            entry["ImageData"] = {"Platform": p, "Containers": users, "Size": {"Unpacked": member.size}}
            entry["ImageID"] = member.id
        out.append(entry)
    return out


def history(store: Store, name: str) -> list[HistoryItem]:
    """Docker's ImageHistory: newest first; the row of the step that made an image (this one and its recorded
    parents) gets that image's ID, the rest ``<missing>``."""
    from dockyard.snapshots.store import SnapshotStore
    from dockyard.timeparse import parse_rfc3339

    ist = _images(store)
    im = ist.resolve_image(name)  # an index: its variant for this machine, as Docker 28 shows
    snaps = SnapshotStore(store)
    sizes: list[int] = []
    for ch in im.chain_ids:
        s = snaps.get(ch)
        sizes.append(int(s.size) if s is not None else 0)
    items: list[HistoryItem] = []
    li = 0
    for h in im.config.get("history") or []:
        size = 0
        if not h.get("empty_layer"):
            size = sizes[li] if li < len(sizes) else 0
            li += 1
        items.insert(0, HistoryItem(created=parse_rfc3339(h.get("created") or ""),
                                    created_by=h.get("created_by") or "", comment=h.get("comment") or "",
                                    size=size))
    # each image of the parent chain names the row of its own last step (a build records an image per layer
    # step, with the metadata steps before it folded in): the rows between are steps without a local image
    cur: Image | None = im
    while cur is not None:
        row = len(items) - len(cur.config.get("history") or [])
        if not 0 <= row < len(items) or items[row].id != "<missing>":
            break
        items[row].id = cur.id
        items[row].tags = list(cur.repo_tags)
        cur = ist.get(cur.parent) if cur.parent else None
    return items


def tag_image(store: Store, source: str, target: str) -> str:
    """``docker tag SOURCE TARGET``: returns the normalised target reference."""
    from dockyard.images import reference

    try:
        ref = reference.parse(target)
    except Exception as e:  # noqa: BLE001 - reworded as docker does
        raise InvalidArgument(f'Error parsing reference: "{target}" is not a valid repository/tag: {e}') from None
    ist = _images(store)
    iid = ist.resolve(source).id
    out = ist.tag(iid, ref)
    from dockyard.engine import events

    events.emit(store, "image", "tag", iid, {"name": str(out)})
    return out


# ---- remove / prune ---------------------------------------------------------------------------------------------

def remove_image(store: Store, name: str, force: bool = False, prune: bool = True) -> list[tuple[str, str]]:
    """``rmi NAME``: ("Untagged", "busybox:latest") / ("Deleted", "sha256:...") records, in order; Conflict
    when a container uses it (without ``force``) or it has several tags and ``name`` is an ID."""
    done = _images(store).remove(name, force=force, prune=prune)
    from dockyard.engine import events

    for kind, value in done:
        if kind == "Untagged":
            events.emit(store, "image", "untag", value, {"name": value})
        else:
            events.emit(store, "image", "delete", value, {"name": value})
    return done


def check_prune_filter(key: str) -> str:
    if key not in PRUNE_FILTERS:
        raise InvalidArgument(f"invalid filter '{key}'")
    return key


def prune_images(store: Store, all: bool = False, filters: dict[str, list[str]] | None = None) -> PruneReport:
    """``image prune``: dangling images (every unused one with ``all``), filters ``until``, ``label``,
    ``label!``; then the leftovers of killed loads, imports and builds."""
    for k in filters or {}:
        check_prune_filter(k)
    records, reclaimed = _images(store).prune(all=all, filters=filters or {})
    from dockyard.engine.prune import collect_leftovers

    reclaimed += collect_leftovers(store)  # killed builds' workspaces, stale staging files
    return PruneReport(deleted=list(records), reclaimed=reclaimed)


# ---- import / save / load ---------------------------------------------------------------------------------------

def check_import(ref: str | None, platform: str = "") -> dict[str, str] | None:
    """The checks ``import_image`` makes before reading its source: the tag and the platform (parsed)."""
    from dockyard.images import reference
    from dockyard.oci.image import parse_platform

    if ref:
        reference.parse_tagged(ref)
    return parse_platform(platform) if platform else None


def import_image(store: Store, source: str | IO[bytes], ref: str | None = None, changes: list[str] | None = None,
                 message: str = "", platform: str = "") -> str:
    """``docker import``: a rootfs tar as a one-layer image; ``source`` is a stream, a path, or an http(s) URL.
    Returns the image ID."""
    from dockyard.engine import events

    iid = _import_image(store, source, ref, changes, message, platform)
    events.emit(store, "image", "import", iid, {"name": ref or iid})
    return iid


def _import_image(store: Store, source: str | IO[bytes], ref: str | None, changes: list[str] | None,
                  message: str, platform: str) -> str:
    from dockyard.images.importer import import_image as _import

    plat = check_import(ref, platform)  # before reading anything
    changes = list(changes or [])
    if not isinstance(source, str):
        return _import(store, source, ref, changes, message, plat)
    if source.startswith(("http://", "https://")):
        import urllib.request

        from dockyard.errors import SystemFailure

        try:
            with urllib.request.urlopen(source, timeout=60) as resp:  # noqa: S310 (user-given URL, as docker)
                return _import(store, resp, ref, changes, message, plat, source_name=source)
        except OSError as e:
            raise SystemFailure(f"import from {source}: {e}") from None
    import os

    if not os.path.exists(source):
        raise NotFound(f"open {source}: no such file or directory")
    return _import(store, source, ref, changes, message, plat)


def _is_repo_with_tags(store: Store, name: str) -> bool:
    from dockyard.images import reference

    r = reference.try_parse(name)
    if r is None or not r.name_only:
        return False
    from dockyard.state.db import prefix_range

    rows = store.query("SELECT ref FROM tags WHERE ref >= ? AND ref < ?", prefix_range(r.name + ":"))
    return any(x[0].rsplit(":", 1)[0] == r.name for x in rows)


def check_save(store: Store, names: list[str]) -> None:
    """NotFound for the first of ``names`` (a reference, an ID, or a repository: all its tags) that is no image."""
    ist = _images(store)
    for name in names:
        if not _is_repo_with_tags(store, name):
            ist.resolve(name)


def save_images(store: Store, names: list[str], out: IO[bytes]) -> None:
    """``docker save``: a Docker 25 archive (manifest.json, repositories, OCI layout) streamed to ``out``; the names
    are checked before the first byte is written."""
    from dockyard.images.archive import save

    check_save(store, names)
    save(store, names, out)


def save_images_to_file(store: Store, names: list[str], path: str,
                        on_bytes: Callable[[int], None] | None = None) -> None:
    """``docker save -o PATH``: the archive appears at ``path`` only when complete (temporary file, fsync, rename).
    ``on_bytes(n)`` is told of every write (a progress bar)."""
    import os
    import tempfile

    from dockyard.images.archive import save

    check_save(store, names)  # fail before creating the output file
    out = os.path.abspath(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), prefix=".dockyard-save-")
    except OSError as e:
        from dockyard.errors import from_oserror

        raise from_oserror(f"failed to save image: open {path}", e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            save(store, names, f if on_bytes is None else _Counted(f, on_bytes))  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o644 & ~mask)
        os.rename(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class _Counted:
    """A writable stream that reports each write's size."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self.raw, self.on_bytes = raw, on_bytes

    def write(self, b: bytes) -> int:
        n = self.raw.write(b)
        self.on_bytes(len(b))
        return n

    def flush(self) -> None:
        self.raw.flush()


def load_images(store: Store, stream: BinaryIO, platform: str = "") -> Iterator[LoadEvent]:
    """``docker load``: the images of a save archive (Docker or OCI layout). Nothing is visible until every image
    of the archive is stored; then one event per replaced tag and per loaded tag (or ID, for an untagged image)."""
    from dockyard.images.archive import load
    from dockyard.oci.image import parse_platform

    from dockyard.engine import events

    plat = parse_platform(platform) if platform else None
    for im in load(store, stream, plat):
        events.emit(store, "image", "load", im.image_id, {"name": (im.tags or [im.image_id])[0]})
        for tag, old in im.replaced:
            yield LoadEvent(kind="replaced", image_id=im.image_id, tag=tag, old_id=old)
        if im.tags:
            for t in im.tags:
                yield LoadEvent(kind="loaded", image_id=im.image_id, tag=t)
        else:
            yield LoadEvent(kind="loaded", image_id=im.image_id)


def open_archive(path: str) -> BinaryIO:
    """The archive file ``load -i PATH`` reads (errors as Docker words them)."""
    from dockyard.images.archive import open_input

    return open_input(path)


# ---- registries: pull / push / login / logout ---------------------------------------------------------------

if TYPE_CHECKING:
    from dockyard.images.distribution import Progress as PullEvent  # noqa: F401 - the event type of pull/push


def pull(store: Store, ref: str, platform: str = "", all_tags: bool = False) -> Iterator[PullEvent]:
    """``docker pull REF``: an iterator of progress events (``kind`` ``status``: a line such as
    ``latest: Pulling from library/busybox`` or ``Digest: sha256:...``; ``layer``: ``id`` + Docker's state word
    ``Pulling fs layer``/``Downloading`` (``current``/``total`` bytes)/``Download complete``/``Extracting``/
    ``Pull complete``/``Already exists``; ``done``: ``text`` is the full reference). Nothing is recorded unless
    every blob was verified. Errors: NotFound (unknown manifest, platform absent), RegistryError (denied...)."""
    from dockyard.images.distribution import pull as _pull

    return _pull(store, ref, platform=platform, all_tags=all_tags)


def push(store: Store, ref: str) -> Iterator[PullEvent]:
    """``docker push REF``: events as ``pull`` (layer states ``Preparing``/``Pushing``/``Pushed``/
    ``Layer already exists``/``Mounted from REPO``; a last status ``TAG: digest: sha256:... size: N``)."""
    from dockyard.images.distribution import push as _push

    return _push(store, ref)


def ensure_image(store: Store, ref: str, policy: str = "missing", platform: str = "") -> Iterator[PullEvent]:
    """What ``run``/``create`` do before creating: ``missing`` pulls when no local image answers to ``ref``,
    ``always`` pulls every time, ``never`` pulls nothing (the create then fails with 'No such image').
    Yields the pull's events (none when nothing is pulled); a ``status`` event ``Unable to find image 'x'
    locally`` (kind ``notice``) comes first when a missing image is pulled."""
    from dockyard.images import reference
    from dockyard.images.distribution import Progress

    if policy not in ("always", "missing", "never"):
        raise InvalidArgument(f"invalid pull option: '{policy}': must be one of \"always\", \"missing\" or "
                              "\"never\"")
    if policy == "never":
        return
    if policy == "missing":
        if _images(store).exists(ref):
            return
        r = reference.try_parse(ref)
        if r is None:
            return  # an ID or a malformed name: the create reports it
        shown = r.tagged().familiar()
        yield Progress("notice", f"Unable to find image '{shown}' locally")
        ref = str(r.tagged())  # as Docker's run: no "Using default tag" line
    yield from pull(store, ref, platform=platform)


def login(store: Store, server: str, username: str, password: str) -> str:
    """``docker login``: check the credentials against the registry (Unauthorized with Docker's message when
    refused), then store them (``~/.docker/config.json`` 0600, or its credential helper); returns where."""
    from dockyard.images.distribution import login as _login

    return _login(store, server, username, password)


def logout(server: str) -> tuple[str, bool]:
    """``docker logout``: (registry host, whether credentials were stored)."""
    from dockyard.images.distribution import logout as _logout

    return _logout(server)


def registry_host(server: str) -> str:
    from dockyard.images.distribution import registry_host as _host

    return _host(server)


def stored_username(server: str) -> str:
    """The user name stored for a registry, or ''."""
    from dockyard.images.auth import get_credentials

    c = get_credentials(registry_host(server))
    return c.username if c else ""

