"""``buildx``: BuildKit's CLI over the same engine build. One built-in builder, ``default`` (the docker driver's
name): ``create``/``use``/``rm`` are accepted for scripts and change nothing; ``ls``/``inspect`` list the
platforms it runs (native, then each qemu-user registered in binfmt_misc). ``buildx build`` is ``build`` plus
``--push`` (push each tag) and ``--load`` (the default: the result is stored locally, an index when several
platforms); ``-o/--output`` is build's own (``cli.build``: type=local|tar|oci|docker|image|registry)."""

from __future__ import annotations

import sys

from dockyard.cli.main import Context, UsageError

BUILDER = "default"


_HELP = {  # the verbs without flags of their own: one built-in builder
    "create": (" [CONTEXT]", "Create a new builder instance (dockyard has one built-in builder: default)"),
    "use": (" NAME", "Set the current builder instance"),
    "ls": ("", "List builder instances"),
    "inspect": (" [NAME]", "Inspect current builder instance"),
    "rm": (" [NAME]", "Remove a builder instance (the built-in builder cannot be removed)"),
    "version": ("", "Show buildx version information"),
}


def main(ctx: Context, argv: list[str]) -> int:
    verb = ctx.verb.removeprefix("buildx-")
    if verb == "build":
        return _build(ctx, argv)
    if verb != "build" and ("--help" in argv or "-h" in argv):
        usage, what = _HELP[verb]
        print(f"\nUsage:  dockyard buildx {verb}{usage}\n\n{what}")
        return 0
    if verb in ("ls", "inspect"):
        return _show(ctx, argv, verb)
    if verb == "version":
        from dockyard import __version__

        print(f"dockyard buildx {__version__} (built-in builder)")
        return 0
    names = [a for a in argv if not a.startswith("-")]
    if verb == "create":
        print(BUILDER)  # one builder: a new one is the built-in one
        return 0
    for n in names:
        if n != BUILDER:
            raise UsageError(f'no builder "{n}" found')
    if verb == "rm":
        raise UsageError(f"{BUILDER} builder cannot be removed")
    return 0  # use


def _show(ctx: Context, argv: list[str], verb: str) -> int:
    from dockyard.engine.build import builder_platforms

    names = [a for a in argv if not a.startswith("-")]
    for n in names:
        if n != BUILDER:
            raise UsageError(f'no builder "{n}" found')
    plats = ", ".join(builder_platforms())
    if verb == "ls":
        rows = [("NAME/NODE", "DRIVER/ENDPOINT", "STATUS", "BUILDKIT", "PLATFORMS"),
                (f"{BUILDER}*", "docker", "", "", ""), (f" \\_ {BUILDER}", " \\_ default", "running", "dockyard",
                                                     plats)]
        w = [max(len(r[i]) for r in rows) for i in range(5)]
        sys.stdout.write("".join("   ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() + "\n" for r in rows))
    else:
        sys.stdout.write(f"Name:          {BUILDER}\nDriver:        docker\n\nNodes:\nName:             {BUILDER}\n"
                         f"Endpoint:         default\nStatus:           running\nPlatforms:        {plats}\n")
    return 0


def _build(ctx: Context, argv: list[str]) -> int:
    """``build`` (which takes ``-o/--output``: cli.build.parse_outputs) plus ``--push``, ``--load``, ``--builder``."""
    from dockyard.cli import build

    push, rest = False, []
    it = iter(argv)
    for a in it:
        if a == "--push":
            push = True
        elif a == "--load":
            pass  # the result is always stored
        elif a.startswith("--builder=") or a == "--builder":
            name = a.split("=", 1)[1] if "=" in a else next(it, "")
            if name != BUILDER:
                raise UsageError(f'no builder "{name}" found')
        else:
            rest.append(a)
    return build.main(Context(ctx.root, "build", ctx.debug), rest, push=push)
