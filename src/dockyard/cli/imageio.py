"""Verbs ``import``, ``save`` and ``load``."""

from __future__ import annotations

import os
import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context, UsageError


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
    from dockyard.images import reference
    from dockyard.images.importer import import_image
    from dockyard.oci.image import parse_platform

    if a.ref:
        reference.parse_tagged(a.ref)  # validate before reading anything
    platform = parse_platform(a.platform) if a.platform else None
    src = a.source
    if src == "-":
        if sys.stdin.isatty():
            raise UsageError('"dockyard import" requires the tar on stdin when the source is "-"')
        stream = sys.stdin.buffer
        iid = import_image(ctx.store, stream, a.ref, a.change, a.message, platform)
    elif src.startswith(("http://", "https://")):
        import urllib.request

        from dockyard.errors import SystemFailure

        try:
            with urllib.request.urlopen(src, timeout=60) as resp:  # noqa: S310 (user-given URL, as docker)
                iid = import_image(ctx.store, resp, a.ref, a.change, a.message, platform, source_name=src)
        except OSError as e:
            raise SystemFailure(f"import from {src}: {e}") from None
    else:
        if not os.path.exists(src):
            from dockyard.errors import NotFound

            raise NotFound(f"open {src}: no such file or directory")
        iid = import_image(ctx.store, src, a.ref, a.change, a.message, platform)
    print(iid)
    return 0


def _save(ctx: Context, argv: list[str]) -> int:
    p = Parser("save", "[OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to "
               "STDOUT by default)")
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("images", nargs="*")
    a = p.parse_args(argv)
    if not a.images:
        raise UsageError('"dockyard save" requires at least 1 argument.')
    from dockyard.images.archive import save
    from dockyard.images.store import ImageStore

    images = ImageStore(ctx.store)
    for name in a.images:  # fail before creating the output file
        if not _is_repo_with_tags(images, name):
            images.resolve(name)
    if not a.output:
        if sys.stdout.isatty():
            from dockyard.errors import InvalidArgument

            raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        save(ctx.store, a.images, sys.stdout.buffer)
        return 0
    import tempfile

    out = os.path.abspath(a.output)
    d = os.path.dirname(out)
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".dockyard-save-")
    except OSError as e:
        from dockyard.errors import from_oserror

        raise from_oserror(f"failed to save image: open {a.output}", e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            save(ctx.store, a.images, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.rename(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return 0


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _is_repo_with_tags(images: object, name: str) -> bool:
    from dockyard.images import reference

    r = reference.try_parse(name)
    if r is None or not r.name_only:
        return False
    rows = images.store.query("SELECT ref FROM tags WHERE ref LIKE ?", (r.name + ":%",))  # type: ignore[attr-defined]
    return any(x[0].rsplit(":", 1)[0] == r.name for x in rows)


def _load(ctx: Context, argv: list[str]) -> int:
    p = Parser("load", "[OPTIONS]", "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", default="", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")
    p.add_argument("--platform", default="", help="Load only the given platform variant")
    a = p.parse_args(argv)
    from dockyard.images.archive import load, open_input
    from dockyard.oci.image import parse_platform

    platform = parse_platform(a.platform) if a.platform else None
    f = open_input(a.input or None)
    try:
        loaded = load(ctx.store, f, platform)
    finally:
        if a.input:
            f.close()
    out = []
    for im in loaded:
        for tag, old in im.replaced:
            out.append(f"The image {tag} already exists, renaming the old one with ID {old} to empty string")
        if im.tags:
            out += [f"Loaded image: {t}" for t in im.tags]
        else:
            out.append(f"Loaded image ID: {im.image_id}")
    sys.stdout.write("".join(line + "\n" for line in out))
    return 0
