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
from collections.abc import Iterable, Iterator

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

__all__ = ["Matcher", "read_patterns", "load_patterns", "ignore_file_for", "walk", "clean"]



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
    __slots__ = ("text", "exclusion", "kind", "toks", "prefix")

    def __init__(self, text: str, exclusion: bool) -> None:
        self.text = text
        self.exclusion = exclusion
        self.kind, self.toks = _compile(text)
        cut = min((i for i in (text.find(c) for c in "*?[\\") if i >= 0), default=len(text))
        self.prefix = text[:cut]  # the literal start (up to the first of * ? [ \\): used to prune the walk

    def match(self, path: str) -> bool:
        k = self.kind
        if k == "exact":
            return path == self.text
        if k == "prefix":
            return path.startswith(self.text[:-2])
        if k == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self.toks is not None
        return _run(self.toks, path)


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


# Tokens of a compiled pattern, matched by a position-set simulation (an NFA run over the path): the cost is
# O(len(pattern) * len(path)) whatever the pattern. A backtracking regex of ``**/`` groups is exponential
# (8 ``**/`` against a 40-deep path took minutes).
_LIT, _ONE, _CLASS, _STAR, _DSTAR_DIR, _DSTAR = range(6)
_Token = tuple[int, object]


def _compile(p: str) -> tuple[str, list[_Token] | None]:
    toks: list[_Token] = []
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
                        toks.append((_DSTAR, None))
                        kind = "regexp"
                else:
                    toks.append((_DSTAR_DIR, None))
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                toks.append((_STAR, None))
                kind = "regexp"
        elif ch == "?":
            toks.append((_ONE, None))
            kind = "regexp"
        elif ch == "\\":
            if i < n:
                toks.append((_LIT, p[i]))
                i += 1
                kind = "regexp"
            else:
                toks.append((_LIT, "\\"))
        elif ch == "[":
            j = i  # a character class goes through as written (Go regexp and Python agree on [a-z], [^a])
            while j < n and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            import re  # only for a pattern with a character class

            try:
                cls = re.compile("[" + p[i:j].replace("[", "\\[") + "]", re.DOTALL)
            except re.error:
                raise InvalidArgument(f"invalid .dockerignore pattern {p!r}: syntax error in pattern") from None
            toks.append((_CLASS, cls))
            i = j + 1
            kind = "regexp"
        else:
            toks.append((_LIT, ch))
        first = False
    if kind != "regexp":
        return kind, None
    return kind, toks


def _run(toks: list[_Token], path: str) -> bool:
    """Does the whole of ``path`` match ``toks``? Keeps the set of positions reachable after each token."""
    n = len(path)
    cur = [0]  # sorted, unique
    for kind, arg in toks:
        if not cur:
            return False
        if kind == _LIT:
            cur = [j + 1 for j in cur if j < n and path[j] == arg]
        elif kind == _ONE:
            cur = [j + 1 for j in cur if j < n and path[j] != "/"]
        elif kind == _CLASS:
            rx: re.Pattern[str] = arg  # type: ignore[assignment]
            cur = [j + 1 for j in cur if j < n and rx.match(path[j])]
        elif kind == _STAR:  # [^/]*: from each start, every position up to the next "/"
            out: list[int] = []
            last = -1
            for j in cur:
                k = j if last < j else last + 1  # positions j..last are already in ``out``
                if last >= j and (last >= n or path[last] == "/"):
                    continue  # this start's element was covered by the previous start
                while True:
                    out.append(k)
                    last = k
                    if k >= n or path[k] == "/":
                        break
                    k += 1
            cur = out
        elif kind == _DSTAR_DIR:  # (.*/)?: stay, or move to just after any later "/"
            lo = cur[0]
            extra = [k + 1 for k in range(lo, n) if path[k] == "/"]
            cur = sorted(set(cur).union(extra))
        else:  # .*: anything from the first start on
            cur = list(range(cur[0], n + 1))
    return bool(cur) and cur[-1] == n


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
        hits: tuple[bool, ...] | None = None
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            hits = self.hits("/".join(parts[:i]), hits)
        return self.decide(hits or ())

    def hits(self, path: str, parent_hits: tuple[bool, ...] | None) -> tuple[bool, ...]:
        """For each pattern: does it match ``path`` or one of its parents (``parent_hits``: the same for the
        parent directory, None at the top)? Lets a walk test each path once, not each of its parents again."""
        if parent_hits is None:
            return tuple(p.match(path) for p in self.patterns)
        return tuple(h or p.match(path) for p, h in zip(self.patterns, parent_hits))

    def decide(self, hits: tuple[bool, ...]) -> bool:
        """Excluded? The last matching pattern wins."""
        matched = False
        for pat, hit in zip(self.patterns, hits):
            if hit and pat.exclusion == matched:
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
    yield from _walk(context_dir, m, dirs)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _listing(parent_fd: int | None, name: str, shown: str) -> tuple[int | None, list[tuple[str, bool]]]:
    """Open directory ``name`` (below ``parent_fd``, or a path) and list it: (fd, sorted (name, is_dir))."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None, []
    except OSError as e:
        from dockyard.errors import from_oserror

        raise from_oserror(f"cannot read build context {shown}", e) from None
    try:
        with os.scandir(fd) as it:
            return fd, sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
    except OSError as e:
        os.close(fd)
        from dockyard.errors import from_oserror

        raise from_oserror(f"cannot read build context {shown}", e) from None


def _walk(root: str, m: Matcher, dirs: bool) -> Iterator[str]:
    """Iterative and through directory fds (a context may be thousands of directories deep, past PATH_MAX). An
    excluded directory that may hold a re-included entry is entered with its own entry pending: yielded (when
    ``dirs``) just before the first entry found inside it."""
    Frame = tuple[str, Iterator[tuple[str, bool]], list[bool], "tuple[bool, ...] | None", int | None]
    fd, names = _listing(None, root, root)
    stack: list[Frame] = [("", iter(names), [False], None, fd)]

    def flush() -> Iterator[str]:
        for frel, _, pending, _h, _fd in stack:
            if pending[0]:
                pending[0] = False
                if dirs:
                    yield frel

    def enter(path: str, name: str, pending: bool, hits: tuple[bool, ...]) -> None:
        cfd, names = _listing(stack[-1][4], name, os.path.join(root, path))
        stack.append((path, iter(names), [pending], hits, cfd))

    try:
        while stack:
            rel, it, _, parent_hits, _fd = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                if _fd is not None:
                    os.close(_fd)
                continue
            name, is_dir = nxt
            path = f"{rel}/{name}" if rel else name
            hits = m.hits(path, parent_hits)
            excluded = m.decide(hits)
            if not is_dir:
                if not excluded:
                    yield from flush()
                    yield path
                continue
            if not excluded:
                yield from flush()
                if dirs:
                    yield path
                enter(path, name, False, hits)
            elif m.exclusions and m.may_include_under(path):
                enter(path, name, True, hits)
    finally:
        for f in stack:
            if f[4] is not None:
                os.close(f[4])
