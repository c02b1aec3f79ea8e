"""Hand-made manifest lists: ``dockyard manifest create|annotate|inspect|push|rm``, as the Docker CLI's.

Vocabulary: a *manifest list* (an OCI image index, or Docker's manifest list) names one image manifest per
platform by digest. A *draft* is a list being made here: its entries are kept under ``<root>/manifests/`` (one JSON
file per list, named by the sha256 of its normalised reference; written atomically) until ``push`` sends it.

An entry comes from a local image (dockyard's store holds images and indexes: a local index adds each of its
platforms) or, when no local image answers to the name, from the registry (its manifest is fetched and kept in
the draft; its platform is read from its config). Docker's CLI only knows registry images; here a local image
is looked up first, so a list can be made from images built on this machine and never pushed.

    create_list(store, "127.0.0.1:5000/app:1", ["app:amd64", "app:arm64"])
    annotate(store, "127.0.0.1:5000/app:1", "app:arm64", variant="v8")
    for ev in push_list(store, "127.0.0.1:5000/app:1"):
        ...                         # Progress events (images.distribution); the last is ``done``, text = digest

``push`` uploads each local entry's blobs and manifest to the list's repository, makes each registry entry's
blobs available there (a cross-repository mount, else a copy through this machine; entries from another
registry are refused as Docker does) and puts the list under its tag.
"""

from __future__ import annotations

import base64
import hashlib
import os

from dockyard import jsonc as json
from dockyard.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from dockyard.images.distribution import Progress
    from dockyard.images.reference import Reference
    from dockyard.images.store import Image
    from dockyard.state.db import Store

# os/arch pairs Go knows (Docker's manifest annotate refuses any other)
_VALID_OS_ARCH = {
    "aix": {"ppc64"}, "android": {"386", "amd64", "arm", "arm64"}, "darwin": {"amd64", "arm64"},
    "dragonfly": {"amd64"}, "freebsd": {"386", "amd64", "arm", "arm64", "riscv64"}, "illumos": {"amd64"},
    "ios": {"arm64"}, "js": {"wasm"}, "wasip1": {"wasm"},
    "linux": {"386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64",
              "ppc64le", "riscv64", "s390x"},
    "netbsd": {"386", "amd64", "arm", "arm64"}, "openbsd": {"386", "amd64", "arm", "arm64"},
    "plan9": {"386", "amd64", "arm"}, "solaris": {"amd64"}, "windows": {"386", "amd64", "arm", "arm64"},
}


def _parse(name: str) -> Reference:
    from dockyard.images import reference

    try:
        r = reference.parse(name)
    except Exception as e:  # noqa: BLE001 - reworded once, as Docker's
        raise InvalidArgument(f'invalid reference format: "{name}": {e}') from None
    return r.tagged() if r.name_only else r


def _draft_path(store: Store, list_ref: Reference) -> str:
    return store.path("manifests", hashlib.sha256(str(list_ref).encode()).hexdigest() + ".json")


def _load(store: Store, list_ref: Reference) -> dict[str, Any] | None:
    try:
        with open(_draft_path(store, list_ref), "rb") as f:
            data: dict[str, Any] = json.load(f)
    except FileNotFoundError:
        return None
    except ValueError:
        from dockyard.errors import CorruptContent

        raise CorruptContent(f"the stored manifest list {list_ref} is damaged") from None
    return data


def _save(store: Store, draft: dict[str, Any]) -> None:
    from dockyard.fsutil import atomic_write

    os.makedirs(store.path("manifests"), mode=0o700, exist_ok=True)
    atomic_write(_draft_path(store, _parse(draft["ref"])), json.dumps(draft, indent=1).encode(), 0o600)


def _client(store: Store, ref: Reference, insecure: bool, push: bool = False) -> Any:
    from dockyard.images.registry import RegistryClient, RegistryConfig

    cfg = RegistryConfig.load(store.root)
    if insecure:
        cfg.insecure.append(ref.domain)
    scope = f"repository:{ref.path}:pull" + (",push" if push else "")
    return RegistryClient.for_host(ref.domain, cfg, scopes=[scope])


def _platform_of(config: dict[str, Any]) -> dict[str, Any]:
    p: dict[str, Any] = {"architecture": config.get("architecture") or "", "os": config.get("os") or ""}
    for k in ("os.version", "variant"):
        if config.get(k):
            p[k] = config[k]
    if config.get("os.features"):
        p["os.features"] = list(config["os.features"])
    return p


# ---- entries --------------------------------------------------------------------------------------------------

def _local_entries(store: Store, name: str) -> list[dict[str, Any]] | None:
    """The entries a local image (or each platform of a local index) gives, or None when none answers."""
    from dockyard.images.store import ImageStore

    ist = ImageStore(store)
    try:
        if not ist.exists(name):
            return None
        im = ist.resolve(name)
    except NotFound:
        return None
    if not im.is_index:
        return [_local_entry(store, im, name, _platform_of(im.config))]
    out = []
    by_plat = dict(ist.members(im.id))
    for m in json.loads(im.index_manifest or "{}").get("manifests") or []:
        p = m.get("platform") or {}
        plat = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
        member = ist.get(by_plat.get(plat, ""))
        if member is not None:
            out.append(_local_entry(store, member, f"{name}@{m['digest']}", dict(p)))
    return out


def _local_entry(store: Store, im: Image, name: str, platform: dict[str, Any]) -> dict[str, Any]:
    from dockyard.content.store import ContentStore
    from dockyard.oci import image as oci

    cs = ContentStore(store)
    if not im.manifest_digest or not cs.has(im.manifest_digest):
        raise NotFound(f"manifest of image {name} is missing from the store")
    raw = cs.read_bytes(im.manifest_digest)
    media = json.loads(raw).get("mediaType") or oci.OCI_MANIFEST
    return {"ref": name, "source": "local", "image_id": im.id,
            "descriptor": {"mediaType": media, "digest": im.manifest_digest, "size": len(raw),
                           "platform": platform}}


def _registry_entry(store: Store, name: str, insecure: bool) -> dict[str, Any]:
    from dockyard.images.registry import RegistryError
    from dockyard.oci import image as oci

    ref = _parse(name)
    client = _client(store, ref, insecure)
    try:
        raw, media, digest = client.get_manifest(ref.path, ref.digest or ref.tag or "latest")
    except RegistryError as e:
        if e.status == 404:
            raise NotFound(f"No such image: {ref.familiar()} (neither local nor in its registry)") from None
        raise
    if media in oci.INDEX_TYPES:
        raise InvalidArgument(f"{ref.familiar()} is a manifest list")
    m = json.loads(raw)
    cdesc = oci.Descriptor.from_json(m.get("config"))
    from dockyard.images.distribution import fetch_config

    config = fetch_config(client, ref.path, cdesc)
    return {"ref": str(ref), "source": "registry", "raw": raw.decode(),
            "descriptor": {"mediaType": media, "digest": digest, "size": len(raw),
                           "platform": _platform_of(oci.decode_config(config))}}


def create_list(store: Store, list_name: str, images: list[str], amend: bool = False,
                insecure: bool = False) -> str:
    """``manifest create LIST IMAGE...``: a draft over the images (local first, else the registry); returns the
    list's reference. Conflict when the list exists and ``amend`` is not given (with it, entries are added or
    replace those of the same manifest digest)."""
    list_ref = _parse(list_name)
    if list_ref.digest:
        raise InvalidArgument(f"invalid reference for the manifest list {list_name}: a digest names no list")
    if not images:
        raise InvalidArgument('"manifest create" requires at least 2 arguments')
    draft = _load(store, list_ref)
    if draft is not None and not amend:
        raise Conflict(f"refusing to amend an existing manifest list with no --amend flag: {list_ref}")
    entries: list[dict[str, Any]] = list((draft or {}).get("entries") or [])
    for name in images:
        got = _local_entries(store, name)
        if got is None:
            got = [_registry_entry(store, name, insecure)]
        for e in got:
            entries = [x for x in entries if x["descriptor"]["digest"] != e["descriptor"]["digest"]]
            entries.append(e)
    _save(store, {"ref": str(list_ref), "entries": entries})
    return str(list_ref)


def _entry_for(draft: dict[str, Any], store: Store, image: str) -> dict[str, Any]:
    """The entry of a draft that ``image`` names: its name as given to create, its digest, or the local image
    (or registry reference) it resolves to."""
    entries = draft["entries"]
    for e in entries:
        if e["ref"] == image or e["descriptor"]["digest"] == image:
            return e
    want: set[str] = set()
    try:
        want.add(str(_parse(image)))
    except InvalidArgument:
        pass
    local = _local_entries(store, image)
    for le in local or []:
        want.add(le["descriptor"]["digest"])
    for e in entries:
        if e["ref"] in want or e["descriptor"]["digest"] in want:
            return e
    raise NotFound(f"manifest for image {image} does not exist in {draft['ref']}")


def annotate(store: Store, list_name: str, image: str, os_name: str = "", arch: str = "", variant: str = "",
             os_version: str = "", os_features: list[str] | None = None) -> None:
    """``manifest annotate LIST IMAGE``: set the platform fields given for the entry ``image`` names."""
    list_ref = _parse(list_name)
    draft = _load(store, list_ref)
    if draft is None:
        raise NotFound(f"No such manifest: {list_ref}")
    e = _entry_for(draft, store, image)
    p = dict(e["descriptor"].get("platform") or {})
    if os_name:
        p["os"] = os_name
    if arch:
        p["architecture"] = arch
    if variant:
        p["variant"] = variant
    if os_version:
        p["os.version"] = os_version
    if os_features:
        p["os.features"] = list(os_features)
    if p.get("architecture", "") not in _VALID_OS_ARCH.get(p.get("os", ""), set()):
        raise InvalidArgument(f"manifest entry for image has unsupported os/arch combination: "
                              f"{p.get('os', '')}/{p.get('architecture', '')}")
    e["descriptor"]["platform"] = {k: p[k] for k in ("architecture", "os", "os.version", "os.features",
                                                     "variant") if p.get(k)}
    _save(store, draft)


def _index_bytes(entries: list[dict[str, Any]]) -> tuple[bytes, str]:
    from dockyard.oci import image as oci

    docker = all(e["descriptor"]["mediaType"] == oci.DOCKER_MANIFEST for e in entries)
    media = oci.DOCKER_MANIFEST_LIST if docker else oci.OCI_INDEX
    body = {"schemaVersion": 2, "mediaType": media,
            "manifests": [{"mediaType": e["descriptor"]["mediaType"], "size": e["descriptor"]["size"],
                           "digest": e["descriptor"]["digest"], "platform": e["descriptor"]["platform"]}
                          for e in entries]}
    return oci.dumps(body), media


def _raw_of(store: Store, e: dict[str, Any]) -> bytes:
    if e["source"] == "registry":
        return str(e["raw"]).encode()
    from dockyard.content.store import ContentStore

    cs = ContentStore(store)
    digest = e["descriptor"]["digest"]
    if not cs.has(digest):
        raise NotFound(f"manifest {digest} of {e['ref']} is missing from the store (the image was removed)")
    return cs.read_bytes(digest)


def _verbose(store: Store, e: dict[str, Any]) -> dict[str, Any]:
    raw = _raw_of(store, e)
    m = json.loads(raw)
    key = "SchemaV2Manifest" if e["descriptor"]["mediaType"].startswith("application/vnd.docker") else "OCIManifest"
    return {"Ref": e["ref"], "Descriptor": e["descriptor"], "Raw": base64.b64encode(raw).decode(), key: m}


def inspect(store: Store, name: str, image: str = "", verbose: bool = False, insecure: bool = False) -> Any:
    """``manifest inspect [LIST] NAME``: with ``image``, that entry of the draft ``name``; else the draft
    ``name`` (the list push would send; verbose: one record per entry with its manifest), else what the
    registry serves for ``name``."""
    ref = _parse(name)
    draft = _load(store, ref) if not ref.digest else None
    if image:
        if draft is None:
            raise NotFound(f"No such manifest: {ref}")
        e = _entry_for(draft, store, image)
        return _verbose(store, e) if verbose else json.loads(_raw_of(store, e))
    if draft is not None:
        if verbose:
            return [_verbose(store, e) for e in draft["entries"]]
        return json.loads(_index_bytes(draft["entries"])[0])
    from dockyard.images.registry import RegistryError

    client = _client(store, ref, insecure)
    try:
        raw, _media, _digest = client.get_manifest(ref.path, ref.digest or ref.tag or "latest",
                                                   what=f"manifest for {ref.familiar()}")
    except RegistryError as e:
        if e.status == 404:
            raise NotFound(f"no such manifest: {ref.familiar()}") from None
        raise
    return json.loads(raw)


def push_list(store: Store, list_name: str, purge: bool = False, insecure: bool = False) -> Iterator[Progress]:
    """``manifest push LIST``: each entry's manifest (and blobs) into the list's repository, then the list under
    its tag. Events: ``status`` lines ``Pushed ref REPO@DIGEST with digest: DIGEST``, then ``done`` (text: the
    list's digest). ``purge`` removes the draft once pushed."""
    from dockyard.images.distribution import Progress

    list_ref = _parse(list_name)
    draft = _load(store, list_ref)
    if draft is None:
        raise NotFound(f"{list_ref} not found")
    entries = draft["entries"]
    if not entries:
        raise InvalidArgument(f"{list_ref}: the manifest list has no entries")
    for e in entries:
        if e["source"] == "registry" and _parse(e["ref"]).domain != list_ref.domain:
            raise InvalidArgument(f"cannot use source images from a different registry than the target image: "
                                  f"{_parse(e['ref']).domain} != {list_ref.domain}")
    client = _client(store, list_ref, insecure, push=True)
    for e in entries:
        yield from _push_entry(store, client, list_ref, e)
        yield Progress("status", f"Pushed ref {list_ref.name}@{e['descriptor']['digest']} with digest: "
                                 f"{e['descriptor']['digest']}")
    data, media = _index_bytes(entries)
    digest = client.put_manifest(list_ref.path, list_ref.tag or list_ref.digest or "latest", data, media)
    if purge:
        remove_lists(store, [str(list_ref)])
    yield Progress("done", text=digest)


def _push_entry(store: Store, client: Any, list_ref: Reference, e: dict[str, Any]) -> Iterator[Progress]:
    from dockyard.content.store import ContentStore
    from dockyard.images import distribution
    from dockyard.images.store import ImageStore
    from dockyard.oci import image as oci

    if e["source"] == "local":
        ist = ImageStore(store)
        im = ist.get(e["image_id"])
        if im is None:
            raise NotFound(f"No such image: {e['ref']} (removed since the list was made)")
        yield from distribution._push_image(client, ContentStore(store), list_ref, im,
                                            distribution._mount_sources(ist, list_ref), None)
        return
    src = _parse(e["ref"])
    raw = str(e["raw"]).encode()
    m = json.loads(raw)
    blobs = [oci.Descriptor.from_json(m["config"])] + [oci.Descriptor.from_json(x) for x in m.get("layers") or []]
    for d in blobs:
        if client.blob_exists(list_ref.path, d.digest):
            continue
        if src.path != list_ref.path and client.mount_blob(list_ref.path, d.digest, src.path):
            continue
        r = client.get_blob(src.path, d.digest)  # not mountable: through this machine
        try:
            client.upload_blob(list_ref.path, d.digest, d.size, r)
        finally:
            r.release_conn()
    client.put_manifest(list_ref.path, e["descriptor"]["digest"], raw, e["descriptor"]["mediaType"])


def remove_lists(store: Store, names: list[str]) -> list[tuple[str, Exception | None]]:
    """``manifest rm LIST...``: one (name, error or None) per list, going on past a missing one."""
    out: list[tuple[str, Exception | None]] = []
    for name in names:
        try:
            ref = _parse(name)
            os.unlink(_draft_path(store, ref))
            out.append((name, None))
        except FileNotFoundError:
            out.append((name, NotFound(f"No such manifest: {name}")))
        except InvalidArgument as e:
            out.append((name, e))
    return out
