"""``buildx``: BuildKit's CLI over the same engine build. One built-in builder, ``default`` (the docker driver's
name): ``create``/``use``/``rm`` are accepted for scripts and change nothing; ``ls``/``inspect`` list the
platforms it runs (native, then each qemu-user registered in binfmt_misc). ``buildx build`` is ``build`` plus
``--push`` (push each tag), ``--load`` (the default: the result is stored locally, an index when several
platforms) and ``-o/--output`` (``type=oci|docker,dest=FILE``: the save archive, which is both;
``type=local,dest=DIR`` or ``-o DIR``: the final stage's files, one ``linux_amd64``-style subdirectory per
platform; ``type=tar,dest=FILE`` or ``-o -``: the same as a tar; ``type=image``/``registry`` as --push)."""

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
    from dockyard.cli import build

    push, outputs, rest = False, [], []
    it = iter(argv)
    for a in it:
        if a == "--push":
            push = True
        elif a == "--load":
            pass  # the result is always stored
        elif a in ("-o", "--output"):
            outputs.append(next(it, ""))
        elif a.startswith("--output=") or a.startswith("-o="):
            outputs.append(a.split("=", 1)[1])
        elif a.startswith("--builder=") or a == "--builder":
            name = a.split("=", 1)[1] if "=" in a else next(it, "")
            if name != BUILDER:
                raise UsageError(f'no builder "{name}" found')
        else:
            rest.append(a)
    exports: list[dict[str, str]] = []
    for o in outputs:
        if "=" not in o:  # BuildKit's shorthand: a directory, or - for a tar on stdout
            kv = {"type": "tar" if o == "-" else "local", "dest": o}
        else:
            kv = dict(p.partition("=")[::2] for p in o.split(","))
        t = kv.get("type", "")
        if t in ("image", "registry"):
            push = push or t == "registry" or kv.get("push") == "true"
        elif t in ("oci", "docker", "tar"):
            if not kv.get("dest"):
                raise UsageError(f"output type {t} requires dest=FILE")
            exports.append(kv)
        elif t == "local":
            if not kv.get("dest") or kv["dest"] == "-":
                raise UsageError("output type local requires dest=DIR")
            exports.append(kv)
        else:
            raise UsageError(f"unsupported output type {t!r} (local, tar, oci, docker, image, registry)")
    tags = _tags(rest)
    if push and not tags:
        raise UsageError("tag is needed when pushing to registry")
    import tempfile

    with tempfile.NamedTemporaryFile("r", prefix="dockyard-iid-") as iid:
        rc = build.main(Context(ctx.root, "build", ctx.debug), [*rest, "--iidfile", iid.name])
        if rc != 0:
            return rc
        image_id = iid.read().strip()
    from dockyard.engine.images import save_images_to_file

    for kv in exports:
        if kv["type"] in ("local", "tar"):
            from dockyard.engine.build import export_filesystem

            export_filesystem(ctx.store, image_id, kv["dest"], kv["type"], out=sys.stdout.buffer)
        else:
            save_images_to_file(ctx.store, tags or [image_id], kv["dest"])
    if push:
        from dockyard.cli.registry import Display
        from dockyard.engine.images import push as push_image

        for t in tags:
            Display(sys.stderr).render(push_image(ctx.store, t))
    return 0


def _tags(argv: list[str]) -> list[str]:
    out = []
    it = iter(argv)
    for a in it:
        if a in ("-t", "--tag"):
            out.append(next(it, ""))
        elif a.startswith("--tag=") or a.startswith("-t="):
            out.append(a.split("=", 1)[1])
        elif a.startswith("-t") and len(a) > 2:
            out.append(a[2:])
    return out
