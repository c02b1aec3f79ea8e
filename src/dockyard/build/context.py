"""The build context: where COPY/ADD sources come from, filtered by .dockerignore, and how files land in a layer.

A context is a directory (``build DIR``; a tar on stdin is unpacked into a temporary directory first). Sources are
context-relative paths or globs (``*``, ``?``, ``[...]`` per path component, as Go's filepath.Match). Nothing
outside the context can be named: ``..`` that leaves it is refused, and so is a symlink, met while resolving a
source, whose target leaves it. Symlinks inside copied directories are copied as symlinks, never followed.

Copy rules, as Docker's: several sources, or a destination ending in ``/``, make the destination a directory; a
directory source copies its *contents*; a single file onto an existing directory lands inside it. Copied entries
belong to 0:0 unless ``--chown``; ``--chmod`` sets their mode; modification times are kept (the layer writer clamps
them to the build's epoch).

``--exclude=PATTERN`` (COPY and ADD, repeatable; .dockerignore syntax: ``*``, ``**``, ``!``) drops entries from a
copy: a pattern is matched against each entry's path relative to the source it comes from (inside a directory
source: the path below that directory; a file source: its name; with ``--parents``: the path below the pivot).
An excluded directory takes its contents with it unless a ``!`` pattern re-includes some.

``--parents`` keeps each matched source's path (relative to the context root, or to the pivot written as ``/./``
in the source: ``COPY --parents x/./y/*.txt /d/`` gives ``/d/y/a.txt``) under the destination, which is then
always a directory; ``**`` in such a source matches any number of directories.

``--link`` is accepted and changes nothing in the result: every COPY/ADD already writes a layer of its own (the
step's upper directory), so the files are those BuildKit's linked layer holds. The one difference: a symlink of
the base image on the destination path is followed here (resolved inside the root, never to the host), where a
linked layer would hold real directories.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from dockyard.build.dockerignore import Matcher, clean
from dockyard.errors import InvalidArgument, NotFound

_MAGIC = ("*", "?", "[")
Chmod = Callable[[int, bool], int]  # ``--chmod``: (current mode, is a directory) -> new mode


class Context:
    def __init__(self, root: str, patterns: list[str] | None = None) -> None:
        self.root = os.path.realpath(root)
        self.matcher = Matcher(patterns or [])

    # ---- naming sources -------------------------------------------------------------------------------------
    def _clean(self, src: str) -> list[str]:
        parts: list[str] = []
        for p in src.replace("\\", "/").split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                if not parts:
                    raise InvalidArgument(f"forbidden path outside the build context: {src}")
                parts.pop()
            else:
                parts.append(p)
        return parts

    def _check_inside(self, rel: str, src: str) -> str:
        """The real path of a context-relative path, refused if a symlink on the way leaves the context."""
        real = os.path.realpath(os.path.join(self.root, rel))
        if real != self.root and not real.startswith(self.root + os.sep):
            raise InvalidArgument(f"forbidden path outside the build context: {src} (a symlink leads out of it)")
        return real

    def resolve(self, src: str, double_star: bool = False) -> list[str]:
        """Context-relative paths (``/``-separated, ``""`` for the root) matched by one COPY/ADD source
        (``double_star``: a ``**`` component matches any number of directories, as with ``COPY --parents``)."""
        parts = self._clean(src)
        found = [""]
        for part in parts:
            nxt = []
            for base in found:
                base_real = self._check_inside(base, src)
                if double_star and part == "**":
                    nxt.extend(r for r in self.walk(base) if r == base or os.path.isdir(os.path.join(self.root, r))
                               and not os.path.islink(os.path.join(self.root, r)))
                elif any(ch in part for ch in _MAGIC):
                    import fnmatch  # imports re: only for a glob

                    try:
                        names = sorted(os.listdir(base_real))
                    except (NotADirectoryError, FileNotFoundError):
                        names = []
                    for n in names:
                        if fnmatch.fnmatchcase(n, part):
                            rel = f"{base}/{n}" if base else n
                            if not self.matcher.matches(rel):
                                nxt.append(rel)
                else:
                    rel = f"{base}/{part}" if base else part
                    if os.path.lexists(os.path.join(base_real, part)) and not self.matcher.matches(rel):
                        nxt.append(rel)
            found = list(dict.fromkeys(nxt))
        for rel in found:
            if rel:
                self._check_inside(rel, src)
        if not found:
            raise NotFound(f"failed to compute cache key: \"{src}\" not found in the build context or excluded by "
                           ".dockerignore")
        return found

    def walk(self, rel: str) -> list[str]:
        """Included context-relative entries under (and including) ``rel``, parents before children."""
        out = [rel]
        top = os.path.join(self.root, rel)
        if os.path.isdir(top) and not os.path.islink(top):
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames.sort()
                keep = []
                for d in dirnames:
                    r = os.path.relpath(os.path.join(dirpath, d), self.root).replace(os.sep, "/")
                    if not self.matcher.matches(r) or self.matcher.may_include_under(r):
                        keep.append(d)
                        if not self.matcher.matches(r):
                            out.append(r)
                dirnames[:] = keep
                for f in sorted(filenames):
                    r = os.path.relpath(os.path.join(dirpath, f), self.root).replace(os.sep, "/")
                    if not self.matcher.matches(r):
                        out.append(r)
        return out

    def parents_sources(self, src: str) -> tuple[str, list[str]]:
        """``COPY --parents``: the pivot of ``src`` (context-relative, ``""`` without ``/./``) and its matches."""
        pivot, sep, pattern = src.partition("/./")
        if not sep:
            pivot, pattern = "", src
        pivot = "/".join(self._clean(pivot))
        pattern = clean("/" + pattern).lstrip("/")  # no ``..`` above the pivot
        return pivot, self.resolve(f"{pivot}/{pattern}" if pivot else pattern, double_star=True)

    def checksum(self, rels: list[str], exclude: Matcher | None = None, pivots: list[str] | None = None) -> str:
        """A digest of what the sources contain (names, types, modes, file contents, link targets), not of mtimes:
        the cache key of a COPY/ADD. ``exclude``/``pivots`` select entries as ``copy_tree`` does."""
        from dockyard.ids import sha256

        entries = []
        size = 0
        for i, top in enumerate(rels):
            for rel in selected(self.root, top, self.walk, exclude, pivots[i] if pivots else None):
                p = os.path.join(self.root, rel)
                st = os.lstat(p)
                entries.append((rel, p, st))
                size += st.st_size if stat.S_ISREG(st.st_mode) else 0
        h = sha256(size_hint=size)  # the hasher by the bytes to read (the digest is the same)
        for rel, p, st in entries:
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
            h.update(b"\0")
        return "sha256:" + h.hexdigest()


def _is_dir(p: str) -> bool:
    return os.path.isdir(p) and not os.path.islink(p)


def selected(src_root: str, top: str, walk, exclude: Matcher | None,  # type: ignore[no-untyped-def]
             pivot: str | None = None) -> list[str]:
    """The entries ``walk(top)`` gives, less those ``exclude`` matches. Each entry is matched by its path relative
    to the source: below ``pivot`` (``--parents``), below ``top`` when it is a directory, else by its name."""
    out = walk(top)
    if exclude is None or not exclude.patterns:
        return out
    top_dir = _is_dir(os.path.join(src_root, top))
    keep = []
    for rel in out:
        if pivot is not None:
            key = os.path.relpath(rel, pivot) if pivot else rel
        elif top_dir:
            key = os.path.relpath(rel, top) if rel != top else "."
        else:
            key = os.path.basename(rel)
        if not exclude.matches(key):
            keep.append(rel)
    return keep


def copy_tree(src_root: str, rels: list[str], walk, dest: str, dest_is_dir: bool,  # type: ignore[no-untyped-def]
              uid: int | None, gid: int | None, chmod: Chmod | None, exclude: Matcher | None = None,
              pivots: list[str] | None = None) -> None:
    """Copy sources (``rels`` under ``src_root``, expanded by ``walk(rel)``) to ``dest`` (a host path inside the
    merged root, already resolved within it). Directory sources copy their contents; with ``pivots``
    (``--parents``, one per source) each source lands at ``dest/<its path below its pivot>``, its parent
    directories made like the source's. ``exclude`` drops entries (see ``selected``)."""
    for i, top in enumerate(rels):
        top_abs = os.path.join(src_root, top)
        pivot = pivots[i] if pivots is not None else None
        if pivot is not None:
            sub_top = os.path.relpath(top, pivot) if pivot else top
            if sub_top == ".." or sub_top.startswith("../"):
                raise InvalidArgument(f"{top}: source path is not below its --parents pivot {pivot or '/'}")
            base = dest if sub_top == "." else os.path.join(dest, sub_top)
            os.makedirs(dest, exist_ok=True)
            parts = [] if sub_top == "." else sub_top.split("/")[:-1]
            for n in range(1, len(parts) + 1):  # the parents, made like the source's (links followed)
                d = os.path.join(dest, *parts[:n])
                if not _is_dir(d):
                    st = os.stat(os.path.join(src_root, pivot, *parts[:n]))
                    mode = stat.S_IMODE(st.st_mode)
                    _mkdir(d, chmod(mode, True) if chmod else mode, uid, gid)
                    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        elif _is_dir(top_abs):
            base = dest
        elif dest_is_dir or _is_dir(dest):
            base = os.path.join(dest, os.path.basename(top) or os.path.basename(src_root))
        else:
            base = dest
        os.makedirs(os.path.dirname(base.rstrip("/")) or "/", exist_ok=True)
        for rel in selected(src_root, top, walk, exclude, pivot):
            sub = os.path.relpath(rel, top) if rel != top else "."
            target = base if sub == "." else os.path.join(base, sub)
            if sub != "." and not _is_dir(os.path.dirname(target)):
                # its directory was excluded but a ``!`` pattern keeps this entry: make the missing directories
                # (never through a symlink of the image)
                walked = base
                if not _is_dir(base):
                    _mkdir(base, 0o755, uid, gid)
                for part in sub.split("/")[:-1]:
                    walked = os.path.join(walked, part)
                    if not _is_dir(walked):
                        _mkdir(walked, 0o755, uid, gid)
            _copy_entry(os.path.join(src_root, rel), target, uid, gid, chmod)


def _mkdir(path: str, mode: int, uid: int | None, gid: int | None) -> None:
    if os.path.lexists(path):
        os.unlink(path)
    os.mkdir(path)
    os.chmod(path, mode)
    os.lchown(path, uid if uid is not None else 0, gid if gid is not None else 0)


def _copy_entry(src: str, dst: str, uid: int | None, gid: int | None, chmod: Chmod | None) -> None:
    st = os.lstat(src)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        if os.path.islink(dst) or (os.path.lexists(dst) and not os.path.isdir(dst)):
            os.unlink(dst)
        os.makedirs(dst, exist_ok=True)
        os.chmod(dst, chmod(mode, True) if chmod is not None else mode)
    elif stat.S_ISLNK(st.st_mode):
        _replace(dst)
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode):
        _replace(dst)
        with open(src, "rb") as fi:
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as fo:
                while chunk := fi.read(1 << 20):
                    fo.write(chunk)
        os.chmod(dst, chmod(mode, False) if chmod is not None else mode)
    else:
        return  # sockets, fifos, devices are not copied
    os.lchown(dst, uid if uid is not None else 0, gid if gid is not None else 0)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _replace(path: str) -> None:
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
    elif os.path.isdir(path):
        from dockyard.fsutil import rmtree

        rmtree(path)
