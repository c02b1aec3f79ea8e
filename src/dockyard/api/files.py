"""A container's files and processes: archive GET/PUT/HEAD, export, changes, top, stats.

Tars are written by the engine to a file object; here that object is a bounded queue drained by the response's
stream (``writer_stream``), so an archive is never held whole in memory and a client that goes away stops the
writer at its next write.
"""

from __future__ import annotations

import base64
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from dockyard import jsonc as json
from dockyard.api.server import Reply, Request, StreamReply
from dockyard.errors import InvalidArgument

_TAR = "application/x-tar"


class _Gone(Exception):
    pass


class _QueueWriter:
    """A write-only file object whose writes become the chunks of a response (bounded: the writer waits)."""

    def __init__(self) -> None:
        self.q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)
        self.gone = False
        self.buf = bytearray()

    def write(self, data: bytes) -> int:
        if self.gone:
            raise _Gone
        self.buf += data
        if len(self.buf) >= 65536:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            self.q.put(bytes(self.buf))
            self.buf.clear()

    def writable(self) -> bool:
        return True


def writer_stream(fn: Callable[[Any], None]) -> Iterator[bytes]:
    """Run ``fn(file)`` in a thread and yield what it writes; its error before any output raises here (a reply)."""
    w = _QueueWriter()

    def work() -> None:
        try:
            fn(w)
            w.flush()
            w.q.put(None)
        except _Gone:
            pass
        except BaseException as e:  # noqa: BLE001 - re-raised in the stream
            w.q.put(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = w.q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        w.gone = True
        while t.is_alive():  # unblock a writer waiting on the full queue
            try:
                w.q.get(timeout=0.05)
            except queue.Empty:
                pass


def _rfc3339(t: float) -> str:
    from dockyard.timeparse import rfc3339_nano

    return rfc3339_nano(t)


def _stat_header(api: Any, id: str, path: str) -> tuple[str, str]:
    from dockyard.engine import archive

    st = archive.archive_stat(api.store, id, path)
    d = {"name": st.name, "size": st.size, "mode": st.mode, "mtime": _rfc3339(st.mtime),
         "linkTarget": st.link_target}
    return ("X-Docker-Container-Path-Stat", base64.b64encode(json.dumps(d).encode()).decode())


def _path(req: Request) -> str:
    p = req.arg("path")
    if not p:
        raise InvalidArgument("path is required")
    return p


def archive_head(api: Any, req: Request, id: str) -> Reply:
    return Reply(200, b"", headers=[_stat_header(api, id, _path(req))])


def archive_get(api: Any, req: Request, id: str) -> Any:
    from dockyard.engine import archive

    if req.method == "HEAD":
        return archive_head(api, req, id)
    path = _path(req)
    hdr = _stat_header(api, id, path)
    return StreamReply(writer_stream(lambda f: archive.archive_get(api.store, id, path, f)), _TAR, headers=[hdr])


def archive_put(api: Any, req: Request, id: str) -> Reply:
    from dockyard.engine import archive

    body = req.body
    if isinstance(body, bytes):
        import io

        body = io.BytesIO(body)
    try:
        archive.archive_put(api.store, id, _path(req), body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return Reply(200, b"")  # dockerd's status (docker-py checks for 200)


def export(api: Any, req: Request, id: str) -> StreamReply:
    from dockyard.engine import archive
    from dockyard.engine.containers import ContainerStore

    c = ContainerStore(api.store).get(id)  # a 404 before the stream starts
    return StreamReply(writer_stream(lambda f: archive.export(api.store, c.id, f)), _TAR)


def changes(api: Any, req: Request, id: str) -> Any:
    from dockyard.engine import archive

    return [{"Path": ch.path, "Kind": ch.kind} for ch in archive.changes(api.store, id)] or None


def top(api: Any, req: Request, id: str) -> Any:
    from dockyard.engine.top import top as etop

    r = etop(api.store, id, req.arg("ps_args"))
    return {"Titles": r.titles, "Processes": r.processes}


def stats_json(s: Any, ncpu: int) -> dict[str, Any]:
    """Docker's stats JSON for one sample. The engine gives the CPU rate over the last interval; the pre-CPU
    and system counters are derived so that the client's formula (cpu delta / system delta * CPUs) gives it."""
    from dockyard.timeparse import rfc3339_nano

    interval = 1_000_000_000
    cpu = int(s.cpu_ns)
    pre = max(cpu - int(s.cpu_percent / 100 * interval), 0) if s.running else 0
    system = int(s.read * 1e9) * ncpu if s.running else 0
    usage = {"total_usage": cpu, "usage_in_kernelmode": 0, "usage_in_usermode": 0}
    thr = {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    return {
        "id": s.id, "name": "/" + s.name, "read": rfc3339_nano(s.read) if s.running else "0001-01-01T00:00:00Z",
        "preread": rfc3339_nano(s.read - 1) if s.running else "0001-01-01T00:00:00Z",
        "pids_stats": {"current": s.pids, **({"limit": s.pids_limit} if s.pids_limit else {})},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": s.blk_read},
            {"major": 0, "minor": 0, "op": "write", "value": s.blk_write}] if s.running else None},
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": {"cpu_usage": usage, "system_cpu_usage": system, "online_cpus": ncpu, "throttling_data": thr},
        "precpu_stats": {"cpu_usage": {**usage, "total_usage": pre},
                         "system_cpu_usage": max(system - interval * ncpu, 0) if s.running else 0,
                         "online_cpus": ncpu, "throttling_data": thr},
        "memory_stats": {"usage": s.mem_usage + s.mem_cache, "stats": {"inactive_file": s.mem_cache},
                         "limit": s.mem_limit, **({"max_usage": s.mem_max} if s.mem_max else {})}
        if s.running else {},
        "networks": {"eth0": {"rx_bytes": s.net_rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                              "tx_bytes": s.net_tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}}
        if s.running else None,
    }


def stats(api: Any, req: Request, id: str) -> StreamReply:
    from dockyard.engine import stats as estats
    from dockyard.engine.containers import ContainerStore

    c = ContainerStore(api.store).get(id)
    stream = req.flag("stream", True) and not req.flag("one-shot")
    ncpu = os.cpu_count() or 1
    batches = estats.stats(api.store, [c.id], stream=stream)

    def body() -> Iterator[bytes]:
        for batch in batches:
            for s in batch:
                yield json.dumps(stats_json(s, ncpu)).encode() + b"\n"

    return StreamReply(body())


def register(r: Any) -> None:
    r.add("GET", "/containers/{id}/archive", archive_get)
    r.add("HEAD", "/containers/{id}/archive", archive_head)
    r.add("PUT", "/containers/{id}/archive", archive_put)
    r.add("GET", "/containers/{id}/export", export)
    r.add("GET", "/containers/{id}/changes", changes)
    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/stats", stats)
