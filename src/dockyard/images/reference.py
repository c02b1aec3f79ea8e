"""Image references, normalised the way Docker normalises them (distribution/reference).

A *reference* names an image in a repository: ``[domain/]path[:tag][@digest]``.

- ``busybox``                    -> ``docker.io/library/busybox:latest``
- ``user/app:1.0``               -> ``docker.io/user/app:1.0``
- ``localhost:5000/x/y:t``       -> ``localhost:5000/x/y:t``
- ``busybox@sha256:<hex>``       -> ``docker.io/library/busybox@sha256:<hex>`` (no tag is added)
- ``busybox:1.36@sha256:<hex>``  -> both kept; lookups use the digest

The *familiar* form is what Docker prints: ``docker.io/library/`` and ``docker.io/`` are dropped.
Errors carry Docker's wording ("invalid reference format", "... repository name must be lowercase").
"""

from __future__ import annotations

from collections import namedtuple

from dockyard.errors import InvalidArgument
from dockyard.ids import ASCII_ALNUM, is_hex64, is_label
from dockyard.lazyre import Pattern

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = rf"(?:({_DOMAIN})/)?({_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
REFERENCE = rf"^{_NAME}(?::({_TAG}))?(?:@({_DIGEST}))?\Z"  # the grammar (distribution/reference), ASCII as in Go

# The grammar's regular expression takes ~3 ms to compile, on every `run`: it is compiled on first use, and the
# common shapes (``busybox``, ``user/app:1.0``: no registry, no digest) are checked by ``_simple`` instead, which
# accepts exactly what the expression accepts for them (tests/unit/test_reference.py compares the two).
_REFERENCE = Pattern("(?a)" + REFERENCE)

_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_FIRST = ASCII_ALNUM | {"_"}
_TAG_REST = _TAG_FIRST | frozenset(".-")


def tag_ok(t: str) -> bool:
    """A valid tag: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``."""
    return 0 < len(t) <= 128 and t[0] in _TAG_FIRST and _TAG_REST.issuperset(t)


def _component_ok(c: str) -> bool:
    """A path component: lowercase alphanumeric runs joined by one ``.`` or ``_``, by ``__``, or by dashes."""
    if not c or c[0] not in _LOWER_ALNUM or c[-1] not in _LOWER_ALNUM:
        return False
    sep = ""
    for ch in c:
        if ch in _LOWER_ALNUM:
            sep = ""
        elif ch == "-" and sep.strip("-") == "":
            sep += ch
        elif ch in "._" and not sep:
            sep = ch
        elif ch == "_" and sep == "_":
            sep = "__"
        else:
            return False
    return True


def _domain_ok(domain: str) -> bool:
    """A registry host as the grammar takes it (no IPv6 here): dot-separated components of letters, digits and
    inner dashes, and an optional ``:port``."""
    host, colon, port = domain.partition(":")
    if colon and not (port.isascii() and port.isdigit()):
        return False
    return all(is_label(c) for c in host.split("."))


def _simple(s: str) -> str | None:
    """For a reference without digest or IPv6 host that the grammar accepts: its tag ("" when none); None when
    the reference has another shape (the caller then uses the grammar's expression)."""
    if "@" in s or "[" in s:
        return None
    i = s.find("/")
    first = s[:i] if i >= 0 else ""
    if i >= 0 and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        if not _domain_ok(first):
            return None  # a registry's name, as _split_domain reads it
        s = s[i + 1:]
    name, colon, tag = s.partition(":")
    if "/" in tag or (colon and not tag_ok(tag)) or not all(_component_ok(p) for p in name.split("/")):
        return None
    return tag


ERR_FORMAT = "invalid reference format"
ERR_UPPER = "invalid reference format: repository name must be lowercase"


class Reference(namedtuple("Reference", "domain path tag digest", defaults=(None, None))):
    """A parsed, normalised reference. ``domain`` and ``path`` are never empty after normalisation.

    Fields: ``domain``, ``path``, ``tag`` (or None), ``digest`` (or None). Immutable (a named tuple)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """Fully qualified repository name: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Repository as Docker shows it: ``busybox``, ``user/app``, ``localhost:5000/x``."""
        if self.domain == DEFAULT_DOMAIN:
            p = self.path
            if p.startswith(OFFICIAL_PREFIX) and "/" not in p[len(OFFICIAL_PREFIX):]:
                return p[len(OFFICIAL_PREFIX):]
            if _split_domain(p)[0] == DEFAULT_DOMAIN:
                return p
            # "docker.io/0.0/x" printed as "0.0/x" would read back with "0.0" as a registry: keep the domain
        return self.name

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar(self) -> str:
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    def tagged(self) -> Reference:
        """Docker's TagNameOnly: add ``:latest`` when there is neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, "latest", None)
        return self

    @property
    def name_only(self) -> bool:
        return self.tag is None and self.digest is None


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def parse(s: str) -> Reference:
    """Parse and normalise a reference as ``docker`` does (ParseNormalizedNamed). No ``:latest`` is added."""
    if is_hex64(s):
        raise InvalidArgument(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    if not s:
        raise InvalidArgument(ERR_FORMAT)
    tag = _simple(s)
    if tag is not None:
        domain, rest = _split_domain(s)
        path = rest.partition(":")[0]
        if len(domain) + 1 + len(path) <= NAME_TOTAL_MAX:
            return Reference(domain, path, tag or None, None)
    domain, rest = _split_domain(s)
    # the repository part ends at the first ':' of the remainder (a tag) or at '@'
    remote = rest.split("@", 1)[0]
    remote = remote.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(ERR_UPPER)
    full = f"{domain}/{rest}"
    m = _REFERENCE.match(full)
    if m is None:
        if _REFERENCE.match(full.lower()):
            raise InvalidArgument(ERR_UPPER)
        raise InvalidArgument(ERR_FORMAT)
    d, path, tag, digest = m.group(1), m.group(2), m.group(3), m.group(4)
    if d is None:  # cannot happen after _split_domain, kept for clarity
        d = DEFAULT_DOMAIN
    if len(d) + 1 + len(path) > NAME_TOTAL_MAX:
        raise InvalidArgument(f"invalid reference format: repository name must not be more than "
                              f"{NAME_TOTAL_MAX} characters")
    if digest is not None:
        algo, _, hexpart = digest.partition(":")
        if algo == "sha256" and not is_hex64(hexpart):
            raise InvalidArgument("invalid checksum digest format")
        if algo != "sha256":
            raise InvalidArgument("unsupported digest algorithm")
    return Reference(d, path, tag, digest)


def parse_tagged(s: str) -> Reference:
    """Parse and add ``:latest`` when the reference has neither a tag nor a digest."""
    return parse(s).tagged()


def try_parse(s: str) -> Reference | None:
    try:
        return parse(s)
    except InvalidArgument:
        return None


def familiar(ref: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox:latest`` (for a stored, normalised reference)."""
    r = try_parse(ref)
    return r.familiar() if r else ref


def split_familiar(ref: str) -> tuple[str, str | None, str | None]:
    """(familiar repository, tag, digest) of a stored reference, for table output."""
    r = try_parse(ref)
    if r is None:
        return ref, None, None
    return r.familiar_name, r.tag, r.digest
