"""Verbs ``import``, ``save`` and ``load`` (``engine.images``); on a terminal (stderr), a byte bar while the
archive goes through (``cli.progress``), nothing extra otherwise."""

from __future__ import annotations

import os
import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import ArgumentCountError, Context, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

    from dockyard.cli.progress import ByteBar


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
    from dockyard.engine.images import check_import, import_image

    source: str | IO[bytes] = a.source
    if a.source == "-":
        check_import(a.ref, a.platform)  # a bad name is refused before the terminal check
        if sys.stdin.isatty():
            raise UsageError('"dockyard import" requires the tar on stdin when the source is "-"')
        source = sys.stdin.buffer
    bar = None
    if _bar_wanted():
        from dockyard.cli.progress import CountingReader

        raw: IO[bytes] | None = source if not isinstance(source, str) else None
        if isinstance(source, str) and not source.startswith(("http://", "https://")) and os.path.isfile(source):
            check_import(a.ref, a.platform)  # a bad name is refused before the file is read
            try:
                raw = open(source, "rb")  # noqa: SIM115 - closed below
            except OSError:
                raw = None  # the engine opens it and words the error
        if raw is not None:
            bar = _bar("Importing", raw)
            source = CountingReader(raw, bar)  # type: ignore[assignment]
    try:
        iid = import_image(ctx.store, source, a.ref, a.change, a.message, a.platform)
    finally:
        if bar is not None:
            bar.close()
            if source is not sys.stdin.buffer and not isinstance(source, str):
                source.close()
    print(iid)
    return 0


def _bar_wanted() -> bool:
    try:
        return sys.stderr.isatty()
    except (ValueError, OSError):
        return False


def _bar(label: str, raw: object | None) -> ByteBar:
    """A bar for the stream ``raw`` (its size as the total when it is a regular file)."""
    from dockyard.cli.progress import ByteBar

    total = None
    try:
        st = os.fstat(raw.fileno())  # type: ignore[union-attr]
        import stat

        if stat.S_ISREG(st.st_mode):
            total = st.st_size - (raw.tell() if raw.seekable() else 0)  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        pass
    return ByteBar(label, total, sys.stderr)


def _save(ctx: Context, argv: list[str]) -> int:
    p = Parser("save", "[OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to "
               "STDOUT by default)")
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("images", nargs="*")
    a = p.parse_args(argv)
    if not a.images:
        raise ArgumentCountError('"dockyard save" requires at least 1 argument.')
    from dockyard.engine.images import check_save, save_images, save_images_to_file

    bar = _bar("Saving", None) if _bar_wanted() else None
    try:
        if a.output:
            save_images_to_file(ctx.store, a.images, a.output, bar.add if bar is not None else None)
            return 0
        check_save(ctx.store, a.images)
        if sys.stdout.isatty():
            from dockyard.errors import InvalidArgument

            raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        out: IO[bytes] = sys.stdout.buffer
        if bar is not None:
            from dockyard.cli.progress import CountingWriter

            out = CountingWriter(out, bar)  # type: ignore[assignment]
        save_images(ctx.store, a.images, out)
        return 0
    finally:
        if bar is not None:
            bar.close()


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
    bar = None
    if not a.quiet and _bar_wanted():
        from dockyard.cli.progress import CountingReader

        bar = _bar("Loading", f)
        f = CountingReader(f, bar)  # type: ignore[assignment]
    try:
        for ev in load_images(ctx.store, f, a.platform):
            if ev.kind == "replaced":
                out.append(f"The image {ev.tag} already exists, renaming the old one with ID {ev.old_id} to "
                           "empty string")
            else:
                out.append(f"Loaded image: {ev.tag}" if ev.tag else f"Loaded image ID: {ev.image_id}")
    finally:
        if bar is not None:
            bar.close()
        if a.input:
            f.close()
    sys.stdout.write("".join(line + "\n" for line in out))
    return 0
