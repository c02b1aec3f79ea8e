"""``compose``: Docker Compose's verbs; parsing and printing only (the work is dockyard.compose's)."""

from __future__ import annotations

import sys

from dockyard.cli.flags import BOOL, INT, LIST, STR, Flags
from dockyard.cli.main import Context, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GLOBAL = [("-f, --file", LIST, []), ("-p, --project-name", STR, None), ("--profile", LIST, []),
          ("--env-file", LIST, []), ("--project-directory", STR, None)]
VERBS = ("up", "down", "ps", "logs", "exec", "run", "build", "config", "start", "stop", "restart", "rm", "top",
         "ls", "port", "images", "create")


def _say(line: str) -> None:
    sys.stderr.write(f" \u2714 {line}\n" if not line.startswith("WARN") else line + "\n")
    sys.stderr.flush()


def _load(g: dict[str, Any]) -> dict[str, Any]:
    from dockyard.compose.loader import load

    return load(g["file"], workdir=g["project_directory"], project_name=g["project_name"],
                profiles=g["profile"] or None, env_files=g["env_file"] or None)


def main(ctx: Context, argv: list[str]) -> int:
    g, rest = Flags("compose", "[OPTIONS] COMMAND", GLOBAL).parse(argv, interspersed=False)
    if not rest:
        print("Usage:  dockyard compose [OPTIONS] COMMAND\n\nCommands:\n  " + ", ".join(VERBS))
        return 0
    verb, args = rest[0], rest[1:]
    fn = globals().get("_" + verb)
    if verb not in VERBS or fn is None:
        raise UsageError(f"unknown docker command: \"compose {verb}\"")
    return int(fn(ctx, g, args) or 0)


def _up(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, services = Flags("compose up", "[OPTIONS] [SERVICE...]", [
        ("-d, --detach", BOOL, False), ("--build", BOOL, False), ("--wait", BOOL, False),
        ("--force-recreate", BOOL, False), ("--no-recreate", BOOL, False), ("--remove-orphans", BOOL, False),
        ("--scale", LIST, []), ("--no-start", BOOL, False), ("-t, --timeout", INT, None),
        ("--wait-timeout", INT, 600)]).parse(argv)
    if o["force_recreate"] and o["no_recreate"]:
        raise UsageError("--force-recreate and --no-recreate are incompatible")
    from dockyard.compose import project

    proj = _load(g)
    scale = {}
    for s in o["scale"]:
        k, _, v = s.partition("=")
        if not v.isdigit():
            raise UsageError(f"invalid --scale value {s!r}: SERVICE=NUM")
        scale[k] = int(v)
    ids = project.up(ctx.store, proj, _say, services or None, build_images=o["build"],
                     force_recreate=o["force_recreate"], no_recreate=o["no_recreate"],
                     remove_orphans=o["remove_orphans"], scale=scale, no_start=o["no_start"])
    if o["wait"]:
        project.wait_ready(ctx.store, ids, o["wait_timeout"])
        return 0
    if o["detach"] or o["no_start"]:
        return 0
    try:  # attached: the services' logs until they all end; Ctrl-C stops them, as Compose does
        _follow(ctx, proj, ids, True)
    except KeyboardInterrupt:
        sys.stderr.write("Gracefully stopping... (press Ctrl+C again to force)\n")
        project.stop(ctx.store, proj, _say, services or None, o["timeout"])
        return 130
    return 0


def _follow(ctx: Context, proj: dict[str, Any], ids: list[str], follow: bool, tail: int = -1,
            timestamps: bool = False) -> None:
    import threading

    from dockyard.engine import local
    from dockyard.engine.logs import logs

    names = {cid: local.resolve(ctx.store, cid).name for cid in ids}
    width = max((len(n) for n in names.values()), default=0)
    colours = ["36", "33", "32", "35", "34", "91", "92", "93", "94", "95", "96"]
    tty = sys.stdout.isatty()
    lock = threading.Lock()
    out = sys.stdout.buffer

    def pump(i: int, cid: str) -> None:
        store = type(ctx.store)(ctx.root)  # one store per thread (SQLite)
        prefix = f"{names[cid]:<{width}}  | "
        if tty:
            prefix = f"\x1b[{colours[i % len(colours)]}m{prefix}\x1b[0m"
        for e in logs(store, cid, follow=follow, tail=tail):
            line = e.data if e.data.endswith(b"\n") else e.data + b"\n"
            with lock:
                out.write(prefix.encode() + ((e.time + " ").encode() if timestamps else b"") + line)
                out.flush()

    threads = [threading.Thread(target=pump, args=(i, cid), daemon=True) for i, cid in enumerate(ids)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)


def _down(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, _ = Flags("compose down", "[OPTIONS]", [("-v, --volumes", BOOL, False), ("--rmi", STR, ""),
                                               ("--remove-orphans", BOOL, False), ("-t, --timeout", INT, None)]
                 ).parse(argv)
    if o["rmi"] not in ("", "local", "all"):
        raise UsageError(f"invalid --rmi value {o['rmi']!r}: local or all")
    from dockyard.compose import project

    project.down(ctx.store, _load(g), _say, volumes=o["volumes"], rmi=o["rmi"],
                 remove_orphans=o["remove_orphans"], timeout=o["timeout"])
    return 0


def _ps(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, services = Flags("compose ps", "[OPTIONS] [SERVICE...]", [
        ("-a, --all", BOOL, False), ("-q, --quiet", BOOL, False), ("--services", BOOL, False),
        ("--format", STR, "")]).parse(argv)
    from dockyard.cli.ps import status_text
    from dockyard.compose import project

    proj = _load(g)
    rows = [r for r in project.containers(ctx.store, proj["name"], all=o["all"])
            if not services or r.labels.get(project.P + "service") in services]
    if o["quiet"]:
        print("\n".join(r.id for r in rows) if rows else "", end="\n" if rows else "")
        return 0
    if o["services"]:
        for s in dict.fromkeys(r.labels.get(project.P + "service", "") for r in rows):
            print(s)
        return 0
    import time

    now = time.time()
    table = [("NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS")]
    from dockyard.timeparse import human_duration

    for r in rows:
        cmd = " ".join(r.command)
        table.append((r.name, r.image, f'"{cmd[:20] + "…" if len(cmd) > 20 else cmd}"',
                      r.labels.get(project.P + "service", ""), human_duration(now - r.created) + " ago",
                      status_text(r, now), r.ports_text))
    widths = [max(len(row[i]) for row in table) for i in range(7)]
    for row in table:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _logs(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, services = Flags("compose logs", "[OPTIONS] [SERVICE...]", [
        ("-f, --follow", BOOL, False), ("-n, --tail", STR, "all"), ("-t, --timestamps", BOOL, False),
        ("--no-color", BOOL, False)]).parse(argv)
    from dockyard.compose import project

    proj = _load(g)
    rows = [r for r in project.containers(ctx.store, proj["name"])
            if not services or r.labels.get(project.P + "service") in services]
    try:
        _follow(ctx, proj, [r.id for r in rows], o["follow"], -1 if o["tail"] == "all" else int(o["tail"]),
                o["timestamps"])
    except KeyboardInterrupt:
        return 130
    return 0


def _one(ctx: Context, proj: dict[str, Any], service: str, index: int = 1) -> str:
    from dockyard.compose import project
    from dockyard.errors import NotFound

    if service not in proj["services"]:
        raise NotFound(f"no such service: {service}")
    rows = [r for r in project.containers(ctx.store, proj["name"], service)
            if r.labels.get(project.P + "container-number") == str(index)]
    if not rows:
        raise NotFound(f"service {service!r} is not running")
    return rows[0].id


def _exec(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, pos = Flags("compose exec", "[OPTIONS] SERVICE COMMAND [ARGS...]", [
        ("-d, --detach", BOOL, False), ("-T, --no-TTY", BOOL, False), ("-e, --env", LIST, []),
        ("-u, --user", STR, ""), ("-w, --workdir", STR, ""), ("--index", INT, 1), ("--privileged", BOOL, False)]
    ).parse(argv, interspersed=False)
    if len(pos) < 2:
        raise UsageError('"compose exec" requires at least 2 arguments.')
    cid = _one(ctx, _load(g), pos[0], o["index"])
    from dockyard.cli import exec as cli_exec

    args = ["-i"] + (["-t"] if not o["no_TTY"] and sys.stdin.isatty() and sys.stdout.isatty() else [])
    args += ["-d"] if o["detach"] else []
    for e in o["env"]:
        args += ["-e", e]
    args += (["-u", o["user"]] if o["user"] else []) + (["-w", o["workdir"]] if o["workdir"] else [])
    args += ["--privileged"] if o["privileged"] else []
    return int(cli_exec.main(ctx, args + [cid] + pos[1:]) or 0)


def _run(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, pos = Flags("compose run", "[OPTIONS] SERVICE [COMMAND] [ARGS...]", [
        ("-d, --detach", BOOL, False), ("--rm", BOOL, False), ("-e, --env", LIST, []), ("--name", STR, None),
        ("-T, --no-TTY", BOOL, False), ("-u, --user", STR, ""), ("-w, --workdir", STR, ""),
        ("--entrypoint", STR, None), ("--no-deps", BOOL, False)]).parse(argv, interspersed=False)
    if not pos:
        raise UsageError('"compose run" requires at least 1 argument.')
    from dockyard.compose import project
    from dockyard.engine import local, networks

    proj = _load(g)
    svc = pos[0]
    if svc not in proj["services"]:
        from dockyard.errors import NotFound

        raise NotFound(f"no such service: {svc}")
    if not o["no_deps"]:
        deps = [d for d in project.depends_on(proj["services"][svc]) if d in proj["services"]]
        if deps:
            project.up(ctx.store, proj, _say, deps)
    else:
        project.ensure_resources(ctx.store, proj, _say)
    project.build(ctx.store, proj, [svc], _say, only_missing=True)
    import secrets

    spec, extra = project.spec_for(proj, svc, 1, project.config_hash(proj["services"][svc]),
                                   lambda s: _one(ctx, proj, s))
    spec.labels[project.P + "oneoff"] = "True"
    spec.ports = []  # as Compose: run publishes no ports unless asked
    if pos[1:]:
        spec.cmd = pos[1:]
    if o["entrypoint"] is not None:
        spec.entrypoint = [o["entrypoint"]] if o["entrypoint"] else []
    spec.env += o["env"]
    spec.user = o["user"] or spec.user
    spec.workdir = o["workdir"] or spec.workdir
    spec.auto_remove = o["rm"]
    spec.open_stdin = not o["detach"]
    spec.tty = not o["no_TTY"] and sys.stdin.isatty() and sys.stdout.isatty()
    spec.aliases = [a for a in spec.aliases if a != f"{proj['name']}-{svc}-1"]
    name = o["name"] or f"{proj['name']}-{svc}-run-{secrets.token_hex(6)}"
    c = local.create(ctx.store, spec, name=name)
    for net, aliases in extra:
        networks.connect_network(ctx.store, net, c.id, aliases)
    from dockyard.cli import lifecycle

    if o["detach"]:
        local.start(ctx.store, local.resolve(ctx.store, c.id))
        print(c.name)
        return 0
    return int(lifecycle.main(ctx, ["-a", "-i", c.id]) or 0) if hasattr(lifecycle, "main") else 0


def _build(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    _, services = Flags("compose build", "[SERVICE...]", [("--no-cache", BOOL, False)]).parse(argv)
    from dockyard.compose import project

    proj = _load(g)
    project.build(ctx.store, proj, services or sorted(proj["services"]), _say)
    return 0


def _config(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, _ = Flags("compose config", "[OPTIONS]", [("--services", BOOL, False), ("-q, --quiet", BOOL, False),
                                                 ("--volumes", BOOL, False), ("--format", STR, "yaml")]).parse(argv)
    proj = _load(g)
    if o["quiet"]:
        return 0
    if o["services"]:
        print("\n".join(sorted(proj["services"])))
        return 0
    if o["volumes"]:
        print("\n".join(sorted(proj["volumes"])))
        return 0
    doc = {"name": proj["name"], "services": proj["services"]}
    if proj["networks"]:
        doc["networks"] = proj["networks"]
    if proj["volumes"]:
        doc["volumes"] = proj["volumes"]
    if o["format"] == "json":
        from dockyard import jsonc as json

        print(json.dumps(doc, indent=2, default=str))
    else:
        from dockyard.compose.loader import _site

        _site()
        import yaml

        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    return 0


def _lifecycle(ctx: Context, g: dict[str, Any], argv: list[str], verb: str) -> int:
    o, services = Flags(f"compose {verb}", "[SERVICE...]", [("-t, --timeout", INT, None), ("-f, --force", BOOL, False),
                                                          ("-s, --stop", BOOL, False), ("-v, --volumes", BOOL, False)]
                        ).parse(argv)
    from dockyard.compose import project
    from dockyard.engine import local

    proj = _load(g)
    if verb == "stop":
        project.stop(ctx.store, proj, _say, services or None, o["timeout"])
        return 0
    rows = [r for r in project.containers(ctx.store, proj["name"])
            if not services or r.labels.get(project.P + "service") in services]
    if verb == "rm":
        if o["stop"]:
            project.stop(ctx.store, proj, _say, services or None, o["timeout"])
        for r in rows:
            c = local.resolve(ctx.store, r.id)
            if c.running:
                continue
            local.remove(ctx.store, c, force=False, volumes=o["volumes"])
            _say(f"Container {r.name}  Removed")
        return 0
    names = project.order(proj["services"])
    rank = {n: i for i, n in enumerate(names)}
    rows.sort(key=lambda r: rank.get(r.labels.get(project.P + "service", ""), 0))
    for r in rows:
        c = local.resolve(ctx.store, r.id)
        if verb == "restart":
            local.restart(ctx.store, c, o["timeout"])
            _say(f"Container {r.name}  Restarted")
        elif not c.running:
            local.start(ctx.store, c)
            _say(f"Container {r.name}  Started")
    return 0


def _start(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    return _lifecycle(ctx, g, argv, "start")


def _stop(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    return _lifecycle(ctx, g, argv, "stop")


def _restart(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    return _lifecycle(ctx, g, argv, "restart")


def _rm(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    return _lifecycle(ctx, g, argv, "rm")


def _create(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    return _up(ctx, g, ["--no-start"] + argv)


def _top(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    from dockyard.compose import project
    from dockyard.engine.top import top

    proj = _load(g)
    for r in project.containers(ctx.store, proj["name"], all=False):
        if argv and r.labels.get(project.P + "service") not in argv:
            continue
        t = top(ctx.store, r.id)
        print(r.name)
        rows = [t.titles] + t.processes
        widths = [max(len(x[i]) for x in rows) for i in range(len(t.titles))]
        for x in rows:
            print("  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip())
        print()
    return 0


def _ls(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, _ = Flags("compose ls", "[OPTIONS]", [("-a, --all", BOOL, False), ("-q, --quiet", BOOL, False)]).parse(argv)
    from dockyard.compose import project

    rows = project.projects(ctx.store)
    if not o["all"]:
        rows = [r for r in rows if "running" in r[1]]
    if o["quiet"]:
        for r in rows:
            print(r[0])
        return 0
    table = [("NAME", "STATUS", "CONFIG FILES")] + rows
    widths = [max(len(x[i]) for x in table) for i in range(3)]
    for x in table:
        print("   ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip())
    return 0


def _port(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    o, pos = Flags("compose port", "SERVICE PRIVATE_PORT", [("--protocol", STR, "tcp"), ("--index", INT, 1)]
                   ).parse(argv)
    if len(pos) != 2:
        raise UsageError('"compose port" requires 2 arguments.')
    from dockyard.engine.filters import list_containers

    cid = _one(ctx, _load(g), pos[0], o["index"])
    for r in list_containers(ctx.store, all=True, filters=[("id", cid)]):
        for p in r.ports:
            if str(p.container_port) == pos[1] and p.proto == o["protocol"]:
                print(f"{p.host_ip}:{p.host_port}")
                return 0
    from dockyard.errors import NotFound

    raise NotFound(f"no port {pos[1]}/{o['protocol']} for container {cid[:12]}")


def _images(ctx: Context, g: dict[str, Any], argv: list[str]) -> int:
    from dockyard.compose import project
    from dockyard.engine import images

    proj = _load(g)
    table = [("CONTAINER", "REPOSITORY", "TAG", "IMAGE ID")]
    for r in project.containers(ctx.store, proj["name"]):
        repo, _, tag = r.image.rpartition(":") if ":" in r.image.rsplit("/", 1)[-1] else (r.image, "", "latest")
        try:
            iid = images.inspect_image(ctx.store, r.image)["Id"].split(":")[-1][:12]
        except Exception:  # noqa: BLE001
            iid = r.image_id.split(":")[-1][:12]
        table.append((r.name, repo, tag, iid))
    widths = [max(len(x[i]) for x in table) for i in range(4)]
    for x in table:
        print("   ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip())
    return 0
