"""``build``: a Dockerfile and a context -> an image (``engine.build``; progress on stderr as BuildKit's plain
output, or its live view on a terminal: ``cli.progress``). ``-o/--output`` as BuildKit's (``buildx build`` shares
it, with ``--push``): ``type=local,dest=DIR`` or ``-o DIR`` (the final stage's files, one ``linux_amd64``-style
subdirectory per platform), ``type=tar,dest=FILE`` or ``-o -`` (the same as a tar), ``type=oci|docker,dest=FILE``
(the save archive, which is both), ``type=image|registry`` (stored; registry or push=true pushes each tag). The
image is always stored too."""

from __future__ import annotations

import os
import sys

from dockyard.cli.flags import BOOL, LIST, STR, Flags
from dockyard.cli.main import ArgumentCountError, Context, UsageError
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.engine.build import BuildEvent


def _flags() -> Flags:
    return Flags("build", "[OPTIONS] PATH | -", [
        ("-t, --tag", LIST, []), ("-f, --file", STR, ""), ("--build-arg", LIST, []), ("--target", STR, ""),
        ("--no-cache", BOOL, False), ("--pull", BOOL, False), ("-q, --quiet", BOOL, False),
        ("--iidfile", STR, ""), ("--label", LIST, []), ("--network", STR, "default"), ("--platform", STR, ""),
        ("--progress", STR, "auto"), ("--rm", BOOL, True), ("--force-rm", BOOL, False),
        ("-o, --output", LIST, []),
    ])


def parse_outputs(outputs: list[str]) -> tuple[list[dict[str, str]], bool]:
    """``-o/--output`` values -> (the exports to write after the build, whether to push the tags)."""
    exports: list[dict[str, str]] = []
    push = False
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
    return exports, push


def write_outputs(ctx: Context, image_id: str, exports: list[dict[str, str]], tags: list[str],
                  push: bool) -> None:
    """What ``parse_outputs`` asked for, once the image is built and stored."""
    for kv in exports:
        if kv["type"] in ("local", "tar"):
            from dockyard.engine.build import export_filesystem

            export_filesystem(ctx.store, image_id, kv["dest"], kv["type"], out=sys.stdout.buffer)
        else:
            from dockyard.engine.images import save_images_to_file

            save_images_to_file(ctx.store, tags or [image_id], kv["dest"])
    if push:
        from dockyard.cli.registry import Display
        from dockyard.engine.images import push as push_image

        for t in tags:
            Display(sys.stderr).render(push_image(ctx.store, t))


def _is_tar(data: bytes) -> bool:
    return data[257:262] == b"ustar" or data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00"


def plain_line(ev: BuildEvent) -> str | None:
    """BuildKit's plain progress line for an event (None for the final BuildFinished)."""
    from dockyard.engine.build import BuildWarning, StepCached, StepDone, StepOutput, StepStarted

    if isinstance(ev, (StepStarted, StepOutput)):
        return f"#{ev.number} {ev.text}"
    if isinstance(ev, StepCached):
        return f"#{ev.number} CACHED"
    if isinstance(ev, StepDone):
        return f"#{ev.number} DONE {ev.seconds:.1f}s"
    if isinstance(ev, BuildWarning):
        return ev.text
    return None


def main(ctx: Context, argv: list[str], push: bool = False) -> int:
    """``push``: ``buildx build --push``."""
    vals, pos = _flags().parse(argv)
    if len(pos) != 1:
        raise ArgumentCountError('"dockyard build" requires exactly 1 argument.')
    exports, out_push = parse_outputs(vals["output"])
    push = push or out_push
    if push and not vals["tag"]:
        raise UsageError("tag is needed when pushing to registry")
    if vals["progress"] not in ("auto", "plain", "tty", "quiet"):  # live view on a terminal (cli.progress)
        raise InvalidArgument(f'--progress={vals["progress"]}: invalid progress mode, expected auto, plain, tty '
                              "or quiet")
    quiet = vals["quiet"] or vals["progress"] == "quiet"
    from dockyard.engine.build import extract_context, remove_context, run_build

    build_args = {}
    for a in vals["build_arg"]:
        k, sep, v = a.partition("=")
        if not sep:
            if k not in os.environ:
                continue  # --build-arg NAME takes the caller's value, if any
            v = os.environ[k]
        build_args[k] = v
    labels = dict(item.partition("=")[::2] for item in vals["label"])
    target = pos[0]
    tmpdir = None
    dockerfile: bytes | None = None
    name = vals["file"] or "Dockerfile"
    try:
        if target == "-":
            data = sys.stdin.buffer.read()
            if _is_tar(data):
                import io

                tmpdir = extract_context(io.BytesIO(data))
            else:
                import tempfile

                tmpdir = tempfile.mkdtemp(prefix="dockyard-build-ctx-")
                dockerfile = data
            context_dir = tmpdir
        else:
            context_dir = target
        df_path = None
        if dockerfile is None and os.path.isdir(context_dir):
            if name == "-":
                dockerfile = sys.stdin.buffer.read()
            else:
                df_path = name if vals["file"] and target != "-" else os.path.join(context_dir, name)

        def show(ev: BuildEvent) -> None:
            line = plain_line(ev)
            if line is not None and not quiet:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

        view = None
        if not quiet:
            from dockyard.cli.progress import BuildView, use_live_view

            if use_live_view(vals["progress"]):
                view = BuildView(sys.stderr)
        ok = False
        if view is not None:
            view.start()
        try:
            image_id = run_build(ctx.store, context_dir, view.event if view is not None else show,
                                 dockerfile=dockerfile, dockerfile_path=df_path, tags=vals["tag"],
                                 build_args=build_args, target=vals["target"] or None, no_cache=vals["no_cache"],
                                 labels=labels, network=vals["network"], platform=vals["platform"],
                                 pull=vals["pull"])
            ok = True
        finally:
            if view is not None:
                view.close(ok)
        if vals["iidfile"]:
            with open(vals["iidfile"], "w") as f:
                f.write(image_id)
        write_outputs(ctx, image_id, exports, vals["tag"], push)
        if quiet and not any(kv.get("dest") == "-" for kv in exports):  # stdout holds the tar then
            print(image_id)
        return 0
    finally:
        if tmpdir is not None:
            remove_context(tmpdir)
