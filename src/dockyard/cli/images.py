"""Verbs ``images``, ``tag``, ``rmi``, ``history``, ``image inspect`` and ``image prune``.

``images`` is on the hot path (scripts call it often): it reads only the database and imports nothing heavy.
"""

from __future__ import annotations

import re
import sys
import time
from typing import TYPE_CHECKING, Any

from dockyard.cli.main import Context, UsageError

if TYPE_CHECKING:
    from dockyard.images.store import Image, ImageStore


def main(ctx: Context, argv: list[str]) -> int:
    return {"images": _images, "tag": _tag, "rmi": _rmi, "history": _history, "image-inspect": _inspect,
            "image-prune": _prune}[ctx.verb](ctx, argv)


# -- images -----------------------------------------------------------------------------------------------------

IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
                  "VirtualSize": "VIRTUAL SIZE"}
_IMAGE_FILTERS = ("dangling", "label", "before", "since", "reference")


def _pattern_re(pattern: str) -> re.Pattern[str]:
    """Go's path.Match: ``*`` and ``?`` do not cross ``/``."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise UsageError(f"invalid reference filter: syntax error in pattern {pattern!r}")
            cls = pattern[i + 1:j]
            if cls.startswith("^"):
                cls = "^" + cls[1:]
            out += "[" + cls.replace("\\", "\\\\") + "]"
            i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile("^" + out + "\\Z")


def _ref_matches(pats: list[re.Pattern[str]], familiar_ref: str) -> bool:
    name = familiar_ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return any(p.match(familiar_ref) or p.match(name) for p in pats)


def _parse_filters(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep:
            raise UsageError(f"bad format of filter (expected name=value): {v}")
        k = k.strip().lower()
        if k not in _IMAGE_FILTERS:
            from dockyard.errors import InvalidArgument

            raise InvalidArgument(f"invalid filter '{k}'")
        out.setdefault(k, []).append(val)
    return out


def _filtered(images: list[Image], ist: ImageStore, filters: dict[str, list[str]], all_: bool) -> list[Image]:
    from dockyard.errors import InvalidArgument

    dangling: bool | None = None
    for v in filters.get("dangling", []):
        if v.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={v}'")
        dangling = v.lower() in ("true", "1")
    before = [ist.resolve(v).created for v in filters.get("before", [])]
    since = [ist.resolve(v).created for v in filters.get("since", [])]
    pats = [_pattern_re(p) for p in filters.get("reference", [])]
    labels = filters.get("label", [])
    parents: set[str] | None = None
    out = []
    for im in images:
        if before and not all(im.created < b for b in before):
            continue
        if since and not all(im.created > s for s in since):
            continue
        if labels:
            have = im.labels
            ok = True
            for lab in labels:
                k, sep, val = lab.partition("=")
                if k not in have or (sep and have[k] != val):
                    ok = False
            if not ok:
                continue
        if pats:
            im.repo_tags = [t for t in im.repo_tags if _ref_matches(pats, t)]
            im.repo_digests = [d for d in im.repo_digests if _ref_matches(pats, d)]
            if not im.repo_tags and not im.repo_digests:
                continue
        if not im.repo_tags and not im.repo_digests:
            if not all_:
                if parents is None:
                    parents = {r[0] for r in ist.store.query(
                        "SELECT DISTINCT parent FROM images WHERE parent IS NOT NULL")}
                if im.id in parents:
                    continue  # an intermediate image (-a shows it)
            if dangling is False:
                continue
        elif dangling is True and im.repo_tags:
            continue
        out.append(im)
    return out


def _image_rows(images: list[Image], digests: bool, trunc: bool) -> list[dict[str, str]]:
    from dockyard.cli.humanize import go_time_string, human_size, since

    now = time.time()
    rows: list[dict[str, str]] = []
    for im in images:
        ts = im.created_ts
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
    from dockyard.cli.args import Parser

    p = Parser("images", "[OPTIONS] [REPOSITORY[:TAG]]", "List images")
    p.add_argument("-a", "--all", action="store_true", help="Show all images (default hides intermediate images)")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output based on conditions")
    p.add_argument("--format", default="", help="Format output using a custom template")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("repo", nargs="?")
    a = p.parse_args(argv)
    from dockyard.images.store import ImageStore

    filters = _parse_filters(a.filter)
    if a.repo:
        filters.setdefault("reference", []).append(a.repo)
    ist = ImageStore(ctx.store)
    images = _filtered(ist.list(), ist, filters, a.all)
    rows = _image_rows(images, a.digests, not a.no_trunc)
    if a.quiet:
        sys.stdout.write("".join(r["ID"] + "\n" for r in rows))
        return 0
    fmt = a.format
    if not fmt:
        fmt = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}" if a.digests
               else "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}")
    from dockyard.cli.template import format_rows

    sys.stdout.write(format_rows(fmt, rows, IMAGES_HEADERS))
    return 0


# -- tag / rmi ----------------------------------------------------------------------------------------------------

def _tag(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
               "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    if len(a.args) != 2:
        raise UsageError('"dockyard tag" requires exactly 2 arguments.')
    from dockyard.images import reference
    from dockyard.images.store import ImageStore

    src, dst = a.args
    try:
        target = reference.parse(dst)
    except Exception as e:  # noqa: BLE001 - reword as docker does
        from dockyard.errors import InvalidArgument

        raise InvalidArgument(f'Error parsing reference: "{dst}" is not a valid repository/tag: {e}') from None
    ist = ImageStore(ctx.store)
    im = ist.resolve(src)
    ist.tag(im.id, target)
    return 0


def _rmi(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images")
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", nargs="*")
    a = p.parse_args(argv)
    if not a.images:
        raise UsageError('"dockyard rmi" requires at least 1 argument.')
    from dockyard.errors import DockyardError
    from dockyard.images.store import ImageStore

    ist = ImageStore(ctx.store)
    status = 0
    for name in a.images:
        try:
            records = ist.remove(name, force=a.force, prune=not a.no_prune)
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


def history_items(ist: ImageStore, im: Image) -> list[dict[str, Any]]:
    """Docker's ImageHistory: newest first; the image and its parents get IDs, the rest ``<missing>``."""
    from dockyard.cli.humanize import parse_rfc3339

    sizes: list[int] = []
    for ch in im.chain_ids:
        r = ist.store.query("SELECT size FROM snapshots WHERE chain_id=?", (ch,))
        sizes.append(int(r[0][0]) if r else 0)
    items: list[dict[str, Any]] = []
    li = 0
    for h in im.config.get("history") or []:
        size = 0
        if not h.get("empty_layer"):
            size = sizes[li] if li < len(sizes) else 0
            li += 1
        items.insert(0, {"ID": "<missing>", "Created": parse_rfc3339(h.get("created") or ""),
                         "CreatedBy": h.get("created_by") or "", "Comment": h.get("comment") or "",
                         "Size": size, "Tags": []})
    cur: Image | None = im
    for it in items:
        if cur is None:
            break
        it["ID"] = cur.id
        it["Tags"] = list(cur.repo_tags)
        cur = ist.get(cur.parent) if cur.parent else None
    return items


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
        raise UsageError('"dockyard history" requires exactly 1 argument.')
    from dockyard.cli.humanize import go_time_string, human_size, since
    from dockyard.images.store import ImageStore

    human = str(a.human).lower() not in ("false", "0")
    trunc = not a.no_trunc
    ist = ImageStore(ctx.store)
    im = ist.resolve(a.image[0])
    rows = []
    now = time.time()
    for it in history_items(ist, im):
        iid = it["ID"]
        if trunc and iid != "<missing>":
            iid = iid[7:19]
        created_by = it["CreatedBy"].replace("\t", " ")
        if trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        if human:
            created_since, size = since(it["Created"], now), human_size(it["Size"])
        else:
            created_since, size = _rfc3339(it["Created"]), str(it["Size"])
        rows.append({"ID": iid, "CreatedSince": created_since, "CreatedAt": go_time_string(it["Created"])
                     if human else _rfc3339(it["Created"]), "CreatedBy": created_by, "Size": size,
                     "Comment": it["Comment"]})
    if a.quiet:
        sys.stdout.write("".join(r["ID"] + "\n" for r in rows))
        return 0
    from dockyard.cli.template import format_rows

    fmt = a.format or "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    sys.stdout.write(format_rows(fmt, rows, HISTORY_HEADERS))
    return 0


def _rfc3339(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(int(ts)).astimezone().isoformat()


# -- image inspect ------------------------------------------------------------------------------------------------

_CONFIG_FIELDS: list[tuple[str, Any]] = [
    ("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False), ("AttachStdout", False),
    ("AttachStderr", False), ("ExposedPorts", None), ("Tty", False), ("OpenStdin", False), ("StdinOnce", False),
    ("Env", None), ("Cmd", None), ("Healthcheck", None), ("ArgsEscaped", None), ("Image", ""), ("Volumes", None),
    ("WorkingDir", ""), ("Entrypoint", None), ("OnBuild", None), ("Labels", None), ("StopSignal", None),
]
_OMIT_EMPTY = {"ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal"}


def inspect_dict(ist: ImageStore, im: Image) -> dict[str, Any]:
    """``docker image inspect`` shape (API v1.44)."""
    cfg = im.config
    inner = cfg.get("config") or {}
    config: dict[str, Any] = {}
    for k, default in _CONFIG_FIELDS:
        v = inner.get(k, default)
        if k in _OMIT_EMPTY and not v:
            continue
        config[k] = v
    for k, v in inner.items():
        if k not in config and k not in _OMIT_EMPTY:
            config[k] = v
    graph: dict[str, Any] = {"Data": None, "Name": "overlay"}
    try:
        from dockyard.snapshots.store import SnapshotStore

        dirs = SnapshotStore(ist.store).lowerdirs(im.top_chain_id)
        if dirs:
            graph["Data"] = {"LowerDir": ":".join(dirs)}
    except Exception:  # noqa: BLE001 - inspect must work even if a snapshot is damaged
        pass
    d: dict[str, Any] = {
        "Id": im.id,
        "RepoTags": list(im.repo_tags),
        "RepoDigests": list(im.repo_digests),
        "Parent": im.parent or "",
        "Comment": cfg.get("comment", ""),
        "Created": cfg.get("created", ""),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": config,
        "Architecture": cfg.get("architecture", ""),
    }
    if cfg.get("variant"):
        d["Variant"] = cfg["variant"]
    d["Os"] = cfg.get("os", "")
    if cfg.get("os.version"):
        d["OsVersion"] = cfg["os.version"]
    d["Size"] = im.size
    d["GraphDriver"] = graph
    d["RootFS"] = {"Type": (cfg.get("rootfs") or {}).get("type", "layers"), "Layers": im.diff_ids}
    d["Metadata"] = {"LastTagTime": "0001-01-01T00:00:00Z"}
    return d


def _inspect(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("image inspect", "[OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images")
    p.add_argument("-f", "--format", default="", help="Format output using a custom template")
    p.add_argument("images", nargs="*")
    a = p.parse_args(argv)
    if not a.images:
        raise UsageError('"dockyard image inspect" requires at least 1 argument.')

    from dockyard.errors import NotFound
    from dockyard.images.store import ImageStore

    ist = ImageStore(ctx.store)
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for name in a.images:
        try:
            found.append(inspect_dict(ist, ist.resolve(name)))
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
    filters: dict[str, list[str]] = {}
    for f in a.filter:
        k, sep, v = f.partition("=")
        if not sep or k not in ("until", "label", "label!"):
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
    from dockyard.images.store import ImageStore

    records, reclaimed = ImageStore(ctx.store).prune(all=a.all, filters=filters)
    out = ""
    if records:
        out += "Deleted Images:\n" + "".join(f"{k.lower()}: {v}\n" for k, v in records) + "\n"
    out += f"Total reclaimed space: {human_size(reclaimed)}\n"
    sys.stdout.write(out)
    return 0
