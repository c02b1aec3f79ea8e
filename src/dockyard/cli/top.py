"""``top`` (processes of a container, as ps shows them) and ``stats`` (cgroup figures, once or streaming)."""

from __future__ import annotations

import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context


def main(ctx: Context, argv: list[str]) -> int:
    if ctx.verb == "top":
        p = Parser("top", "CONTAINER [ps OPTIONS]")
        p.add_argument("container")
        p.add_argument("ps_args", nargs="*")
        o = p.parse_args(argv)
        from dockyard.cli.template import tabwrite
        from dockyard.engine.top import top

        t = top(ctx.store, o.container, " ".join(o.ps_args))
        rows = [t.titles, *t.processes]
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
    from dockyard.engine.stats import stats

    fmt = o.format or ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}"
                       "\t{{.BlockIO}}\t{{.PIDs}}")
    headers = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
               "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
               "PIDs": "PIDS"}
    for batch in stats(ctx.store, o.containers, all=o.all, stream=not o.no_stream):
        rows = [{"Container": s.id[:12], "ID": s.id if o.no_trunc else s.id[:12], "Name": s.name,
                 "CPUPerc": f"{s.cpu_percent:.2f}%",
                 "MemUsage": f"{bytes_size(s.mem_usage)} / {bytes_size(s.mem_limit)}",
                 "MemPerc": f"{100.0 * s.mem_usage / s.mem_limit:.2f}%",
                 "NetIO": f"{human_size(s.net_rx)} / {human_size(s.net_tx)}",
                 "BlockIO": f"{human_size(s.blk_read)} / {human_size(s.blk_write)}",
                 "PIDs": str(s.pids)} for s in batch]
        if not o.no_stream and sys.stdout.isatty():
            sys.stdout.write("\x1b[2J\x1b[H")  # redraw in place, as docker stats does on a terminal
        sys.stdout.write(format_rows(fmt, rows, headers))
        sys.stdout.flush()
    return 0
