"""``builder prune``: the build cache and what killed builds left (``engine.prune``)."""

from __future__ import annotations

import sys

from dockyard.cli.main import Context, UsageError


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("builder prune", "[OPTIONS]", "Remove build cache")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused build cache, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. \"until=24h\")")
    p.add_argument("--keep-storage", default="0", help="Amount of disk space to keep for cache")
    a = p.parse_args(argv)
    filters = parse_filters(a.filter)
    from dockyard.cli.units import ram_bytes

    keep = ram_bytes(a.keep_storage) if a.keep_storage not in ("", "0") else 0
    if not a.force and not confirm("WARNING! This will remove all build cache. " if a.all else
                                   "WARNING! This will remove all dangling build cache. "):
        return 0
    from dockyard.cli.humanize import human_size
    from dockyard.engine.prune import prune_build_cache

    report = prune_build_cache(ctx.store, all=a.all, filters=filters, keep_storage=keep)
    out = ""
    if report.deleted:
        out += "Deleted build cache objects:\n" + "".join(n + "\n" for n in report.deleted) + "\n"
    out += f"Total reclaimed space: {human_size(report.reclaimed)}\n"
    sys.stdout.write(out)
    return 0


def parse_filters(values: list[str]) -> dict[str, list[str]]:
    from dockyard.engine.prune import check_build_filters

    filters: dict[str, list[str]] = {}
    for f in values:
        k, sep, v = f.partition("=")
        if not sep:
            raise UsageError(f"bad format of filter (expected name=value): {f}")
        filters.setdefault(k, []).append(v)
    check_build_filters(filters)
    return filters


def confirm(text: str) -> bool:
    sys.stdout.write(text + "Are you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
