"""``stats``: running containers' resource use as an iterator of typed samples (GET /containers/{id}/stats).

Figures come from the runtime (``Runtime.stats``: the cgroup's memory, CPU time, pids and block I/O, whichever
cgroup version the host has) and from the container's network devices (``/proc/<pid>/net/dev``, its own net
namespace). CPU % is a rate: the first batch is taken ``first_interval`` after a first reading, then one every
``interval`` seconds, as ``docker stats`` does.

    for batch in stats(store, ["web"], stream=False):
        for s in batch: print(s.name, s.cpu_percent, s.mem_usage)
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from dockyard.engine.containers import Container
    from dockyard.engine.records import StatsSample
    from dockyard.state.db import Store


def net_io(pid: int) -> tuple[int, int]:
    """Bytes received and sent on the container's interfaces other than lo (its /proc/PID/net/dev)."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            for ln in f.readlines()[2:]:
                name, _, rest = ln.partition(":")
                if name.strip() != "lo":
                    v = rest.split()
                    rx, tx = rx + int(v[0]), tx + int(v[8])
    except (OSError, ValueError, IndexError):
        pass
    return rx, tx


def _reading(c: Container) -> dict[str, Any] | None:
    from dockyard.engine.monitor import RUNTIME_STATE
    from dockyard.runtime.base import get_runtime

    if c.state not in ("running", "paused"):
        return None
    try:
        return get_runtime(c.spec.runtime, RUNTIME_STATE).stats(c.id)
    except Exception:  # noqa: BLE001 - exited meanwhile
        return None


def _sample(c: Container, now: dict[str, Any] | None, before: dict[str, Any] | None, dt: float,
            host_mem: int) -> StatsSample:
    from dockyard.engine.records import StatsSample

    s = now or {}
    mem_d = s.get("memory") or {}
    cache = int(mem_d.get("inactive_file") or 0)
    usage = max(int(mem_d.get("usage") or 0) - cache, 0)
    cpu0 = ((before or {}).get("cpu") or {}).get("usage_ns") or 0
    cpu1 = (s.get("cpu") or {}).get("usage_ns") or 0
    pct = 100.0 * max(0, cpu1 - cpu0) / 1e9 / dt if cpu0 and cpu1 and dt > 0 else 0.0
    rx, tx = net_io(c.pid) if now is not None and c.pid else (0, 0)
    io = s.get("io") or {}
    pids = s.get("pids") or {}
    return StatsSample(id=c.id, name=c.name, read=time.time(), cpu_ns=int(cpu1), cpu_percent=pct, mem_usage=usage,
                       mem_cache=cache, mem_limit=int(mem_d.get("limit") or 0) or host_mem,
                       mem_max=int(mem_d.get("max_usage") or 0), pids=int(pids.get("current") or 0),
                       pids_limit=pids.get("limit"), net_rx=rx, net_tx=tx, blk_read=int(io.get("read") or 0),
                       blk_write=int(io.get("write") or 0), running=now is not None)


def stats(store: Store, refs: list[str] | None = None, all: bool = False, stream: bool = True,
          interval: float = 1.0, first_interval: float = 0.25) -> Iterator[list[StatsSample]]:
    """Batches of one sample per container (``refs``, else the running ones, every one with ``all``), in that
    order; a container that is not running gets zeros (``running`` False). Without ``stream`` one batch;
    with it, batches until no container runs any more."""
    from dockyard.engine.containers import ContainerStore

    cs = ContainerStore(store)
    cons = [cs.get(r) for r in refs] if refs else cs.list(all=all)
    host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    t0 = time.monotonic()
    first = {c.id: _reading(c) for c in cons}
    time.sleep(first_interval)  # CPU % is a rate: two readings
    while True:
        t1 = time.monotonic()
        second = {c.id: _reading(c) for c in cons}
        yield [_sample(c, second[c.id], first[c.id], t1 - t0, host_mem) for c in cons]
        if not stream or not any(v is not None for v in second.values()):
            return
        t0, first = t1, second
        time.sleep(interval)  # a reading a second, as docker stats
