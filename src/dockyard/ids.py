"""Identifiers: random container IDs, name validation and digest helpers.

Vocabulary used across dockyard:
- *digest*: ``sha256:<64 hex>`` of the bytes of a blob as stored (a compressed layer, a manifest, a config).
- *diff_id*: digest of an *uncompressed* layer tar; listed in the image config's ``rootfs.diff_ids``.
- *chain_id*: identifies a layer *stack*: ``chain(L1) = diff_id(L1)``,
  ``chain(L1..Ln) = sha256(chain(L1..Ln-1) + " " + diff_id(Ln))``. Snapshots are keyed by chain ID.
- *image ID*: the digest of the image's config blob (Docker shows its first 12 hex digits).
- *container ID*: 64 random hex digits.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# checked by hand, not by regular expressions: `re` is not imported on the run path (dockyard.lazyre)
HEX_DIGITS = frozenset("0123456789abcdef")  # lowercase, as IDs and digests are written
ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = ASCII_ALNUM | frozenset("_.-")
_LABEL_CHARS = ASCII_ALNUM | {"-"}
MAX_ID = 2**32 - 2  # the largest uid/gid the kernel takes ((uid_t)-1 means "unchanged")


def is_hex64(s: str) -> bool:
    """64 lowercase hex digits: an ID without its ``sha256:``."""
    return len(s) == 64 and HEX_DIGITS.issuperset(s)


def is_digest(s: str) -> bool:
    """``sha256:`` and 64 lowercase hex digits."""
    return s.startswith("sha256:") and is_hex64(s[7:])


def is_name(s: str) -> bool:
    """A container or volume name as Docker takes it: ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``."""
    return bool(s) and s[0] in ASCII_ALNUM and _NAME_REST.issuperset(s)


def is_label(s: str) -> bool:
    """A DNS label's shape (RFC 1123, any length): ASCII letters and digits, dashes only inside."""
    return bool(s) and s[0] in ASCII_ALNUM and s[-1] in ASCII_ALNUM and _LABEL_CHARS.issuperset(s)


def is_decimal(s: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²" and Arabic-Indic digits (int() reads or refuses them)."""
    return s.isascii() and s.isdigit()


def parse_id(s: str, what: str = "user") -> int:
    """A uid or gid as given by a user or an image: ASCII decimal within the kernel's range."""
    if not is_decimal(s) or int(s) > MAX_ID:
        raise InvalidArgument(f"invalid {what} id: {s!r}")
    return int(s)


def new_id() -> str:
    return os.urandom(32).hex()


def short(digest_or_id: str) -> str:
    """The 12-hex-digit form Docker shows in tables."""
    return digest_or_id.split(":", 1)[-1][:12]


OPENSSL_FROM = 512 * 1024  # the break-even point: ~3 ms of loading libcrypto vs ~3 ms per MiB it saves


def sha256(data: bytes = b"", size_hint: int = 0) -> Any:
    """A SHA-256 object over ``data`` (``size_hint``: the bytes still to come through ``update``).

    ``hashlib`` loads OpenSSL's libcrypto (~3 ms on these machines); CPython's built-in SHA-256 is there already but
    ~5x slower per byte than OpenSSL's (SHA-NI). Small inputs (cache keys, chain IDs, small build contexts) use the
    built-in one, anything from ``OPENSSL_FROM`` bytes up OpenSSL's: the digests are the same either way."""
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
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + sha256(data).hexdigest()


def validate_digest(digest: str) -> str:
    if not is_digest(digest):
        raise InvalidArgument(f"invalid digest: {digest!r}")
    return digest


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Chain IDs for each prefix of ``diff_ids`` (OCI image spec, "ChainID")."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append(sha256_digest(f"{out[-1]} {d}".encode()))
    return out


def validate_name(name: str, what: str = "container") -> str:
    if not is_name(name):
        raise InvalidArgument(
            f'Invalid {what} name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed'
        )
    return name
