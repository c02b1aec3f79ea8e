"""``build``: a Dockerfile and a context -> an image (progress on stderr as BuildKit's plain output)."""

from __future__ import annotations

import os
import sys

from dockyard.cli.flags import BOOL, LIST, STR, Flags
from dockyard.cli.main import Context, UsageError
from dockyard.errors import InvalidArgument


def _flags() -> Flags:
    return Flags("build", "[OPTIONS] PATH | -", [
        ("-t, --tag", LIST, []), ("-f, --file", STR, ""), ("--build-arg", LIST, []), ("--target", STR, ""),
        ("--no-cache", BOOL, False), ("--pull", BOOL, False), ("-q, --quiet", BOOL, False),
        ("--iidfile", STR, ""), ("--label", LIST, []), ("--network", STR, "default"), ("--platform", STR, ""),
        ("--progress", STR, "auto"), ("--rm", BOOL, True), ("--force-rm", BOOL, False),
    ])


def _is_tar(data: bytes) -> bool:
    return data[257:262] == b"ustar" or data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00"


def main(ctx: Context, argv: list[str]) -> int:
    vals, pos = _flags().parse(argv)
    if len(pos) != 1:
        raise UsageError('"dockyard build" requires exactly 1 argument.')
    if vals["pull"]:
        raise InvalidArgument("--pull: dockyard has no registry to pull from (import or build the base image)")
    if vals["progress"] not in ("auto", "plain", "tty", "quiet"):  # the steps are always shown as plain lines
        raise InvalidArgument(f'--progress={vals["progress"]}: invalid progress mode, expected auto, plain, tty '
                              "or quiet")
    if vals["progress"] == "quiet":
        vals["quiet"] = True
    import tempfile

    from dockyard.build.builder import Builder, Options
    from dockyard.build.context import Context as BuildContext
    from dockyard.build.dockerignore import load_patterns
    from dockyard.build.stages import parse_dockerfile
    from dockyard.fsutil import rmtree

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
    dockerfile_text: bytes | None = None
    name = vals["file"] or "Dockerfile"
    try:
        if target == "-":
            data = sys.stdin.buffer.read()
            tmpdir = tempfile.mkdtemp(prefix="dockyard-build-ctx-")
            if _is_tar(data):
                import io
                import tarfile

                from dockyard.snapshots.extract import Extractor

                fd = os.open(tmpdir, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
                        Extractor(fd, allow_devices=False).extract(tf)
                finally:
                    os.close(fd)
            else:
                dockerfile_text = data
            context_dir = tmpdir
        else:
            context_dir = target
            if not os.path.isdir(context_dir):
                raise InvalidArgument(f"unable to prepare context: path \"{context_dir}\" not found")
        if dockerfile_text is None:
            if name == "-":
                dockerfile_text = sys.stdin.buffer.read()
                df_path = None
            else:
                df_path = name if vals["file"] and target != "-" else os.path.join(context_dir, name)
                try:
                    with open(df_path, "rb") as f:
                        dockerfile_text = f.read()
                except FileNotFoundError:
                    raise InvalidArgument(f"failed to read dockerfile: open {df_path}: no such file or directory") \
                        from None
        else:
            df_path = None
        df = parse_dockerfile(dockerfile_text, os.path.basename(df_path) if df_path else "Dockerfile")
        patterns = load_patterns(context_dir, df_path)
        opts = Options(tags=vals["tag"], build_args=build_args, target=vals["target"] or None,
                       no_cache=vals["no_cache"], quiet=vals["quiet"], labels=labels, network=vals["network"],
                       platform=vals["platform"])
        builder = Builder(ctx.store, df, BuildContext(context_dir, patterns), opts, out=sys.stderr)
        image_id = builder.build()
        builder.step(f"writing image {image_id} done")
        for t in vals["tag"]:
            from dockyard.images import reference

            builder.say(f"{builder._current} naming to {reference.parse_tagged(t)} done")
        if vals["iidfile"]:
            with open(vals["iidfile"], "w") as f:
                f.write(image_id)
        if vals["quiet"]:
            print(image_id)
        return 0
    finally:
        if tmpdir is not None:
            rmtree(tmpdir)
