"""``system prune``: container, network, image and build cache prune (and volume prune with ``--volumes``)."""

from __future__ import annotations

import sys

from dockyard.cli.main import Context


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser
    from dockyard.cli.builder import confirm

    p = Parser("system prune", "[OPTIONS]", "Remove unused data")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--volumes", action="store_true", help="Prune anonymous volumes")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. \"label=<key>=<value>\")")
    a = p.parse_args(argv)
    from dockyard.cli.builder import parse_filters
    from dockyard.engine.prune import system_prune, system_prune_warnings

    filters = parse_filters(a.filter)
    if not a.force:
        text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in system_prune_warnings(a.all, a.volumes))
        if a.filter:
            text += "\n  Items to be pruned will be filtered with:\n" + "".join(f"  - {f}\n" for f in a.filter)
        if not confirm(text + "\n"):
            return 0
    from dockyard.cli.humanize import human_size

    r = system_prune(ctx.store, all=a.all, volumes=a.volumes, filters=filters)
    out = ""
    if r.containers is not None and r.containers.deleted:
        out += "Deleted Containers:\n" + "".join(c + "\n" for c in r.containers.deleted) + "\n"
    if r.networks is not None and r.networks.deleted:
        out += "Deleted Networks:\n" + "".join(n + "\n" for n in r.networks.deleted) + "\n"
    if r.volumes is not None and r.volumes.deleted:
        out += "Deleted Volumes:\n" + "".join(n + "\n" for n in r.volumes.deleted) + "\n"
    if r.images is not None and r.images.deleted:
        out += "Deleted Images:\n" + "".join(f"{k.lower()}: {v}\n" for k, v in r.images.deleted) + "\n"
    if r.build_cache is not None and r.build_cache.deleted:
        out += "Deleted build cache objects:\n" + "".join(n + "\n" for n in r.build_cache.deleted) + "\n"
    sys.stdout.write(out + f"Total reclaimed space: {human_size(r.reclaimed)}\n")
    if r.networks is not None:
        for err in r.networks.errors:
            sys.stderr.write(f"Error: {err}\n")
    return 0
