"""Verbs ``images``, ``tag``, ``rmi``, ``history``, ``image inspect`` and ``image prune``.

``images`` is on the hot path (scripts call it often): it reads only the database and imports nothing heavy.
"""

from __future__ import annotations

import sys
import time

from dockyard.cli.main import ArgumentCountError, Context, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine.images import ImageSummary


def main(ctx: Context, argv: list[str]) -> int:
    return {"images": _images, "tag": _tag, "rmi": _rmi, "history": _history, "image-inspect": _inspect,
            "image-prune": _prune}[ctx.verb](ctx, argv)


# -- images -----------------------------------------------------------------------------------------------------

IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
                  "VirtualSize": "VIRTUAL SIZE"}


def _parse_filters(values: list[str]) -> dict[str, list[str]]:
    from dockyard.engine.images import check_filter

    out: dict[str, list[str]] = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep:
            raise UsageError(f"bad format of filter (expected name=value): {v}")
        out.setdefault(check_filter(k), []).append(val)
    for p in out.get("reference", []):
        _check_pattern(p)
    return out


def _check_pattern(pattern: str) -> None:
    from dockyard.engine.images import reference_pattern
    from dockyard.errors import InvalidArgument

    try:
        reference_pattern(pattern)
    except InvalidArgument as e:
        raise UsageError(str(e)) from None


def _image_rows(images: list[ImageSummary], digests: bool, trunc: bool) -> list[dict[str, str]]:
    from dockyard.cli.humanize import go_time_string, human_size, since

    now = time.time()
    rows: list[dict[str, str]] = []
    for im in images:
        ts = im.created
        base = {
            "Containers": "N/A",
            "CreatedAt": go_time_string(ts),
            "CreatedSince": since(ts, now),
            "Digest": "<none>",
            "ID": im.id[7:19] if trunc else im.id,
            "Repository": "<none>",
            "SharedSize": "N/A",
            "Size": human_size(im.size),
            "Tag": "<none>",
            "UniqueSize": "N/A",
            "VirtualSize": human_size(im.size, 4),
        }
        tags: dict[str, list[str]] = {}
        digs: dict[str, list[str]] = {}
        for t in im.repo_tags:
            repo, _, tag = t.rpartition(":")
            tags.setdefault(repo, []).append(tag)
        for d in im.repo_digests:
            repo, _, dg = d.partition("@")
            digs.setdefault(repo, []).append(dg)
        for repo, ts_ in tags.items():
            ds = digs.pop(repo, [])
            if not digests:
                ds = []
            for tag in ts_:
                for dg in (ds or ["<none>"]):
                    rows.append({**base, "Repository": repo, "Tag": tag, "Digest": dg})
        for repo, ds in digs.items():
            if digests:
                rows += [{**base, "Repository": repo, "Digest": dg} for dg in ds]
            else:
                rows.append({**base, "Repository": repo})
        if not im.repo_tags and not im.repo_digests:
            rows.append(base)
    return rows


def _images(ctx: Context, argv: list[str]) -> int:
    from types import SimpleNamespace

    from dockyard.cli.flags import BOOL, LIST, STR, Flags  # not argparse: images is called often (~5 ms)

    vals, pos = Flags("images", "[OPTIONS] [REPOSITORY[:TAG]]", [
        ("-a, --all", BOOL, False), ("--digests", BOOL, False), ("-f, --filter", LIST, []), ("--format", STR, ""),
        ("--no-trunc", BOOL, False), ("-q, --quiet", BOOL, False), ("--tree", BOOL, False)]).parse(argv)
    if len(pos) > 1:
        raise ArgumentCountError(f'"dockyard images" accepts no argument {pos[1]!r} here')
    a = SimpleNamespace(repo=pos[0] if pos else None, **vals)
    from dockyard.engine.images import list_images

    filters = _parse_filters(a.filter)
    if a.repo:
        _check_pattern(a.repo)
        filters.setdefault("reference", []).append(a.repo)
    if a.tree:
        if a.quiet or a.format or a.digests:
            raise UsageError("--tree is not yet supported with --quiet, --format or --digests")
        return _tree(ctx, filters, a.all, not a.no_trunc)
    images = list_images(ctx.store, filters, all=a.all)
    rows = _image_rows(images, a.digests, not a.no_trunc)
    if a.quiet:
        sys.stdout.write("".join(r["ID"] + "\n" for r in rows))
        return 0
    fmt = a.format
    if not fmt:
        fmt = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}" if a.digests
               else "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}")
    from dockyard.cli.table import format_rows

    sys.stdout.write(format_rows(fmt, rows, IMAGES_HEADERS))
    return 0


def _tree(ctx: Context, filters: dict[str, list[str]], all: bool, trunc: bool) -> int:
    """Docker 28's tree: the image line, then one line per platform (``├─``/``└─``), ``U`` when in use."""
    from dockyard.cli.humanize import human_size
    from dockyard.engine.images import image_tree

    tree = image_tree(ctx.store, filters, all)
    rows: list[list[str]] = []
    for t in tree:
        for i, n in enumerate(t.names):
            rows.append([n, (t.id[7:19] if trunc else t.id) if i == 0 else "",
                         human_size(t.disk_usage) if i == 0 else "", human_size(t.content_size) if i == 0 else "",
                         "U" if t.in_use and i == 0 else ""])
        for j, e in enumerate(t.platforms):
            branch = "└─ " if j == len(t.platforms) - 1 else "├─ "
            rows.append([branch + e.platform, e.id[7:19] if trunc else e.id, human_size(e.disk_usage),
                         human_size(e.content_size), "U" if e.in_use else ""])
        rows.append([])
    head = ["IMAGE", "ID", "DISK USAGE", "CONTENT SIZE", "EXTRA"]
    widths = [max([len(head[k])] + [len(r[k]) for r in rows if r]) for k in range(5)]

    def line(r: list[str]) -> str:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3].rjust(widths[3]), r[4]]
        return "   ".join(cells).rstrip() + "\n"

    out = "Info →   U  In Use\n\n" + line(head) + "".join(line(r) if r else "\n" for r in rows)
    sys.stdout.write(out)
    return 0


# -- tag / rmi ----------------------------------------------------------------------------------------------------

def _tag(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
               "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    if len(a.args) != 2:
        raise ArgumentCountError('"dockyard tag" requires exactly 2 arguments.')
    from dockyard.engine.images import tag_image

    tag_image(ctx.store, a.args[0], a.args[1])
    return 0


def _rmi(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images")
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", nargs="*")
    a = p.parse_args(argv)
    if not a.images:
        raise ArgumentCountError('"dockyard rmi" requires at least 1 argument.')
    from dockyard.engine.images import remove_image
    from dockyard.errors import DockyardError

    status = 0
    for name in a.images:
        try:
            records = remove_image(ctx.store, name, force=a.force, prune=not a.no_prune)
        except DockyardError as e:
            sys.stdout.flush()
            sys.stderr.write(f"Error: {e}\n")
            status = 1
            continue
        sys.stdout.write("".join(f"{k}: {v}\n" for k, v in records))
    return status


# -- history ------------------------------------------------------------------------------------------------------

HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                   "Size": "SIZE", "Comment": "COMMENT"}


def _history(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("history", "[OPTIONS] IMAGE", "Show the history of an image")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("-H", "--human", default="true", nargs="?", const="true",
                   help="Print sizes and dates in human readable format")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("image", nargs="*")
    a = p.parse_args(argv)
    if len(a.image) != 1:
        raise ArgumentCountError('"dockyard history" requires exactly 1 argument.')
    from dockyard.cli.humanize import go_time_string, human_size, since
    from dockyard.engine.images import history

    human = str(a.human).lower() not in ("false", "0")
    trunc = not a.no_trunc
    rows = []
    now = time.time()
    for it in history(ctx.store, a.image[0]):
        iid = it.id
        if trunc and iid != "<missing>":
            iid = iid[7:19]
        created_by = it.created_by.replace("\t", " ")
        if trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        if human:
            created_since, size = since(it.created, now), human_size(it.size)
        else:
            created_since, size = _rfc3339(it.created), str(it.size)
        rows.append({"ID": iid, "CreatedSince": created_since, "CreatedAt": go_time_string(it.created)
                     if human else _rfc3339(it.created), "CreatedBy": created_by, "Size": size,
                     "Comment": it.comment})
    if a.quiet:
        sys.stdout.write("".join(r["ID"] + "\n" for r in rows))
        return 0
    from dockyard.cli.table import format_rows

    fmt = a.format or "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    sys.stdout.write(format_rows(fmt, rows, HISTORY_HEADERS))
    return 0


def _rfc3339(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(int(ts)).astimezone().isoformat()


# -- image inspect ------------------------------------------------------------------------------------------------

def _inspect(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("image inspect", "[OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images")
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")
    p.add_argument("--platform", default="", help="Inspect a specific platform of a multi-platform image")
    p.add_argument("images", nargs="*")
    a = p.parse_args(argv)
    if not a.images:
        raise ArgumentCountError('"dockyard image inspect" requires at least 1 argument.')
    if a.platform:
        from dockyard.oci.image import parse_platform

        parse_platform(a.platform)

    from dockyard.engine.images import inspect_image
    from dockyard.errors import NotFound

    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in a.images:
        try:
            found.append(inspect_image(ctx.store, name, a.platform))
        except NotFound:
            missing.append(name)
    from dockyard.cli.template import print_inspect

    print_inspect(found, a.format)
    if missing:
        for m in missing:
            sys.stderr.write(f"Error: No such image: {m}\n")
        return 1
    return 0


# -- image prune ----------------------------------------------------------------------------------------------------

def _prune(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("image prune", "[OPTIONS]", "Remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="Provide filter values (e.g. 'until=<timestamp>')")
    a = p.parse_args(argv)
    from dockyard.engine.images import PRUNE_FILTERS

    filters: dict[str, list[str]] = {}
    for f in a.filter:
        k, sep, v = f.partition("=")
        if not sep or k not in PRUNE_FILTERS:
            raise UsageError(f"invalid filter '{f}'")
        filters.setdefault(k, []).append(v)
    if not a.force:
        warn = ("WARNING! This will remove all images without at least one container associated to them."
                if a.all else "WARNING! This will remove all dangling images.")
        sys.stdout.write(warn + "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    from dockyard.cli.humanize import human_size
    from dockyard.engine.images import prune_images

    report = prune_images(ctx.store, all=a.all, filters=filters)
    out = ""
    if report.deleted:
        out += "Deleted Images:\n" + "".join(f"{k.lower()}: {v}\n" for k, v in report.deleted) + "\n"
    out += f"Total reclaimed space: {human_size(report.reclaimed)}\n"
    sys.stdout.write(out)
    return 0
