"""``save`` and ``load``: image archives as ``docker save`` writes them, and the formats ``docker load`` reads.

Written (Docker 25+): one tar holding an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/*``)
*and* Docker's ``manifest.json`` + ``repositories`` pointing into the same blobs; layers are uncompressed.

Read: that format; the older Docker layout (``<id>/layer.tar``, ``<id>.json``, ``manifest.json``, symlinked
duplicate layers); OCI archives (``oci-layout`` + ``index.json``, gzip layers, nested indexes, one manifest per
platform: the host's is picked). The whole archive may itself be gzip-compressed.

An image index (multi-platform) is saved as Docker 28's containerd store saves it: ``index.json`` names the
index (with the tag annotations), the index and every platform's manifest, config and layers are blobs, and
``manifest.json`` lists the host platform's image under the tags (what loaders without index support take).
``load`` records an index listed in ``index.json`` whose archive holds two or more of its platforms as an index
again (the same bytes, so the same ID) over its platform images; one platform is loaded as that image, and
``load --platform`` keeps only the platform asked for.

Loading streams the archive once: every member is stored as a blob while it is read (small members stay in
memory), then layers are unpacked from the stored blobs and each image is recorded in one transaction. The image
lock is held shared for the whole load, so a concurrent ``rmi`` cannot delete a blob between its ingest and the
image that references it.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from dockyard import jsonc as json
from dockyard.errors import CorruptContent, InvalidArgument, NotFound
from dockyard.images import reference as refs
from dockyard.images.store import ImageStore, LayerRecord, images_lock
from dockyard.oci import image as oci

if TYPE_CHECKING:
    from dockyard.state.db import Store

SMALL = 1 << 20
CHUNK = 1 << 20


@dataclass
class Loaded:
    image_id: str
    tags: list[str] = field(default_factory=list)               # familiar
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (familiar tag, old image ID)


class _Members:
    """What the archive held: small files in memory, large ones already stored as blobs."""

    def __init__(self, store: Store) -> None:
        from dockyard.content.store import ContentStore

        self.cs = ContentStore(store)
        self.small: dict[str, bytes] = {}
        self.big: dict[str, str] = {}        # name -> digest of the stored blob
        self.links: dict[str, str] = {}

    def add(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        name = _norm(m.name)
        if m.issym() or m.islnk():
            target = m.linkname if m.islnk() else posixpath.join(posixpath.dirname(name), m.linkname)
            self.links[name] = _norm(target)
            return
        if not m.isreg():
            return
        f = tf.extractfile(m)
        assert f is not None
        expected = _digest_of_blob_name(name)
        if m.size <= SMALL:
            data = f.read()
            if len(data) != m.size:
                raise CorruptContent("invalid archive: unexpected end of data")
            self.small[name] = data
        else:
            digest, _ = self.cs.ingest(f, expected_digest=expected, expected_size=m.size)  # type: ignore[arg-type]
            self.big[name] = digest

    def _resolve(self, name: str) -> str:
        name = _norm(name)
        for _ in range(16):
            if name in self.links:
                name = self.links[name]
            else:
                break
        return name

    def has(self, name: str) -> bool:
        n = self._resolve(name)
        return n in self.small or n in self.big

    def read(self, name: str) -> bytes:
        n = self._resolve(name)
        if n in self.small:
            return self.small[n]
        if n in self.big:
            return self.cs.read_bytes(self.big[n])
        raise CorruptContent(f"invalid archive: {name} not found in the archive")

    def blob(self, name: str) -> tuple[str, int]:
        """Store the member as a blob (if it is not already) -> (digest, size)."""
        n = self._resolve(name)
        if n in self.big:
            d = self.big[n]
            return d, self.cs.size(d)
        if n in self.small:
            data = self.small[n]
            expected = _digest_of_blob_name(n)
            d = self.cs.put_bytes(data, expected)
            self.big[n] = d
            return d, len(data)
        raise CorruptContent(f"invalid archive: {name} not found in the archive")

    def read_digest(self, digest: str) -> bytes:
        return self.read("blobs/" + digest.replace(":", "/", 1))


def _norm(name: str) -> str:
    n = posixpath.normpath("/" + name).lstrip("/")
    return n


def _digest_of_blob_name(name: str) -> str | None:
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256" and refs.is_hex64(parts[2]):
        return "sha256:" + parts[2]
    return None


def _read_members(store: Store, stream: BinaryIO) -> _Members:
    mem = _Members(store)
    try:
        tf = tarfile.open(fileobj=stream, mode="r|*", bufsize=CHUNK)
    except tarfile.ReadError as e:
        msg = str(e)
        if "empty" in msg:
            raise InvalidArgument("invalid archive: the input is empty") from None
        raise InvalidArgument("invalid archive: not a tar file") from None
    except tarfile.TarError as e:
        raise InvalidArgument(f"invalid archive: {e}") from None
    try:
        for m in tf:
            mem.add(tf, m)
    except (tarfile.TarError, EOFError) as e:
        raise CorruptContent(f"invalid archive: {_tar_error(e)}") from None
    except OSError as e:
        if isinstance(e, (tarfile.TarError, EOFError)) or "CRC" in str(e) or "gzip" in str(e).lower():
            raise CorruptContent(f"invalid archive: {e}") from None
        raise
    return mem


def _tar_error(e: BaseException) -> str:
    s = str(e) or type(e).__name__
    if "unexpected end" in s or isinstance(e, EOFError):
        return "unexpected end of data (truncated file?)"
    return s


def _json(mem: _Members, name: str) -> Any:
    try:
        return json.loads(mem.read(name))
    except (ValueError, RecursionError):
        raise CorruptContent(f"invalid archive: {name} is not valid JSON") from None


def _is_gzip_or_compressed(mem: _Members, digest: str) -> bool:
    with mem.cs.open(digest) as f:
        head = f.read(6)
    return head.startswith(b"\x1f\x8b") or head.startswith(b"\x28\xb5\x2f\xfd") or head.startswith(b"BZh") \
        or head.startswith(b"\xfd7zXZ")


@dataclass
class _Plan:
    config: bytes
    layers: list[tuple[str, int, str, str]]   # (blob digest, size, media type, diff_id)
    manifest: bytes | None
    tags: list[str]


def _plans_docker(mem: _Members) -> list[_Plan]:
    manifest = _json(mem, "manifest.json")
    if not isinstance(manifest, list):
        raise CorruptContent("invalid archive: manifest.json is not a list")
    oci_manifests: dict[str, bytes] = {}
    if mem.has("index.json"):  # Docker 25+: keep the OCI manifest we were given, for stable digests
        try:
            found = _walk_index(mem, _json(mem, "index.json"), None)
        except NotFound:  # an index without this machine's platform (loaded whole by load)
            found = []
        for desc in found:
            raw = mem.read_digest(desc.digest)
            try:
                cfgd = json.loads(raw)["config"]["digest"]
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
            if isinstance(cfgd, str):
                oci_manifests.setdefault(cfgd, raw)
    plans = []
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise CorruptContent("invalid archive: manifest.json entry without Config")
        cfg_name, layer_names = entry["Config"], entry.get("Layers") or []
        repo_tags = entry.get("RepoTags") or []
        if not isinstance(layer_names, list) or not all(isinstance(n, str) for n in layer_names):
            raise CorruptContent("invalid archive: manifest.json Layers is not a list of file names")
        if not isinstance(repo_tags, list):
            raise CorruptContent("invalid archive: manifest.json RepoTags is not a list")
        config = mem.read(cfg_name)
        cfgj = _parse_config(config)
        diff_ids = cfgj["rootfs"]["diff_ids"]
        if len(diff_ids) != len(layer_names):
            raise CorruptContent(f"invalid archive: {cfg_name} lists {len(diff_ids)} layers, "
                                 f"manifest.json {len(layer_names)}")
        layers = []
        for name, diff_id in zip(layer_names, diff_ids):
            d, size = mem.blob(name)
            if _is_gzip_or_compressed(mem, d):
                layers.append((d, size, oci.OCI_LAYER_GZIP, diff_id))
            else:
                if d != diff_id:
                    raise CorruptContent(f"invalid archive: layer {name} does not match diff_id {diff_id}")
                layers.append((d, size, oci.OCI_LAYER, diff_id))
        from dockyard.ids import sha256_digest

        raw_manifest = oci_manifests.get(sha256_digest(config))
        if raw_manifest is not None:
            try:
                if [ly["digest"] for ly in json.loads(raw_manifest)["layers"]] != [x[0] for x in layers]:
                    raw_manifest = None
            except (ValueError, KeyError, TypeError):
                raw_manifest = None
        tags = [t for t in repo_tags if isinstance(t, str)]
        plans.append(_Plan(config, layers, raw_manifest, tags))
    return plans


def _parse_config(config: bytes) -> dict[str, Any]:
    try:
        return oci.decode_config(config)
    except CorruptContent as e:
        raise CorruptContent(f"invalid archive: {e}") from None


def _walk_index(mem: _Members, index: Any, platform: dict[str, str] | None,
                depth: int = 0) -> list[oci.Descriptor]:
    """Image manifests an index names (recursing into nested indexes; one per platform group)."""
    if depth > 8 or not isinstance(index, dict) or not isinstance(index.get("manifests") or [], list):
        raise CorruptContent("invalid archive: index.json is not valid")
    try:
        descs = [oci.Descriptor.from_json(d) for d in index.get("manifests") or []]
    except CorruptContent as e:
        raise CorruptContent(f"invalid archive: index: {e}") from None
    with_platform = [d for d in descs if d.platform and d.media_type in oci.MANIFEST_TYPES]
    out: list[oci.Descriptor] = []
    if with_platform and len(with_platform) == len([d for d in descs if d.media_type in oci.MANIFEST_TYPES]):
        want = platform or oci.host_platform()
        match = [d for d in with_platform if oci.platform_matches(want, d.platform)]
        if not match:
            raise NotFound(f"no image for platform {want['os']}/{want['architecture']} in the archive")
        # keep the annotations of the outer descriptor (names) on the chosen manifest
        out.append(match[0])
        return out
    for d in descs:
        if d.media_type in oci.INDEX_TYPES:
            try:
                nested = json.loads(mem.read_digest(d.digest))
            except (ValueError, RecursionError):
                raise CorruptContent(f"invalid archive: index {d.digest} is not valid JSON") from None
            inner = _walk_index(mem, nested, platform, depth + 1)
            for i in inner:
                ann = dict(i.annotations or {})
                ann.update(d.annotations or {})
                out.append(oci.Descriptor(i.media_type, i.digest, i.size, ann or None, i.platform))
        elif d.media_type in oci.MANIFEST_TYPES or not d.media_type:
            out.append(d)
    return out


def _name_from_annotations(ann: dict[str, str] | None) -> str | None:
    if not ann:
        return None
    full = ann.get(oci.ANNOT_CONTAINERD_NAME)
    if full and refs.try_parse(full):
        return full
    name = ann.get(oci.ANNOT_REF_NAME)
    if name and ("/" in name or ":" in name):
        r = refs.try_parse(name)
        if r is not None and not r.digest:
            return name
    return None


def _plans_oci(mem: _Members, platform: dict[str, str] | None) -> list[_Plan]:
    by_manifest: dict[str, _Plan] = {}
    for desc in _walk_index(mem, _json(mem, "index.json"), platform):
        raw = mem.read_digest(desc.digest)
        try:
            m = json.loads(raw)
            cfg_desc = oci.Descriptor.from_json(m["config"])
            layer_descs = [oci.Descriptor.from_json(x) for x in m.get("layers") or []]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, CorruptContent):
            raise CorruptContent(f"invalid archive: manifest {desc.digest} is not valid") from None
        name = _name_from_annotations(desc.annotations)
        if desc.digest in by_manifest:
            if name:
                by_manifest[desc.digest].tags.append(name)
            continue
        by_manifest[desc.digest] = _plan_of_manifest(mem, desc.digest, raw, cfg_desc, layer_descs, name)
    return list(by_manifest.values())


def _plan_of_manifest(mem: _Members, digest: str, raw: bytes, cfg_desc: oci.Descriptor,
                      layer_descs: list[oci.Descriptor], name: str | None) -> _Plan:
    config = mem.read_digest(cfg_desc.digest)
    from dockyard.ids import sha256_digest

    if sha256_digest(config) != cfg_desc.digest:
        raise CorruptContent(f"invalid archive: config {cfg_desc.digest} does not match its digest")
    diff_ids = _parse_config(config)["rootfs"]["diff_ids"]
    if len(diff_ids) != len(layer_descs):
        raise CorruptContent("invalid archive: manifest and config disagree on the number of layers")
    layers = []
    for ld, diff_id in zip(layer_descs, diff_ids):
        d, size = mem.blob("blobs/" + ld.digest.replace(":", "/", 1))
        layers.append((d, size, ld.media_type or oci.OCI_LAYER, diff_id))
    return _Plan(config, layers, raw, [name] if name else [])


@dataclass
class _IndexPlan:
    raw: bytes | None                   # the index as archived, when every manifest it lists is in the archive
    members: list[tuple[str, _Plan]]    # (os/arch[/variant], the image of that platform)
    tags: list[str]


def _plans_index(mem: _Members) -> list[_IndexPlan]:
    """The image indexes ``index.json`` names (Docker 28's containerd store and dockyard save a multi-platform
    image so; OCI layouts from buildx/skopeo too): each platform's image whose manifest is in the archive."""
    if not mem.has("index.json"):
        return []
    top = _json(mem, "index.json")
    out: list[_IndexPlan] = []
    for d in top.get("manifests") or [] if isinstance(top, dict) else []:
        if not isinstance(d, dict) or d.get("mediaType") not in oci.INDEX_TYPES:
            continue
        try:
            desc = oci.Descriptor.from_json(d)
            raw_index = mem.read_digest(desc.digest)
            idx = json.loads(raw_index)
            descs = [oci.Descriptor.from_json(x) for x in idx.get("manifests") or []]
        except (ValueError, AttributeError, TypeError, RecursionError, CorruptContent):
            raise CorruptContent(f"invalid archive: index {d.get('digest')} is not valid") from None
        members: list[tuple[str, _Plan]] = []
        for md in descs:
            p = md.platform or {}
            if md.media_type not in oci.MANIFEST_TYPES or not p.get("os") or not p.get("architecture") \
                    or not mem.has("blobs/" + md.digest.replace(":", "/", 1)):
                continue  # an attestation, a nested list, or a platform not saved
            raw = mem.read_digest(md.digest)
            try:
                m = json.loads(raw)
                cfg_desc = oci.Descriptor.from_json(m["config"])
                layer_descs = [oci.Descriptor.from_json(x) for x in m.get("layers") or []]
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError, CorruptContent):
                raise CorruptContent(f"invalid archive: manifest {md.digest} is not valid") from None
            plat = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
            members.append((plat, _plan_of_manifest(mem, md.digest, raw, cfg_desc, layer_descs, None)))
        if len(members) < 2:
            continue  # one platform: loaded as that image, as before (the classic store's way)
        name = _name_from_annotations(desc.annotations)
        whole = len(members) == len(descs)
        named = next((x for x in out if x.raw == raw_index and whole), None)
        if named is not None:  # the same index under another name
            named.tags += [name] if name else []
            continue
        out.append(_IndexPlan(raw_index if whole else None, members, [name] if name else []))
    return out


def load(store: Store, stream: BinaryIO, platform: dict[str, str] | None = None) -> list[Loaded]:
    """Load every image of an archive (see the module docstring); returns what was loaded, in archive order."""
    from dockyard.snapshots.store import SnapshotStore

    images = ImageStore(store)
    ss = SnapshotStore(store)
    with images_lock(store, exclusive=False):
        mem = _read_members(store, stream)
        if mem.has("manifest.json"):
            plans = _plans_docker(mem)
        elif mem.has("index.json"):
            try:
                plans = _plans_oci(mem, platform)
            except NotFound:  # an index without this machine's platform: loaded whole below
                if platform is not None or not _plans_index(mem):
                    raise
                plans = []
        elif mem.has("repositories"):
            raise InvalidArgument("invalid archive: the pre-1.10 Docker format (no manifest.json) is not supported")
        else:
            raise InvalidArgument("invalid archive: no manifest.json or index.json (not an image archive?)")
        indexes = _plans_index(mem) if platform is None else []
        if indexes:  # manifest.json's entry for an index (its host image) keeps no tag of the index's
            taken = {str(refs.parse_tagged(t)) for ip in indexes for t in ip.tags}
            for p in plans:
                p.tags = [t for t in p.tags if str(refs.parse_tagged(t)) not in taken]
            configs = {mp.config for ip in indexes for _, mp in ip.members}
            plans = [p for p in plans if p.tags or p.config not in configs]
        if not plans and not indexes:
            raise InvalidArgument("invalid archive: it holds no image")
        for p in plans:  # validate every tag before changing anything
            p.tags = [str(refs.parse_tagged(t)) for t in p.tags]
        for ip in indexes:
            ip.tags = [str(refs.parse_tagged(t)) for t in ip.tags]
        out: list[Loaded] = []
        for ip in indexes:
            members = [(plat, _record(images, ss, mem, mp)[0]) for plat, mp in ip.members]
            index_id, replaced = images.add_index(members, ip.tags, raw=ip.raw)
            out.append(Loaded(index_id, [refs.familiar(t) for t in ip.tags], replaced))
        for p in plans:
            image_id, replaced = _record(images, ss, mem, p)
            out.append(Loaded(image_id, [refs.familiar(t) for t in p.tags], replaced))
    return out


def _record(images: ImageStore, ss: Any, mem: _Members, p: _Plan) -> tuple[str, list[tuple[str, str]]]:
    """Unpack a planned image's layers and record it (with its tags)."""
    parent: str | None = None
    records: list[LayerRecord] = []
    for digest, size, mt, diff_id in p.layers:
        with mem.cs.open(digest) as f:
            snap = ss.apply_layer(parent, f, expected_diff_id=diff_id)
        parent = snap.chain_id
        records.append(LayerRecord(digest, diff_id, size, mt))
    return images.add(p.config, records, p.manifest, tags=p.tags)


# -- save -----------------------------------------------------------------------------------------------------

def _select(images: ImageStore, names: list[str]) -> list[tuple[str, list[str]]]:
    """[(image ID, normalised tags to record)] in first-mention order."""
    order: list[str] = []
    tags: dict[str, list[str]] = {}

    def want(iid: str, tag: str | None) -> None:
        if iid not in tags:
            order.append(iid)
            tags[iid] = []
        if tag and tag not in tags[iid]:
            tags[iid].append(tag)

    for name in names:
        ref = refs.try_parse(name) if not name.startswith("sha256:") else None
        if ref is not None and ref.name_only:
            from dockyard.state.db import prefix_range

            rows = images.store.query("SELECT ref, image_id FROM tags WHERE ref >= ? AND ref < ? ORDER BY ref",
                                      prefix_range(ref.name + ":"))
            rows = [r for r in rows if r[0].rsplit(":", 1)[0] == ref.name]
            if rows:
                for r, iid in rows:
                    want(iid, r)
                continue
        im = images.resolve(name)
        tag = None
        if ref is not None and not im.id[7:].startswith(name):
            if ref.digest is None:
                tag = str(ref.tagged())
        want(im.id, tag)
    return [(i, tags[i]) for i in order]


class _TarWriter:
    """A minimal, deterministic USTAR writer onto a binary stream."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def _header(self, name: str, size: int, type_: bytes, mode: int) -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.type, ti.mode, ti.mtime = size, type_, mode, 0
        ti.uname = ti.gname = ""
        self.out.write(ti.tobuf(tarfile.USTAR_FORMAT))

    def dir(self, name: str) -> None:
        self._header(name, 0, tarfile.DIRTYPE, 0o755)

    def file(self, name: str, data: bytes) -> None:
        self._header(name, len(data), tarfile.REGTYPE, 0o644)
        self.out.write(data)
        self._pad(len(data))

    def copy(self, name: str, src: IO[bytes], size: int, digest: str, blob: str) -> None:
        """Stream ``size`` bytes of ``src`` as ``name``, hashing as they pass: a blob whose bytes no longer match
        ``digest`` (bit rot, a file changed by hand) fails the save instead of going out under its name."""
        import hashlib

        h = hashlib.sha256()
        self._header(name, size, tarfile.REGTYPE, 0o644)
        left = size
        while left:
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                raise CorruptContent(f"blob {blob} is shorter than recorded: the stored content is damaged")
            h.update(chunk)
            self.out.write(chunk)
            left -= len(chunk)
        if src.read(1) or "sha256:" + h.hexdigest() != digest:
            raise CorruptContent(f"blob {blob} does not match its digest {digest}: the stored content is damaged "
                                 "(remove the image and pull or load it again)")
        self._pad(size)

    def _pad(self, n: int) -> None:
        if n % 512:
            self.out.write(b"\0" * (512 - n % 512))

    def close(self) -> None:
        self.out.write(b"\0" * 1024)


def _uncompressed_layer(store: Store, digest: str, diff_id: str) -> str:
    """Decompress a stored compressed layer into a temp file under ``tmp/``; the caller unlinks it."""
    import tempfile

    from dockyard.content.store import ContentStore
    from dockyard.snapshots.compression import open_layer

    fd, path = tempfile.mkstemp(dir=store.tmp, prefix="save-")
    with os.fdopen(fd, "wb") as out, ContentStore(store).open(digest) as src:
        r = open_layer(src)
        try:
            while chunk := r.read(CHUNK):
                out.write(chunk)
        finally:
            r.close()
    if r.digest() != diff_id:
        os.unlink(path)
        raise CorruptContent(f"layer {digest} does not match its diff_id {diff_id}")
    return path


def save(store: Store, names: list[str], out: IO[bytes]) -> None:
    """Write ``names`` (references, IDs; a bare repository means all its tags) as a Docker 25 archive."""
    from dockyard.content.store import ContentStore
    from dockyard.ids import sha256_digest

    images = ImageStore(store)
    cs = ContentStore(store)
    selected = _select(images, names)
    w = _TarWriter(out)
    w.dir("blobs/")
    w.dir("blobs/sha256/")
    written: set[str] = set()
    temps: list[str] = []
    index: list[oci.Descriptor] = []
    docker_manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    try:
        def write_image(iid: str) -> tuple[oci.Descriptor, list[oci.Descriptor]]:
            """Write one image's blobs (once): its manifest's descriptor and its layers' descriptors."""
            im = images.get(iid)
            if im is None:
                raise NotFound(f"No such image: {iid}")
            layer_descs: list[oci.Descriptor] = []
            for ly in im.layers:
                if oci.is_gzip_type(ly.media_type) or ly.digest != ly.diff_id:
                    path = _uncompressed_layer(store, ly.digest, ly.diff_id)
                    temps.append(path)
                    size = os.path.getsize(path)
                    if ly.diff_id not in written:
                        with open(path, "rb") as f:  # decompressed and checked against diff_id just now
                            w.copy("blobs/sha256/" + ly.diff_id[7:], f, size, ly.diff_id, ly.digest)
                else:
                    size = ly.size
                    if ly.diff_id not in written:
                        with cs.open(ly.digest) as f:
                            w.copy("blobs/sha256/" + ly.diff_id[7:], f, size, ly.digest, ly.digest)
                written.add(ly.diff_id)
                layer_descs.append(oci.Descriptor(oci.OCI_LAYER, ly.diff_id, size))
            config = cs.read_bytes(iid)
            if sha256_digest(config) != iid:
                raise CorruptContent(f"blob {iid} does not match its digest: the stored content is damaged "
                                     "(remove the image and pull or load it again)")
            if iid not in written:
                w.file("blobs/sha256/" + iid[7:], config)
                written.add(iid)
            manifest = None
            if im.manifest_digest and cs.has(im.manifest_digest):
                raw = cs.read_bytes(im.manifest_digest)
                if sha256_digest(raw) != im.manifest_digest:
                    raise CorruptContent(f"blob {im.manifest_digest} does not match its digest: the stored content "
                                         "is damaged (remove the image and pull or load it again)")
                try:
                    m = json.loads(raw)
                    if [d["digest"] for d in m["layers"]] == [d.digest for d in layer_descs] and \
                            m["config"]["digest"] == iid:
                        manifest = raw
                except (ValueError, KeyError, TypeError):
                    manifest = None
            if manifest is None:
                manifest = oci.manifest_bytes(oci.Descriptor(oci.OCI_CONFIG, iid, len(config)), layer_descs)
            mdig = sha256_digest(manifest)
            if mdig not in written:
                w.file("blobs/sha256/" + mdig[7:], manifest)
                written.add(mdig)
            mtype = json.loads(manifest).get("mediaType") or oci.OCI_MANIFEST
            return oci.Descriptor(mtype, mdig, len(manifest)), layer_descs

        for iid, tags in selected:
            im = images.get(iid)
            if im is None:
                raise NotFound(f"No such image: {iid}")
            if im.is_index:  # every platform's image, then the index (rewritten if a manifest had to be)
                members = dict(images.members(iid))
                try:
                    host: str | None = images.resolve_image(iid).id
                except NotFound:  # no image for this machine: the first platform's, for manifest.json
                    host = next(iter(members.values()), None)
                idx = json.loads(im.index_manifest or "{}")
                host_layers: list[oci.Descriptor] = []
                changed = False
                for m in idx.get("manifests") or []:
                    p = m.get("platform") or {}
                    plat = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
                    if plat not in members:
                        continue
                    desc, lds = write_image(members[plat])
                    if (m.get("digest"), m.get("size")) != (desc.digest, desc.size):
                        changed = True
                        m["digest"], m["size"], m["mediaType"] = desc.digest, desc.size, desc.media_type
                    if members[plat] == host:
                        host_layers = lds
                data = oci.dumps(idx) if changed else (im.index_manifest or "").encode()
                top = oci.Descriptor(idx.get("mediaType") or oci.OCI_INDEX, sha256_digest(data), len(data))
                if top.digest not in written:
                    w.file("blobs/sha256/" + top.digest[7:], data)
                    written.add(top.digest)
                mtype, mdig, msize, layer_descs = top.media_type, top.digest, top.size, host_layers
                config_id = host
            else:
                desc, layer_descs = write_image(iid)
                mtype, mdig, msize, config_id = desc.media_type, desc.digest, desc.size, iid
            familiar_tags = []
            for t in tags:
                r = refs.parse(t)
                familiar_tags.append(r.familiar())
                index.append(oci.Descriptor(mtype, mdig, msize, {
                    oci.ANNOT_CONTAINERD_NAME: t, oci.ANNOT_REF_NAME: r.tag or "latest"}))
                if layer_descs:
                    repositories.setdefault(r.familiar_name, {})[r.tag or "latest"] = layer_descs[-1].digest[7:]
            if not tags:
                index.append(oci.Descriptor(mtype, mdig, msize))
            if config_id is not None:  # an index: its host platform's image, for loaders without index support
                docker_manifest.append({"Config": "blobs/sha256/" + config_id[7:], "RepoTags": familiar_tags or None,
                                        "Layers": ["blobs/sha256/" + d.digest[7:] for d in layer_descs]})
        w.file("index.json", oci.index_bytes(index) + b"\n")
        w.file("manifest.json", oci.dumps(docker_manifest) + b"\n")
        w.file("oci-layout", oci.dumps(oci.LAYOUT_VERSION))
        if repositories:
            w.file("repositories", oci.dumps(repositories) + b"\n")
        w.close()
        out.flush()
    finally:
        for t in temps:
            try:
                os.unlink(t)
            except FileNotFoundError:
                pass


def open_input(path: str | None) -> BinaryIO:
    """The archive to read: a file, or stdin (refusing a terminal, as Docker does)."""
    import sys

    if path:
        try:
            return open(path, "rb")
        except OSError as e:
            from dockyard.errors import from_oserror

            raise from_oserror(f"open {path}", e) from None
    if sys.stdin.isatty():
        raise InvalidArgument("requested load from stdin, but stdin is empty")
    return sys.stdin.buffer  # type: ignore[return-value]
