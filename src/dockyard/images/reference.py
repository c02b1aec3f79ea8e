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

import re
from collections import namedtuple

from dockyard.errors import InvalidArgument

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
REFERENCE_RE = re.compile(rf"^{_NAME}(?::({_TAG}))?(?:@({_DIGEST}))?\Z", re.ASCII)  # \w is ASCII in Go
TAG_RE = re.compile(rf"^{_TAG}\Z", re.ASCII)
HEX64_RE = re.compile(r"^[a-f0-9]{64}\Z")
SHA256_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")

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
    if HEX64_RE.match(s):
        raise InvalidArgument(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    if not s:
        raise InvalidArgument(ERR_FORMAT)
    domain, rest = _split_domain(s)
    # the repository part ends at the first ':' of the remainder (a tag) or at '@'
    remote = rest.split("@", 1)[0]
    remote = remote.split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(ERR_UPPER)
    full = f"{domain}/{rest}"
    m = REFERENCE_RE.match(full)
    if m is None:
        if REFERENCE_RE.match(full.lower()):
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
        if algo == "sha256" and not HEX64_RE.match(hexpart):
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
