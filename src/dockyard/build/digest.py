"""SHA-256 for the builder's cache keys and context checksums, without loading libcrypto for small inputs.

``hashlib`` loads OpenSSL's libcrypto (~3 ms on these machines, most of a fully cached build's hashing); CPython's
built-in SHA-256 is there already but ~5x slower per byte than OpenSSL's (SHA-NI). Keys and small contexts use
the built-in one, anything from ``OPENSSL_FROM`` bytes up OpenSSL's: the digests are the same either way.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OPENSSL_FROM = 512 * 1024  # the break-even point: ~3 ms of loading vs ~3 ms per MiB saved


def sha256(data: bytes = b"", size_hint: int = 0) -> Any:
    """A SHA-256 object over ``data`` (``size_hint``: the bytes still to come through ``update``)."""
    if len(data) + size_hint < OPENSSL_FROM:
        try:
            from _sha256 import sha256 as builtin  # CPython 3.11
        except ImportError:
            try:
                from _sha2 import sha256 as builtin  # CPython 3.12+
            except ImportError:
                builtin = None
        if builtin is not None:
            return builtin(data)
    import hashlib

    return hashlib.sha256(data)


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data`` (as ``dockyard.ids.sha256_digest``)."""
    return "sha256:" + sha256(data).hexdigest()
