"""``.dockerignore``: which files of the build context the builder sees, with Docker's pattern rules.

Rules (moby/patternmatcher and its ignorefile reader): one pattern a line; lines starting with ``#`` are comments;
surrounding spaces are trimmed; patterns are cleaned like Go's ``filepath.Clean`` and a leading ``/`` is dropped
(``/a/../b`` = ``b``); ``*`` matches within one path element, ``?`` one character, ``[a-z]`` a class, ``\\`` escapes;
``**`` matches any number of directories (``**/*.go``, ``a/**``, ``**``); a pattern that matches a directory
excludes everything under it; ``!pattern`` re-includes; the last matching line wins.

``Dockerfile.dockerignore`` next to the Dockerfile (``<dockerfile>.dockerignore`` for ``-f app.Dockerfile``)
takes precedence over the context's ``.dockerignore``.

    patterns = load_patterns(context_dir, dockerfile_path)
    m = Matcher(patterns); m.matches("node_modules/x.js") -> True when excluded
    for rel in walk(context_dir, patterns): ...   # included entries, symlinks not followed
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from dockyard.errors import InvalidArgument

__all__ = ["Matcher", "read_patterns", "load_patterns", "ignore_file_for", "walk", "clean"]

_ESCAPE = frozenset(".+()|{}$")


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for ``/``-separated paths (``a//b/../c/.`` -> ``a/c``; ``""`` -> ``.``)."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    s = "/".join(out)
    if rooted:
        return "/" + s
    return s or "."


def read_patterns(text: str | bytes) -> list[str]:
    """The patterns of an ignore file (comments and blank lines dropped, each cleaned, leading ``/`` removed)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        p = line.strip()
        if not p:
            continue
        invert = p.startswith("!")
        if invert:
            p = p[1:].strip()
        if p:
            p = clean(p)
            if len(p) > 1 and p.startswith("/"):
                p = p[1:]
        out.append("!" + p if invert else p)
    return out


def ignore_file_for(context_dir: str, dockerfile: str | None = None) -> str | None:
    """The ignore file in effect: ``<dockerfile>.dockerignore`` when it exists, else ``<context>/.dockerignore``
    when it exists, else None."""
    if dockerfile:
        specific = dockerfile + ".dockerignore"
        if os.path.isfile(specific):
            return specific
    generic = os.path.join(context_dir, ".dockerignore")
    return generic if os.path.isfile(generic) else None


def load_patterns(context_dir: str, dockerfile: str | None = None) -> list[str]:
    """Read the ignore file in effect (see ``ignore_file_for``); no file gives no patterns."""
    path = ignore_file_for(context_dir, dockerfile)
    if path is None:
        return []
    with open(path, "rb") as f:
        return read_patterns(f.read())


class _Pattern:
    __slots__ = ("text", "exclusion", "kind", "rx", "prefix")

    def __init__(self, text: str, exclusion: bool) -> None:
        self.text = text
        self.exclusion = exclusion
        self.kind, self.rx = _compile(text)
        m = re.search(r"[*?\[\\]", text)
        self.prefix = text[:m.start()] if m else text  # the literal start: used to prune the walk

    def match(self, path: str) -> bool:
        k = self.kind
        if k == "exact":
            return path == self.text
        if k == "prefix":
            return path.startswith(self.text[:-2])
        if k == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self.rx is not None
        return self.rx.match(path) is not None


def _check_syntax(p: str) -> None:
    """Reject what Go's filepath.Match rejects: unterminated ``[``, a trailing ``\\``."""
    i, n = 0, len(p)
    while i < n:
        ch = p[i]
        if ch == "\\":
            if i + 1 >= n:
                raise InvalidArgument(f"invalid .dockerignore pattern {p!r}: syntax error in pattern")
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < n and p[j] == "^":
                j += 1
            if j < n and p[j] == "]":
                j += 1
            while j < n and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            if j >= n:
                raise InvalidArgument(f"invalid .dockerignore pattern {p!r}: syntax error in pattern")
            i = j + 1
            continue
        i += 1


def _compile(p: str) -> tuple[str, re.Pattern[str] | None]:
    rx = ["^"]
    kind = "exact"
    i, n = 0, len(p)
    first = True
    while i < n:
        ch = p[i]
        i += 1
        if ch == "*":
            if i < n and p[i] == "*":
                i += 1
                if i < n and p[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        rx.append(".*")
                        kind = "regexp"
                else:
                    rx.append("(.*/)?")
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                rx.append("[^/]*")
                kind = "regexp"
        elif ch == "?":
            rx.append("[^/]")
            kind = "regexp"
        elif ch in _ESCAPE:
            rx.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                rx.append(re.escape(p[i]))
                i += 1
                kind = "regexp"
            else:
                rx.append("\\\\")
        elif ch == "[":
            j = i  # a character class goes through as written (Go regexp and Python agree on [a-z], [^a])
            while j < n and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            rx.append("[" + p[i:j].replace("[", "\\[") + "]")
            i = j + 1
            kind = "regexp"
        elif ch == "]":
            rx.append("\\]")
            kind = "regexp"
        else:
            rx.append(re.escape(ch))
        first = False
    if kind != "regexp":
        return kind, None
    try:
        return kind, re.compile("".join(rx) + "\\Z", re.DOTALL)
    except re.error:
        raise InvalidArgument(f"invalid .dockerignore pattern {p!r}: syntax error in pattern") from None


class Matcher:
    """Matches context-relative ``/`` paths against ignore patterns (``matches`` = excluded)."""

    __slots__ = ("patterns", "exclusions")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[_Pattern] = []
        self.exclusions = False
        for p in patterns:
            p = p.strip()
            if not p:
                continue
            p = clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise InvalidArgument('illegal exclusion pattern: "!"')
                p = p[1:]
                self.exclusions = True
            if len(p) > 1 and p.startswith("/"):
                p = p[1:]
            _check_syntax(p)
            self.patterns.append(_Pattern(p, exclusion))

    def matches(self, path: str) -> bool:
        """True when ``path`` (relative to the context) is excluded: a pattern matches it or one of its parent
        directories, and no later ``!`` pattern re-includes it. The context root itself is never excluded."""
        path = clean(path.lstrip("/"))
        if path == "." or not self.patterns:
            return False
        parents = path.split("/")[:-1]
        prefixes = ["/".join(parents[:i + 1]) for i in range(len(parents))]
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path) or any(pat.match(pre) for pre in prefixes)
            if hit:
                matched = not pat.exclusion
        return matched

    def may_include_under(self, directory: str) -> bool:
        """Could a ``!`` pattern re-include something inside the excluded ``directory``? (walk pruning)"""
        d = directory.rstrip("/") + "/"
        for pat in self.patterns:
            if pat.exclusion and (pat.prefix.startswith(d) or d.startswith(pat.prefix)):
                return True
        return False


def walk(context_dir: str, patterns: Iterable[str] | Matcher = (), dirs: bool = False) -> Iterator[str]:
    """Included entries of ``context_dir`` as ``/`` relative paths, in sorted walk order (names sorted at every
    level, a directory before its contents). Files, symlinks (never followed, so never out of the context) and
    special files are yielded; directories too when ``dirs`` (an excluded directory is yielded only when
    something inside it is re-included, since it must exist to hold it)."""
    m = patterns if isinstance(patterns, Matcher) else Matcher(patterns)
    yield from _walk(context_dir, "", m, dirs)


def _walk(root: str, rel: str, m: Matcher, dirs: bool) -> Iterator[str]:
    try:
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
    except FileNotFoundError:
        return
    except OSError as e:
        from dockyard.errors import from_oserror

        raise from_oserror(f"cannot read build context {os.path.join(root, rel)}", e) from None
    for name, is_dir in entries:
        path = f"{rel}/{name}" if rel else name
        excluded = m.matches(path)
        if not is_dir:
            if not excluded:
                yield path
            continue
        if not excluded:
            if dirs:
                yield path
            yield from _walk(root, path, m, dirs)
        elif m.exclusions and m.may_include_under(path):
            inner = _walk(root, path, m, dirs)
            first = next(inner, None)
            if first is not None:
                if dirs:
                    yield path
                yield first
                yield from inner
