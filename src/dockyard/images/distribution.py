"""Pull and push: images between the local store and a registry, as streams of progress events.

``pull(store, "busybox")`` resolves the reference (``docker.io/library/busybox:latest``), fetches the manifest (an
index or manifest list selects the host's platform, or ``platform``), fetches the config, downloads the layers it
does not have in parallel straight into the content store (digest and size verified, retried on a reset or a 5xx),
unpacks them in order into snapshots, and records the image, its tag and its repo digest in ONE transaction.
Nothing is visible until that transaction; a failure leaves at most verified blobs a later pull reuses.

``push(store, "127.0.0.1:5000/x:1")`` uploads what the registry lacks (HEAD first; a cross-repository mount when
another repository of the same registry has the blob), then the manifest under the tag, and records the repo
digest.

Both yield ``Progress`` events in Docker's words (``Pulling fs layer``, ``Downloading``, ``Pull complete``,
``Preparing``, ``Pushed``...); ``kind`` is ``status`` (a line), ``layer`` (per-layer state, with ``current``/
``total`` bytes while moving) or ``done`` (``text`` is the final reference).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from dockyard import jsonc as json
from dockyard.errors import CorruptContent, DockyardError, InvalidArgument, NotFound, SystemFailure
from dockyard.images import reference as refs
from dockyard.images.registry import RegistryClient, RegistryConfig, RegistryError, Unauthorized
from dockyard.oci import image as oci

if TYPE_CHECKING:
    from dockyard.images.reference import Reference
    from dockyard.state.db import Store

PARALLEL = 3            # layers downloaded at once (Docker's max-concurrent-downloads)
PUSH_PARALLEL = 5       # blobs uploaded at once (Docker's max-concurrent-uploads)
ATTEMPTS = 3            # per blob, for resets, truncations and 5xx answers
PUSH_CHUNK = int(os.environ.get("DOCKYARD_PUSH_CHUNK", str(64 << 20)))  # above this, chunked upload


class Progress:
    """One progress event. ``id``: a layer's short digest (12 hex) for ``layer`` events."""

    __slots__ = ("kind", "id", "status", "current", "total", "text")

    def __init__(self, kind: str, status: str = "", id: str = "", current: int = 0, total: int = 0,
                 text: str = "") -> None:
        self.kind = kind
        self.status = status
        self.id = id
        self.current = current
        self.total = total
        self.text = text

    def __repr__(self) -> str:
        return f"Progress({self.kind!r}, {self.status!r}, id={self.id!r}, {self.current}/{self.total})"


def _short(digest: str) -> str:
    return digest[7:19]


class _Cancelled(Exception):
    pass


class _Counting:
    """A response read through by ``ingest``: reports bytes and stops when the pull is cancelled."""

    def __init__(self, src: Any, report: Callable[[int], None], cancel: threading.Event,
                 pipe: _Pipe | None = None) -> None:
        self.src = src
        self.report = report
        self.cancel = cancel
        self.pipe = pipe
        self.n = 0
        self.last = 0.0

    def read(self, n: int = -1) -> bytes:
        if self.cancel.is_set():
            raise _Cancelled()
        data: bytes = self.src.read(n)
        if data and self.pipe is not None:
            self.pipe.feed(data)
        self.n += len(data)
        now = time.monotonic()
        if now - self.last > 0.1 or not data:
            self.last = now
            self.report(self.n)
        return data


class _Restart(Exception):
    pass


class _Pipe:
    """One layer's bytes from its download to the unpacking that reads them at the same time (``read``).

    Chunks are buffered in memory: without backpressure up to ``LIMIT`` before the reader starts (beyond, the
    pipe gives up and the reader unpacks the stored blob once downloaded), with backpressure after. EOF comes
    only once the download's digest is verified (``close(True)``); a failed attempt that had fed bytes, a
    failed download or a detached reader break the pipe (the reader gets ``_Restart``)."""

    LIMIT = 32 << 20

    def __init__(self) -> None:
        import collections

        self.cond = threading.Condition()
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.off = 0          # read position in chunks[0]
        self.fed = 0
        self.state = "open"   # open, eof, broken
        self.reading = False

    def feed(self, data: bytes) -> None:
        with self.cond:
            if self.state != "open":
                return
            if not self.reading and self.buffered + len(data) > self.LIMIT:
                self._break()
                return
            while self.reading and self.buffered >= self.LIMIT and self.state == "open":
                self.cond.wait()
            if self.state == "open":
                self.chunks.append(data)
                self.buffered += len(data)
                self.fed += len(data)
                self.cond.notify_all()

    def restart(self) -> None:
        """An attempt failed: the bytes start again from 0, which the reader cannot follow if it had some."""
        with self.cond:
            if self.fed:
                self._break()

    def close(self, ok: bool) -> None:
        with self.cond:
            if self.state == "open":
                if ok:
                    self.state = "eof"
                    self.cond.notify_all()
                else:
                    self._break()

    def detach(self) -> None:
        with self.cond:
            if self.state == "open":
                self._break()

    def _break(self) -> None:
        self.state = "broken"
        self.chunks.clear()
        self.buffered = self.off = 0
        self.cond.notify_all()

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        with self.cond:
            self.reading = True
            while not self.chunks and self.state == "open":
                self.cond.wait()
            if self.chunks:
                head = self.chunks[0]
                if n < 0 or self.off + n >= len(head):
                    data = head[self.off:] if self.off else head
                    self.chunks.popleft()
                    self.off = 0
                else:
                    data = head[self.off:self.off + n]
                    self.off += n
                self.buffered -= len(data)
                self.cond.notify_all()
                return data
            if self.state == "eof":
                return b""
            raise _Restart()


def _pull_error(ref: Reference, e: RegistryError) -> DockyardError:
    shown = ref.familiar_name
    if isinstance(e, Unauthorized) or e.code in ("DENIED", "UNAUTHORIZED") or e.status == 403:
        return RegistryError(f"pull access denied for {shown}, repository does not exist or may require "
                             f"'docker login': {e}", e.status, e.code)
    if e.status == 404:
        what = ref.familiar()
        return NotFound(f"manifest for {what} not found: manifest unknown: "
                        f"{str(e).rsplit(': ', 1)[-1]}")
    return e


def _client(store: Store, ref: Reference, push: bool = False) -> RegistryClient:
    cfg = RegistryConfig.load(store.root)
    scope = f"repository:{ref.path}:pull" + (",push" if push else "")
    return RegistryClient.for_host(ref.domain, cfg, scopes=[scope], use_mirrors=not push)


# ---- pull ---------------------------------------------------------------------------------------------------

def list_tags(client: RegistryClient, repo: str) -> list[str]:
    r = client.request("GET", f"/v2/{repo}/tags/list", scopes=[f"repository:{repo}:pull"],
                       what=f"tags of {repo}")
    try:
        tags = json.loads(r.data).get("tags") or []
    except (ValueError, AttributeError):
        raise CorruptContent(f"invalid tag list from {client.host}") from None
    return sorted(t for t in tags if isinstance(t, str) and refs.tag_ok(t))


def select_platform(index: dict[str, Any], want: dict[str, str]) -> oci.Descriptor:
    """The manifest of an index for platform ``want`` (NotFound as Docker words it)."""
    try:
        descs = [oci.Descriptor.from_json(d) for d in index.get("manifests") or []]
    except CorruptContent as e:
        raise CorruptContent(f"invalid index: {e}") from None
    for d in descs:
        if d.media_type in oci.MANIFEST_TYPES and oci.platform_matches(want, d.platform):
            return d
    shown = want["os"] + "/" + want["architecture"] + ("/" + want["variant"] if want.get("variant") else "")
    raise NotFound(f"no matching manifest for {shown} in the manifest list entries")


def resolve_manifest(client: RegistryClient, ref: Reference, platform: dict[str, str] | None
                     ) -> tuple[str, bytes, str, bytes]:
    """(top digest, top bytes, image manifest digest, image manifest bytes) for a reference."""
    repo = ref.path
    target = ref.digest or ref.tag or "latest"
    try:
        raw, media, digest = client.get_manifest(repo, target)
    except RegistryError as e:
        raise _pull_error(ref, e) from None
    top_digest, top = digest, raw
    for _ in range(4):
        if media not in oci.INDEX_TYPES:
            break
        d = select_platform(json.loads(raw), platform or oci.host_platform())
        raw, media, digest = client.get_manifest(repo, d.digest)
    if media not in oci.MANIFEST_TYPES:
        raise InvalidArgument(f"{ref.familiar()}: unsupported manifest media type {media!r}")
    return top_digest, top, digest, raw


def pull(store: Store, name: str, platform: str = "", all_tags: bool = False) -> Iterator[Progress]:
    """``docker pull``: events as the module docstring says; raises DockyardError subclasses."""
    ref = refs.parse(name)
    plat = oci.parse_platform(platform) if platform else None
    if all_tags:
        if not ref.name_only:
            raise InvalidArgument("tag can't be used with --all-tags/-a")
        client = _client(store, ref)
        try:
            tags = list_tags(client, ref.path)
        except RegistryError as e:
            raise _pull_error(ref, e) from None
        yield Progress("status", f"Pulling repository {ref.familiar_name}")
        for t in tags:
            yield from _pull_one(store, client, ref.with_tag(t), plat, all_tags=True)
        yield Progress("done", text=ref.name)
        return
    if ref.name_only:
        yield Progress("status", "Using default tag: latest")
        ref = ref.tagged()
    client = _client(store, ref)
    yield from _pull_one(store, client, ref, plat)


def fetch_config(client: RegistryClient, repo: str, cdesc: oci.Descriptor) -> bytes:
    """An image's config blob from ``repo`` of the registry, checked against its descriptor (size and digest)."""
    from dockyard.ids import sha256_digest

    r = client.get_blob(repo, cdesc.digest)
    try:
        config: bytes = r.read(cdesc.size + 1)
    finally:
        r.release_conn()
    if len(config) != cdesc.size or sha256_digest(config) != cdesc.digest:
        raise CorruptContent(f"image config verification failed for digest {cdesc.digest}")
    return config


def _pull_one(store: Store, client: RegistryClient, ref: Reference, plat: dict[str, str] | None,
              all_tags: bool = False) -> Iterator[Progress]:
    from dockyard.content.store import ContentStore
    from dockyard.images.store import ImageStore, LayerRecord, images_lock
    from dockyard.snapshots.store import SnapshotStore, chain_id_of

    cs, ss, ist = ContentStore(store), SnapshotStore(store), ImageStore(store)
    yield Progress("status", f"{ref.tag or ref.digest}: Pulling from {ref.path}")
    top_digest, _top, _mdigest, mraw = resolve_manifest(client, ref, plat)
    try:
        m = json.loads(mraw)
        cdesc = oci.Descriptor.from_json(m["config"])
        ldescs = [oci.Descriptor.from_json(x) for x in m.get("layers") or []]
    except (ValueError, KeyError, TypeError, AttributeError, CorruptContent):
        raise CorruptContent(f"invalid manifest for {ref.familiar()}") from None
    if cdesc.size > oci_config_max():
        raise CorruptContent(f"image config of {ref.familiar()} is too large")
    with images_lock(store, exclusive=False):
        if cs.has(cdesc.digest):
            config = cs.read_bytes(cdesc.digest)
        else:
            config = fetch_config(client, ref.path, cdesc)
        cfg = oci.decode_config(config)
        if plat and not oci.platform_matches(plat, {"os": cfg.get("os"), "architecture": cfg.get("architecture"),
                                                    "variant": cfg.get("variant")}):
            want = plat["os"] + "/" + plat["architecture"]
            raise InvalidArgument(f"image with reference {ref.familiar()} was found but does not match the "
                                  f"specified platform: wanted {want}, actual: {cfg.get('os')}/"
                                  f"{cfg.get('architecture')}")
        diff_ids = cfg["rootfs"]["diff_ids"]
        if len(diff_ids) != len(ldescs):
            raise CorruptContent(f"invalid image {ref.familiar()}: the manifest has {len(ldescs)} layers, "
                                 f"the config {len(diff_ids)}")
        tag_ref = str(ref.with_tag(ref.tag)) if ref.tag else None
        old = ist.lookup_id(tag_ref) if tag_ref else ist.lookup_id(str(ref))
        chains: list[str] = []
        parent: str | None = None
        for d in diff_ids:
            parent = chain_id_of(parent, d)
            chains.append(parent)
        have_snap = [_snapshot_present(ss, c) for c in chains]
        need = []
        for i, ld in enumerate(ldescs):
            if have_snap[i]:
                yield Progress("layer", "Already exists", _short(ld.digest))
            else:
                yield Progress("layer", "Pulling fs layer", _short(ld.digest))
                if not cs.has(ld.digest) and ld.digest not in {x.digest for x in need}:
                    need.append(ld)
        events: queue.Queue[Progress | None] = queue.Queue()
        cancel = threading.Event()
        live: set[Any] = set()  # responses being read: shut down on cancel so no worker waits on a socket
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="pull")
        try:
            futures = {}
            pipes = {ld.digest: _Pipe() for ld in need}
            for ld in need:
                f = pool.submit(_download, client, ref.path, ld, cs, events.put, cancel, live, pipes[ld.digest])
                f.add_done_callback(lambda _f: events.put(None))
                futures[ld.digest] = f
            if len(need) > PARALLEL:
                for ld in need[PARALLEL:]:
                    yield Progress("layer", "Waiting", _short(ld.digest))
            records: list[LayerRecord] = []
            parent = None
            for i, ld in enumerate(ldescs):
                fut = futures.get(ld.digest)
                snap = None
                pipe = pipes.pop(ld.digest, None)
                if pipe is not None and not have_snap[i]:
                    # unpack while it downloads: the bytes as they arrive, EOF once the digest is verified
                    while not events.empty():
                        ev = events.get_nowait()
                        if ev is not None:
                            yield ev
                    yield Progress("layer", "Extracting", _short(ld.digest), 0, ld.size)
                    try:
                        snap = ss.apply_layer(parent, pipe, expected_diff_id=diff_ids[i])  # type: ignore[arg-type]
                    except Exception:  # noqa: BLE001 - a retried download, a spilled buffer, a bad blob:
                        snap = None    # the stored blob (verified below) is unpacked again and says what failed
                    finally:
                        pipe.detach()
                if fut is not None:
                    while not fut.done():
                        ev = events.get()
                        if ev is not None:
                            yield ev
                    fut.result()
                while not events.empty():  # events of other layers that arrived meanwhile
                    ev = events.get_nowait()
                    if ev is not None:
                        yield ev
                if not have_snap[i]:
                    if snap is None:
                        yield Progress("layer", "Extracting", _short(ld.digest), 0, ld.size)
                        with cs.open(ld.digest) as fh:
                            snap = ss.apply_layer(parent, fh, expected_diff_id=diff_ids[i])
                    yield Progress("layer", "Pull complete", _short(ld.digest))
                    parent = snap.chain_id
                else:
                    parent = chains[i]
                records.append(LayerRecord(ld.digest, diff_ids[i], ld.size, ld.media_type or oci.OCI_LAYER))
        except BaseException:
            cancel.set()
            for p in pipes.values():
                p.detach()
            for r in list(live):
                try:
                    r.shutdown()
                except Exception:  # noqa: BLE001 - best effort: the worker sees the closed socket
                    pass
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        from dockyard.images.store import with_retry

        image_id, _ = with_retry(lambda: ist.add(config, records, mraw, tags=[tag_ref] if tag_ref else [],
                                                 repo_digests=[f"{ref.name}@{top_digest}"]))
    yield Progress("status", f"Digest: {top_digest}")
    shown = ref.familiar()
    if old == image_id:
        yield Progress("status", f"Status: Image is up to date for {shown}")
    else:
        yield Progress("status", f"Status: Downloaded newer image for {shown}")
    if not all_tags:
        yield Progress("done", text=str(ref))


def _snapshot_present(ss: Any, chain_id: str) -> bool:
    s = ss.get(chain_id)
    return s is not None and os.path.isdir(s.path)


def oci_config_max() -> int:
    return 8 << 20


def _download(client: RegistryClient, repo: str, ld: oci.Descriptor, cs: Any, emit: Callable[[Progress], None],
              cancel: threading.Event, live: set[Any], pipe: _Pipe | None = None) -> None:
    """Fetch one blob into the content store, verified; retried a few times on transient failures. The bytes
    are also fed to ``pipe`` (the unpacking that follows the download), which ends once the digest is verified
    and breaks when an attempt fails after it got bytes."""
    ok = False
    try:
        _download_attempts(client, repo, ld, cs, emit, cancel, live, pipe)
        ok = True
    finally:
        if pipe is not None:
            pipe.close(ok)


def _download_attempts(client: RegistryClient, repo: str, ld: oci.Descriptor, cs: Any,
                       emit: Callable[[Progress], None], cancel: threading.Event, live: set[Any],
                       pipe: _Pipe | None) -> None:
    from dockyard.images.registry import import_urllib3

    urllib3 = import_urllib3()
    sid = _short(ld.digest)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            r = client.get_blob(repo, ld.digest)
            live.add(r)
            try:
                if cancel.is_set():
                    raise _Cancelled()
                body = _Counting(r, lambda n: emit(Progress("layer", "Downloading", sid, n, ld.size)), cancel,
                                 pipe)
                cs.ingest(body, expected_digest=ld.digest, expected_size=ld.size)  # type: ignore[arg-type]
            finally:
                live.discard(r)
                r.release_conn()
            emit(Progress("layer", "Verifying Checksum", sid))
            emit(Progress("layer", "Download complete", sid))
            return
        except _Cancelled:
            return
        except (urllib3.exceptions.HTTPError, SystemFailure, OSError, CorruptContent) as e:
            if cancel.is_set():
                return
            if isinstance(e, CorruptContent) and not str(e).startswith("size mismatch"):
                raise CorruptContent(f"filesystem layer verification failed for digest {ld.digest}") from None
            err: Exception = e
        except RegistryError as e:
            if cancel.is_set():
                return
            if e.status < 500:
                raise
            err = e
        if pipe is not None:
            pipe.restart()
        if attempt == ATTEMPTS:
            raise SystemFailure(f"downloading {ld.digest}: {_err_text(err)} (after {ATTEMPTS} attempts)")
        emit(Progress("layer", f"Retrying in {attempt} second{'s' if attempt > 1 else ''}", sid))
        if cancel.wait(attempt * 0.5):
            return


def _err_text(e: Exception) -> str:
    return str(getattr(e, "reason", None) or e).splitlines()[0] if str(e) else type(e).__name__


# ---- push ---------------------------------------------------------------------------------------------------

def push(store: Store, name: str) -> Iterator[Progress]:
    """``docker push``: the image named ``name`` (``:latest`` when untagged) to its registry."""
    from dockyard.content.store import ContentStore
    from dockyard.images.store import ImageStore

    ref = refs.parse(name)
    if ref.digest:
        raise InvalidArgument("cannot push a digest reference")
    if ref.name_only:
        yield Progress("status", "Using default tag: latest")
        ref = ref.tagged()
    ist, cs = ImageStore(store), ContentStore(store)
    iid = ist.lookup_id(str(ref))
    im = ist.get(iid) if iid else None
    if im is None:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
    yield Progress("status", f"The push refers to repository [{ref.name}]")
    client = _client(store, ref, push=True)
    mounts = _mount_sources(ist, ref)
    try:
        if im.is_index:  # every platform's image by digest, then the index under the tag
            for _plat, member_id in ist.members(im.id):
                member = ist.get(member_id)
                if member is None:
                    raise NotFound(f"No such image: {member_id}")
                yield from _push_image(client, cs, ref, member, mounts, None)
            raw = (im.index_manifest or "").encode()
            media = json.loads(raw).get("mediaType") or oci.OCI_INDEX
            if not cs.has(im.id):
                cs.put_bytes(raw, im.id)
            digest = client.put_manifest(ref.path, ref.tag, raw, media)
        else:
            digest, raw = yield from _push_image(client, cs, ref, im, mounts, ref.tag)
    except RegistryError as e:
        if isinstance(e, Unauthorized) or e.code in ("DENIED", "UNAUTHORIZED"):
            raise RegistryError(f"denied: requested access to the resource is denied ({e})", e.status,
                                e.code) from None
        raise
    ist.add_repo_digest(im.id, ref.name, digest)
    yield Progress("status", f"{ref.tag}: digest: {digest} size: {len(raw)}")
    yield Progress("done", text=str(ref))


def _push_image(client: RegistryClient, cs: Any, ref: Reference, im: Any, mounts: dict[str, list[str]],
                tag: str | None) -> Generator[Progress, None, tuple[str, bytes]]:
    """Push one image's layers, config and manifest (under ``tag``, or its digest); returns (digest, manifest)."""
    mdigest = im.manifest_digest
    if not mdigest or not cs.has(mdigest):
        raise NotFound(f"manifest of image {im.short_id} is missing from the store")
    mraw = cs.read_bytes(mdigest)
    try:
        mj = json.loads(mraw)
        media = mj.get("mediaType") or oci.OCI_MANIFEST
        cdesc = oci.Descriptor.from_json(mj["config"])
        ldescs = [oci.Descriptor.from_json(x) for x in mj.get("layers") or []]
    except (ValueError, KeyError, TypeError, AttributeError, CorruptContent):
        raise CorruptContent(f"the stored manifest of image {im.short_id} is damaged") from None
    for ld in reversed(ldescs):
        yield Progress("layer", "Preparing", _short(ld.digest))
    blobs: dict[str, tuple[oci.Descriptor, bool]] = {}
    for ld in reversed(ldescs):
        blobs.setdefault(ld.digest, (ld, True))
    blobs.setdefault(cdesc.digest, (cdesc, False))
    yield from _push_blobs(client, cs, ref, list(blobs.values()), mounts)
    return client.put_manifest(ref.path, tag or mdigest, mraw, media), mraw


def _push_blobs(client: RegistryClient, cs: Any, ref: Reference, blobs: list[tuple[oci.Descriptor, bool]],
                mounts: dict[str, list[str]]) -> Iterator[Progress]:
    """Upload ``blobs`` (descriptor, shown) PUSH_PARALLEL at a time (Docker's max-concurrent-uploads); the first
    failure stops the others and is raised."""
    from concurrent.futures import ThreadPoolExecutor

    client._endpoint()  # the scheme is probed once, before the workers share the client
    events: queue.Queue[Progress | None] = queue.Queue()

    def one(d: oci.Descriptor, show: bool) -> None:
        for ev in _push_blob(client, cs, ref, d, mounts, show):
            events.put(ev)

    with ThreadPoolExecutor(max_workers=PUSH_PARALLEL, thread_name_prefix="push") as pool:
        futures = [pool.submit(one, d, show) for d, show in blobs]
        for f in futures:
            f.add_done_callback(lambda _f: events.put(None))
        try:
            pending = len(futures)
            while pending:
                ev = events.get()
                if ev is None:
                    pending -= 1
                    if any(f.done() and f.exception() is not None for f in futures):
                        break
                else:
                    yield ev
            while not events.empty():
                ev = events.get_nowait()
                if ev is not None:
                    yield ev
        finally:
            for f in futures:
                f.cancel()
        for f in futures:
            if f.done() and not f.cancelled() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]


def _mount_sources(ist: Any, ref: Reference) -> dict[str, list[str]]:
    """layer digest -> other repositories of the same registry known to hold it (from local refs)."""
    out: dict[str, list[str]] = {}
    for im in ist.list():
        repos = set()
        for t in list(im.tag_refs) + list(im.repo_digests):
            r = refs.try_parse(t)
            if r is not None and r.domain == ref.domain and r.path != ref.path:
                repos.add(r.path)
        if not repos:
            continue
        for ly in im.layers:
            out.setdefault(ly.digest, []).extend(sorted(repos))
    return out


def _push_blob(client: RegistryClient, cs: Any, ref: Reference, d: oci.Descriptor,
               mounts: dict[str, list[str]], show: bool) -> Iterator[Progress]:
    sid = _short(d.digest)
    if client.blob_exists(ref.path, d.digest):
        if show:
            yield Progress("layer", "Layer already exists", sid)
        return
    for src in mounts.get(d.digest, [])[:3]:
        if client.mount_blob(ref.path, d.digest, src):
            if show:
                yield Progress("layer", f"Mounted from {src}", sid)
            return
    if not cs.has(d.digest):
        raise NotFound(f"blob {d.digest} of the image is missing from the store")
    size = cs.size(d.digest)
    sent: list[int] = []
    with cs.open(d.digest) as f:
        client.upload_blob(ref.path, d.digest, size, _Reader(f), chunk_size=PUSH_CHUNK,
                           progress=sent.append)
    if show:
        yield Progress("layer", "Pushing", sid, size, size)
        yield Progress("layer", "Pushed", sid)


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)


# ---- login --------------------------------------------------------------------------------------------------

def login(store: Store, server: str, username: str, password: str) -> str:
    """Check credentials against the registry, then store them; returns where they went."""
    from dockyard.images import auth

    host = registry_host(server)
    cfg = RegistryConfig.load(store.root)
    creds = auth.Credentials(username, password)
    endpoint = "https://" + "registry-1.docker.io" if host == "docker.io" else None
    client = RegistryClient(host, cfg, creds, endpoint=endpoint)
    client.check_login()
    return auth.store_credentials(host, creds)


def logout(server: str) -> tuple[str, bool]:
    from dockyard.images import auth

    host = registry_host(server)
    return host, auth.erase_credentials(host)


def registry_host(server: str) -> str:
    """``https://host:port/v2/`` or ``host:port`` -> ``host:port``; empty or Docker Hub's names -> docker.io."""
    s = server.strip()
    for p in ("https://", "http://"):
        if s.startswith(p):
            s = s[len(p):]
    s = s.split("/", 1)[0]
    if s in ("", "index.docker.io", "registry-1.docker.io", "docker.io"):
        return "docker.io"
    if not s or any(c.isspace() for c in s):
        raise InvalidArgument(f"invalid registry address: {server!r}")
    return s
