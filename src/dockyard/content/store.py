"""The content store: immutable blobs addressed by their digest.

A *blob* is any byte string the image layer needs to keep verbatim: a layer as it came over the wire (often gzip),
an image config, a manifest or an index. It lives at ``<root>/content/blobs/sha256/<64 hex>`` and its name *is* the
sha256 of its bytes, so a blob is never modified, only written once and later removed.

Writing is atomic (``ingest``): the bytes stream into a temporary file under ``<root>/tmp`` while being hashed; the
file is fsynced, its digest and size are checked against what the caller expected, and only then is it renamed into
place and the directory fsynced. A reader therefore sees a complete, verified blob or none. Two processes ingesting
the same blob at once both succeed: the second rename just replaces an identical file (or the loser drops its temp).
A ``kill -9`` mid-write leaves only an ``ingest-*`` temp file, which ``cleanup_tmp`` removes.

Example::

    cs = ContentStore(store)
    digest, size = cs.ingest(response, expected_digest=desc.digest, expected_size=desc.size)
    with cs.open(digest) as f:
        ...
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from dockyard.errors import CorruptContent, InvalidArgument, NotFound
from dockyard.fsutil import fsync_dir
from dockyard.ids import is_hex64, validate_digest

if TYPE_CHECKING:
    from dockyard.state.db import Store

CHUNK = 1 << 20
_TMP_PREFIX = "ingest-"


class ContentStore:
    """Content-addressed blob storage under ``<root>/content/blobs/sha256``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dir = store.path("content", "blobs", "sha256")

    # -- lookup -----------------------------------------------------------------------------------------------

    def path(self, digest: str) -> str:
        """Where the blob with ``digest`` lives (it may not exist)."""
        validate_digest(digest)
        return os.path.join(self.dir, digest[7:])

    def has(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def digests(self) -> Iterator[str]:
        """Every blob present, in no particular order."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return
        for name in names:
            if is_hex64(name):
                yield "sha256:" + name

    # -- writing ----------------------------------------------------------------------------------------------

    def ingest(self, src: BinaryIO, expected_digest: str | None = None,
               expected_size: int | None = None) -> tuple[str, int]:
        """Copy ``src`` (read to EOF) into the store; returns ``(digest, size)``.

        Raises CorruptContent when the bytes do not match ``expected_digest`` or ``expected_size``; nothing is
        left behind in that case.
        """
        if expected_digest is not None:
            validate_digest(expected_digest)
        if expected_size is not None and expected_size < 0:
            raise InvalidArgument(f"invalid blob size: {expected_size}")
        os.makedirs(self.store.tmp, mode=0o700, exist_ok=True)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.store.tmp, prefix=_TMP_PREFIX)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # marks the temp file as live for cleanup_tmp
            h = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb", closefd=False) as out:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if expected_size is not None and size > expected_size:
                        raise CorruptContent(
                            f"size mismatch: expected {expected_size} bytes, got more"
                            + (f" for {expected_digest}" if expected_digest else ""))
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(fd)
            digest = "sha256:" + h.hexdigest()
            if expected_size is not None and size != expected_size:
                raise CorruptContent(f"size mismatch: expected {expected_size} bytes, got {size}"
                                     + (f" for {expected_digest}" if expected_digest else ""))
            if expected_digest is not None and digest != expected_digest:
                raise CorruptContent(f"digest mismatch: expected {expected_digest}, got {digest}")
            os.fchmod(fd, 0o600)  # image configs carry ENV values: root-only, as the rest of the store
            final = os.path.join(self.dir, digest[7:])
            if os.path.exists(final):
                os.unlink(tmp)
            else:
                os.rename(tmp, final)
                fsync_dir(self.dir)
            return digest, size
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        finally:
            os.close(fd)

    def put_bytes(self, data: bytes, expected_digest: str | None = None) -> str:
        import io

        digest, _ = self.ingest(io.BytesIO(data), expected_digest, len(data))
        return digest

    def remove(self, digest: str) -> None:
        """Delete a blob; a missing blob is not an error."""
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def verify(self, digest: str) -> bool:
        """Re-hash a stored blob; False if it is missing or damaged."""
        h = hashlib.sha256()
        try:
            with open(self.path(digest), "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return False
        return "sha256:" + h.hexdigest() == digest

    def cleanup_tmp(self) -> list[str]:
        """Remove temp files of ingests that died (kill -9); live ingests hold a lock and are skipped."""
        removed: list[str] = []
        try:
            names = os.listdir(self.store.tmp)
        except FileNotFoundError:
            return removed
        for name in names:
            if not name.startswith(_TMP_PREFIX):
                continue
            p = os.path.join(self.store.tmp, name)
            try:
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        continue
                    raise
                os.unlink(p)
                removed.append(p)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        return removed
