"""Verbs ``import``, ``save`` and ``load`` (``engine.images``)."""

from __future__ import annotations

import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import ArgumentCountError, Context, UsageError


def main(ctx: Context, argv: list[str]) -> int:
    return {"import": _import, "save": _save, "load": _load}[ctx.verb](ctx, argv)


def _import(ctx: Context, argv: list[str]) -> int:
    p = Parser("import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
               "Import the contents from a tarball to create a filesystem image")
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction to the image")
    p.add_argument("-m", "--message", default="", help="Set commit message for imported image")
    p.add_argument("--platform", default="", help="Set platform if server is multi-platform capable")
    p.add_argument("source")
    p.add_argument("ref", nargs="?")
    a = p.parse_args(argv)
    from typing import IO

    from dockyard.engine.images import check_import, import_image

    source: str | IO[bytes] = a.source
    if a.source == "-":
        check_import(a.ref, a.platform)  # a bad name is refused before the terminal check
        if sys.stdin.isatty():
            raise UsageError('"dockyard import" requires the tar on stdin when the source is "-"')
        source = sys.stdin.buffer
    print(import_image(ctx.store, source, a.ref, a.change, a.message, a.platform))
    return 0


def _save(ctx: Context, argv: list[str]) -> int:
    p = Parser("save", "[OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to "
               "STDOUT by default)")
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("images", nargs="*")
    a = p.parse_args(argv)
    if not a.images:
        raise ArgumentCountError('"dockyard save" requires at least 1 argument.')
    from dockyard.engine.images import check_save, save_images, save_images_to_file

    if a.output:
        save_images_to_file(ctx.store, a.images, a.output)
        return 0
    check_save(ctx.store, a.images)
    if sys.stdout.isatty():
        from dockyard.errors import InvalidArgument

        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    save_images(ctx.store, a.images, sys.stdout.buffer)
    return 0


def _load(ctx: Context, argv: list[str]) -> int:
    p = Parser("load", "[OPTIONS]", "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", default="", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")
    p.add_argument("--platform", default="", help="Load only the given platform variant")
    a = p.parse_args(argv)
    from dockyard.engine.images import load_images, open_archive
    from dockyard.oci.image import parse_platform

    if a.platform:
        parse_platform(a.platform)  # checked before the input is opened
    if a.input:
        f = open_archive(a.input)
    else:
        if sys.stdin.isatty():
            from dockyard.errors import InvalidArgument

            raise InvalidArgument("requested load from stdin, but stdin is empty")
        f = sys.stdin.buffer
    out = []
    try:
        for ev in load_images(ctx.store, f, a.platform):
            if ev.kind == "replaced":
                out.append(f"The image {ev.tag} already exists, renaming the old one with ID {ev.old_id} to "
                           "empty string")
            else:
                out.append(f"Loaded image: {ev.tag}" if ev.tag else f"Loaded image ID: {ev.image_id}")
    finally:
        if a.input:
            f.close()
    sys.stdout.write("".join(line + "\n" for line in out))
    return 0
