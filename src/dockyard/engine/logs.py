"""A container's log as an iterator of typed entries: Docker's json-file log that its monitor writes.

The monitor writes ``containers/<id>/<id>-json.log`` (one JSON object a line: ``log``, ``stream``, ``time``) and
rotates it once to ``<id>-json.log.1`` at 20 MB. ``logs`` reads both, oldest first, and with ``follow`` goes on
reading what is appended until the container has stopped and everything written is read. A follower keeps the fd
of the file it reads: when the file is rotated (renamed) under it, it reads the old file to its end, then goes on
with its successor, so that a follower that keeps up loses nothing:

    for e in logs(store, "web", follow=True, tail=10):
        out = sys.stderr if e.stream == "stderr" else sys.stdout
"""

from __future__ import annotations

import os
import time

from dockyard import jsonc as json


TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from dockyard.engine.records import LogEntry
    from dockyard.state.db import Store

FOLLOW_POLL = 0.05  # seconds between looks at a followed log that has not grown


def _entry(line: bytes, since: float, until: float) -> LogEntry | None:
    from dockyard.engine.records import LogEntry
    from dockyard.timeparse import parse_rfc3339

    try:
        rec = json.loads(line)
    except ValueError:
        return None
    t = rec.get("time", "")
    ts = parse_rfc3339(t) if (since or until) else 0.0
    if (since and ts < since) or (until and ts > until):
        return None
    return LogEntry(stream="stderr" if rec.get("stream") == "stderr" else "stdout", time=t, ts=ts,
                    data=rec.get("log", "").encode("utf-8", "surrogateescape"))


def logs(store: Store, ref: str, follow: bool = False, since: float = 0.0, until: float = 0.0,
         tail: int = -1, heartbeat: bool = False) -> Iterator[LogEntry]:
    """Entries of container ``ref``'s log: ``since``/``until`` (unix times, 0 = unbounded) keep the entries
    logged in that window, ``tail`` >= 0 only the last ``tail`` lines of what is there now; ``follow`` then
    yields new entries as they are written, until the container is not running and the log is read to its end
    (or the container is removed). ``heartbeat`` (a long-running caller such as the API service) also yields
    None on each idle look at a followed log, so that a caller whose client went away can stop the iterator."""
    from dockyard.engine.containers import ContainerStore

    cs = ContainerStore(store)
    c = cs.get(ref)
    path = os.path.join(c.dir(store), f"{c.id}-json.log")
    lines: list[bytes] = []
    cur: int | None = None  # the fd of the file being followed: kept across a rotation until read to its end
    try:
        cur = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        pass
    try:
        with open(path + ".1", "rb") as fh:
            old = fh.read()
            if cur is not None and os.fstat(fh.fileno()).st_ino == os.fstat(cur).st_ino:
                old = b""  # rotated between our two opens: cur is that file
        lines += old.splitlines()
    except FileNotFoundError:
        pass
    buf = b""
    if cur is not None:
        buf = _read_all(cur)
    *done, buf = buf.split(b"\n")
    lines += done
    if tail >= 0:
        lines = lines[-tail:] if tail > 0 else []
    for ln in lines:
        e = _entry(ln, since, until)
        if e is not None:
            yield e
    if not follow:
        if cur is not None:
            os.close(cur)
        return
    try:
        while True:
            data = _read_all(cur) if cur is not None else b""
            if data:
                buf += data
                *done, buf = buf.split(b"\n")
                for ln in done:
                    e = _entry(ln, since, until)
                    if e is not None:
                        yield e
                continue
            nxt = _successor(path, cur)
            if nxt is not None:  # rotated: what was appended to the old file before the rename is read first
                if cur is not None:
                    buf += _read_all(cur)
                    os.close(cur)
                cur = nxt
                continue
            try:
                running = cs.get(c.id).running
            except Exception:  # noqa: BLE001 - removed meanwhile
                return
            if not running and not _read_more(cur) and _successor(path, cur) is None:
                if buf:
                    e = _entry(buf, since, until)
                    if e is not None:
                        yield e
                return
            if until and time.time() > until:
                return
            if heartbeat:
                yield None  # type: ignore[misc]
            time.sleep(FOLLOW_POLL)  # following a file: poll for growth
    finally:
        if cur is not None:
            os.close(cur)


def dropped(store: Store, ref: str) -> bool:
    """Whether the log of container ``ref`` lost its oldest output to rotation (the monitor marks it when a
    rotation replaces the previous rotated file: the log keeps two files of ``LOG_MAX`` at most)."""
    from dockyard.engine.containers import ContainerStore

    c = ContainerStore(store).get(ref)
    return os.path.exists(os.path.join(c.dir(store), f"{c.id}-json.log.dropped"))


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def _read_more(fd: int | None) -> bool:
    """Whether ``fd`` has bytes past its offset (without reading them)."""
    if fd is None:
        return False
    return os.fstat(fd).st_size > os.lseek(fd, 0, os.SEEK_CUR)


def _successor(path: str, cur: int | None) -> int | None:
    """An fd of the file that followed ``cur`` after a rotation (``path`` renamed to ``path.1`` and made anew),
    or None while ``path`` is still ``cur``. When two rotations happened meanwhile, ``path.1`` is the one to read
    next (``cur``, kept open, was read to its end first)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    if cur is not None and os.fstat(fd).st_ino == os.fstat(cur).st_ino:
        os.close(fd)
        return None
    if cur is None:
        return fd
    try:
        one = os.open(path + ".1", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return fd
    if os.fstat(one).st_ino in (os.fstat(cur).st_ino, os.fstat(fd).st_ino):
        os.close(one)
        return fd
    os.close(fd)  # cur was rotated away twice: path.1 came after it
    return one
