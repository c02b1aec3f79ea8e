"""``top`` (processes of a container, as ps shows them) and ``stats --no-stream`` (cgroup figures)."""

from __future__ import annotations

import os
import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import Conflict


def _pids_in_container(pid: int) -> list[int]:
    """Host pids of every process in the pid namespace of ``pid``."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/pid") == ns:
                    out.append(int(d))
            except OSError:
                pass
    return sorted(out)


def _proc_row(pid: int) -> list[str] | None:
    import pwd
    import time

    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        st = os.stat(f"/proc/{pid}")
    except OSError:
        return None
    rest = stat[stat.rindex(b")") + 2:].split()
    ppid = rest[1].decode()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(rest[11]) + int(rest[12])) // ticks
    start_ticks = int(rest[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    started = time.time() - uptime + start_ticks / ticks
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    if not cmd:
        cmd = "[" + stat[stat.index(b"(") + 1:stat.rindex(b")")].decode() + "]"
    return [user, str(pid), ppid, "0", time.strftime("%H:%M", time.localtime(started)), "?",
            f"{cpu // 3600:02d}:{cpu // 60 % 60:02d}:{cpu % 60:02d}", cmd]


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.engine.containers import ContainerStore

    cs = ContainerStore(ctx.store)
    if ctx.verb == "top":
        p = Parser("top", "CONTAINER [ps OPTIONS]")
        p.add_argument("container")
        p.add_argument("ps_args", nargs="*")
        o = p.parse_args(argv)
        c = cs.get(o.container)
        if c.state not in ("running", "paused") or not c.pid:
            raise Conflict(f"container {c.id} is not running")
        rows = [["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]]
        rows += [r for r in (_proc_row(p) for p in _pids_in_container(c.pid)) if r]
        from dockyard.cli.template import tabwrite

        sys.stdout.write("".join(ln + "\n" for ln in tabwrite(["\t".join(r) for r in rows], 10, 3)))
        return 0
    p = Parser("stats", "[OPTIONS] [CONTAINER...]")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format", default="")
    p.add_argument("containers", nargs="*")
    o = p.parse_args(argv)
    from dockyard.cli.humanize import bytes_size, human_size
    from dockyard.cli.template import format_rows
    from dockyard.engine.monitor import RUNTIME_STATE
    from dockyard.runtime.base import get_runtime

    cons = [cs.get(r) for r in o.containers] if o.containers else cs.list(all=o.all)

    def sample() -> dict[str, dict]:
        out: dict[str, dict] = {}
        for c in cons:
            if c.state in ("running", "paused"):
                try:
                    out[c.id] = get_runtime(c.spec.runtime, RUNTIME_STATE).stats(c.id)
                except Exception:  # noqa: BLE001 - exited meanwhile
                    pass
        return out

    import time

    fmt = o.format or ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}"
                       "\t{{.BlockIO}}\t{{.PIDs}}")
    headers = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
               "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
               "PIDs": "PIDS"}
    host_mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    t0, first = time.monotonic(), sample()
    time.sleep(0.25)  # CPU % is a rate: two readings, as docker stats takes
    while True:
        t1, second = time.monotonic(), sample()
        rows = []
        for c in cons:
            s = second.get(c.id) or {}
            mem_d = s.get("memory") or {}
            mem = int(mem_d.get("usage") or 0) - int(mem_d.get("inactive_file") or 0)
            limit = int(mem_d.get("limit") or 0) or host_mem
            cpu0 = ((first.get(c.id) or {}).get("cpu") or {}).get("usage_ns") or 0
            cpu1 = (s.get("cpu") or {}).get("usage_ns") or 0
            cpu_pct = 100.0 * max(0, cpu1 - cpu0) / 1e9 / (t1 - t0) if cpu0 and cpu1 else 0.0
            rx, tx = _net_io(c.pid) if c.id in second and c.pid else (0, 0)
            rd, wr = _block_io(c.id) if c.id in second else (0, 0)
            rows.append({"Container": c.id[:12], "ID": c.id if o.no_trunc else c.id[:12], "Name": c.name,
                         "CPUPerc": f"{cpu_pct:.2f}%",
                         "MemUsage": f"{bytes_size(max(mem, 0))} / {bytes_size(limit)}",
                         "MemPerc": f"{100.0 * max(mem, 0) / limit:.2f}%",
                         "NetIO": f"{human_size(rx)} / {human_size(tx)}",
                         "BlockIO": f"{human_size(rd)} / {human_size(wr)}",
                         "PIDs": str((s.get("pids") or {}).get("current") or 0)})
        if not o.no_stream and sys.stdout.isatty():
            sys.stdout.write("\x1b[2J\x1b[H")  # redraw in place, as docker stats does on a terminal
        sys.stdout.write(format_rows(fmt, rows, headers))
        sys.stdout.flush()
        if o.no_stream or not second:
            return 0
        t0, first = t1, second
        time.sleep(1.0)  # docker stats refreshes once a second until interrupted


def _net_io(pid: int) -> tuple[int, int]:
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


def _block_io(cid: str) -> tuple[int, int]:
    """Bytes read and written by the container's cgroup (blkio on cgroup v1, io.stat on v2)."""
    rd = wr = 0
    for path in (f"/sys/fs/cgroup/blkio/dockyard/{cid}/blkio.throttle.io_service_bytes_recursive",
                 f"/sys/fs/cgroup/dockyard/{cid}/io.stat"):
        try:
            with open(path) as f:
                for ln in f:
                    parts = ln.split()
                    if len(parts) == 3 and parts[1] in ("Read", "Write"):  # v1: "8:0 Read 4096"
                        if parts[1] == "Read":
                            rd += int(parts[2])
                        else:
                            wr += int(parts[2])
                    for p in parts[1:]:  # v2: "8:0 rbytes=4096 wbytes=0 ..."
                        k, _, v = p.partition("=")
                        if k == "rbytes":
                            rd += int(v)
                        elif k == "wbytes":
                            wr += int(v)
            return rd, wr
        except (OSError, ValueError):
            continue
    return rd, wr
