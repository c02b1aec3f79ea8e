"""``manifest create|annotate|inspect|push|rm`` (``engine.manifests``): hand-made manifest lists, as the Docker
CLI's, over local images as well as registry ones."""

from __future__ import annotations

import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context, UsageError


def main(ctx: Context, argv: list[str]) -> int:
    return {"manifest-create": _create, "manifest-annotate": _annotate, "manifest-inspect": _inspect,
            "manifest-push": _push, "manifest-rm": _rm}[ctx.verb](ctx, argv)


def _create(ctx: Context, argv: list[str]) -> int:
    p = Parser("manifest create", "MANIFEST_LIST MANIFEST [MANIFEST...]",
               "Create a local manifest list for annotating and pushing to a registry")
    p.add_argument("-a", "--amend", action="store_true", help="Amend an existing manifest list")
    p.add_argument("--insecure", action="store_true", help="Allow communication with an insecure registry")
    p.add_argument("names", nargs="*")
    a = p.parse_args(argv)
    if len(a.names) < 2:
        raise UsageError('"dockyard manifest create" requires at least 2 arguments.')
    from dockyard.engine.manifests import create_list

    ref = create_list(ctx.store, a.names[0], a.names[1:], amend=a.amend, insecure=a.insecure)
    print(f"Created manifest list {ref}")
    return 0


def _annotate(ctx: Context, argv: list[str]) -> int:
    p = Parser("manifest annotate", "[OPTIONS] MANIFEST_LIST MANIFEST",
               "Add additional information to a local image manifest")
    p.add_argument("--os", default="", help="Set operating system")
    p.add_argument("--arch", default="", help="Set architecture")
    p.add_argument("--variant", default="", help="Set architecture variant")
    p.add_argument("--os-version", default="", help="Set operating system version")
    p.add_argument("--os-features", action="append", default=[], help="Set operating system feature")
    p.add_argument("names", nargs="*")
    a = p.parse_args(argv)
    if len(a.names) != 2:
        raise UsageError('"dockyard manifest annotate" requires exactly 2 arguments.')
    from dockyard.engine.manifests import annotate

    features = [f for v in a.os_features for f in v.split(",") if f]
    annotate(ctx.store, a.names[0], a.names[1], os_name=a.os, arch=a.arch, variant=a.variant,
             os_version=a.os_version, os_features=features)
    return 0


def _inspect(ctx: Context, argv: list[str]) -> int:
    p = Parser("manifest inspect", "[OPTIONS] [MANIFEST_LIST] MANIFEST",
               "Display an image manifest, or manifest list")
    p.add_argument("--insecure", action="store_true", help="Allow communication with an insecure registry")
    p.add_argument("-v", "--verbose", action="store_true", help="Output additional info including layers and "
                   "platform")
    p.add_argument("names", nargs="*")
    a = p.parse_args(argv)
    if len(a.names) not in (1, 2):
        raise UsageError('"dockyard manifest inspect" requires at least 1 and at most 2 arguments.')
    from dockyard import jsonc as json

    from dockyard.engine.manifests import inspect

    data = inspect(ctx.store, a.names[0], a.names[1] if len(a.names) == 2 else "", verbose=a.verbose,
                   insecure=a.insecure)
    sys.stdout.write(json.dumps(data, indent=3) + "\n")
    return 0


def _push(ctx: Context, argv: list[str]) -> int:
    p = Parser("manifest push", "[OPTIONS] MANIFEST_LIST", "Push a manifest list to a repository")
    p.add_argument("--insecure", action="store_true", help="Allow push to an insecure registry")
    p.add_argument("-p", "--purge", action="store_true", help="Remove the local manifest list after push")
    p.add_argument("names", nargs="*")
    a = p.parse_args(argv)
    if len(a.names) != 1:
        raise UsageError('"dockyard manifest push" requires exactly 1 argument.')
    from dockyard.engine.manifests import push_list

    for ev in push_list(ctx.store, a.names[0], purge=a.purge, insecure=a.insecure):
        if ev.kind == "status":
            print(ev.status)
        elif ev.kind == "done":
            print(ev.text)
    return 0


def _rm(ctx: Context, argv: list[str]) -> int:
    p = Parser("manifest rm", "MANIFEST_LIST [MANIFEST_LIST...]", "Delete one or more manifest lists from "
               "local storage")
    p.add_argument("names", nargs="*")
    a = p.parse_args(argv)
    if not a.names:
        raise UsageError('"dockyard manifest rm" requires at least 1 argument.')
    from dockyard.engine.manifests import remove_lists

    failed = 0
    for _name, err in remove_lists(ctx.store, a.names):
        if err is not None:
            sys.stderr.write(f"Error: {err}\n")
            failed = 1
    return failed
