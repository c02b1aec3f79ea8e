"""``top``: the processes of a running container, as ``ps -ef`` shows them (GET /containers/{id}/top)."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.engine.records import TopResult
    from dockyard.state.db import Store

TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]


def pids_in_container(pid: int) -> list[int]:
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


def top(store: Store, ref: str, ps_args: str = "") -> TopResult:
    """Titles and rows of container ``ref``'s processes (Conflict if it is not running). ``ps_args`` other than
    Docker's default ``-ef`` are refused: the columns are always ps -ef's."""
    from dockyard.engine.containers import ContainerStore
    from dockyard.engine.records import TopResult
    from dockyard.errors import Conflict, InvalidArgument

    if ps_args.strip() not in ("", "-ef", "-e -f", "-f -e", "-fe"):
        raise InvalidArgument(f"top: ps options {ps_args!r} are not supported (the columns are ps -ef's)")
    c = ContainerStore(store).get(ref)
    if c.state not in ("running", "paused") or not c.pid:
        raise Conflict(f"container {c.id} is not running")
    rows = [r for r in (_proc_row(p) for p in pids_in_container(c.pid)) if r]
    return TopResult(titles=list(TITLES), processes=rows)
