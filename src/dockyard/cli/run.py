"""``run`` and ``create``: Docker's flags -> ContainerSpec -> engine."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

from dockyard.cli.flags import BOOL, INT, LIST, STR, Flags
from dockyard.cli.main import ArgumentCountError, Context, UsageError
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.engine.options import ContainerSpec


def _flags(verb: str) -> Flags:
    return Flags(verb, "[OPTIONS] IMAGE [COMMAND] [ARG...]", [
        ("-d, --detach", BOOL, False), ("-i, --interactive", BOOL, False), ("-t, --tty", BOOL, False),
        ("--rm", BOOL, False), ("--name", STR, None), ("-e, --env", LIST, []), ("--env-file", LIST, []),
        ("-w, --workdir", STR, ""), ("-u, --user", STR, ""), ("--entrypoint", STR, None),
        ("-h, --hostname", STR, ""), ("--domainname", STR, ""), ("-l, --label", LIST, []),
        ("--label-file", LIST, []), ("--read-only", BOOL, False), ("--tmpfs", LIST, []), ("--init", BOOL, False),
        ("--restart", STR, "no"), ("--stop-signal", STR, ""), ("--stop-timeout", INT, None),
        ("--cap-add", LIST, []), ("--cap-drop", LIST, []), ("--security-opt", LIST, []), ("--ulimit", LIST, []),
        ("--shm-size", STR, ""), ("--add-host", LIST, []), ("--dns", LIST, []), ("--cidfile", STR, ""),
        ("--privileged", BOOL, False), ("-m, --memory", STR, ""), ("--memory-swap", STR, ""),
        ("--memory-reservation", STR, ""), ("--oom-kill-disable", BOOL, False), ("--cpus", STR, ""),
        ("-c, --cpu-shares", INT, 0), ("--cpu-period", INT, 0), ("--cpu-quota", INT, 0),
        ("--cpuset-cpus", STR, ""), ("--cpuset-mems", STR, ""), ("--pids-limit", INT, 0),
        ("--net, --network", STR, "default"), ("-p, --publish", LIST, []), ("-P, --publish-all", BOOL, False),
        ("--ip", STR, ""), ("--net-alias, --network-alias", LIST, []), ("--mac-address", STR, ""),
        ("-v, --volume", LIST, []), ("--mount", LIST, []),
        ("--volumes-from", LIST, []),
        ("--runtime", STR, "dockyard"), ("--userns", STR, ""), ("--sysctl", LIST, []), ("--platform", STR, ""), ("--pull", STR, "missing"),
        ("-q, --quiet", BOOL, False), ("-a, --attach", LIST, []), ("--sig-proxy", BOOL, True),
        ("--detach-keys", STR, ""),
        ("--health-cmd", STR, ""), ("--health-interval", STR, ""), ("--health-timeout", STR, ""),
        ("--health-retries", INT, None), ("--health-start-period", STR, ""), ("--no-healthcheck", BOOL, False),
        ("--health-on-failure", STR, "none"),
    ])


def parse_args(verb: str, argv: list[str]) -> SimpleNamespace:
    vals, pos = _flags(verb).parse(argv, interspersed=False)
    if not pos:
        raise ArgumentCountError(f'"dockyard {verb}" requires at least 1 argument.')
    return SimpleNamespace(**vals, image=pos[0], command=pos[1:])


def _security_opts(opts: list[str]) -> list[str]:
    """As Docker's CLI: ``seccomp=FILE`` is sent as ``seccomp=<the file's JSON>`` (the engine checks the rest)."""
    from dockyard import jsonc as json

    out = []
    for opt in opts:
        k, sep, v = opt.partition("=")
        if not sep and k != "no-new-privileges":
            k, sep, v = opt.partition(":")
        if (not sep or not v) and k != "no-new-privileges":
            raise InvalidArgument(f"Invalid --security-opt: {json.dumps(opt)}")
        if k == "seccomp" and v not in ("builtin", "unconfined"):
            try:
                with open(v, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise InvalidArgument(f"opening seccomp profile ({v}) failed: open {v}: "
                                      f"{os.strerror(e.errno or 0).lower()}") from None
            try:
                text = json.dumps(json.loads(data), separators=(",", ":"))
            except ValueError as e:
                raise InvalidArgument(f"compacting json for seccomp profile ({v}) failed: {e}") from None
            opt = "seccomp=" + text
        out.append(opt)
    return out


def _read_kv_files(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        try:
            with open(p, encoding="utf-8") as f:
                for ln in f:
                    ln = ln.strip()
                    if ln and not ln.startswith("#"):
                        out.append(ln)
        except OSError as e:
            raise InvalidArgument(f"open {p}: {os.strerror(e.errno or 0).lower()}") from None
    return out


def _env(values: list[str]) -> list[str]:
    out = []
    for v in values:
        if "=" in v:
            out.append(v)
        elif v in os.environ:  # -e NAME passes the caller's value, as Docker does
            out.append(f"{v}={os.environ[v]}")
    return out


def build_spec(o: SimpleNamespace) -> ContainerSpec:
    from dockyard.cli import units
    from dockyard.engine.options import ContainerSpec, Resources, RestartPolicy

    labels = {}
    for item in _read_kv_files(o.label_file) + o.label:
        k, _, v = item.partition("=")
        labels[k] = v
    rname, rmax = units.restart_policy(o.restart)
    tmpfs = {}
    for t in o.tmpfs:
        path, _, opts = t.partition(":")
        tmpfs[path] = opts
    sysctls = {}
    for s in o.sysctl:
        k, _, v = s.partition("=")
        sysctls[k] = v
    res = Resources(
        memory=units.ram_bytes(o.memory) if o.memory else 0,
        memory_swap=units.ram_bytes(o.memory_swap) if o.memory_swap else 0,
        memory_reservation=units.ram_bytes(o.memory_reservation) if o.memory_reservation else 0,
        nano_cpus=units.nano_cpus(o.cpus) if o.cpus else 0, cpu_shares=o.cpu_shares, cpu_period=o.cpu_period,
        cpu_quota=o.cpu_quota, cpuset_cpus=o.cpuset_cpus, cpuset_mems=o.cpuset_mems, pids_limit=o.pids_limit,
        oom_kill_disable=o.oom_kill_disable)
    from dockyard.engine import local

    spec = ContainerSpec(
        image=o.image, cmd=o.command or None,
        entrypoint=None if o.entrypoint is None else ([o.entrypoint] if o.entrypoint else []),
        env=_env(_read_kv_files(o.env_file) + o.env), workdir=o.workdir, user=o.user, hostname=o.hostname,
        domainname=o.domainname, labels=labels, tty=o.tty, open_stdin=o.interactive, auto_remove=o.rm,
        read_only=o.read_only, privileged=o.privileged, init=o.init, cap_add=o.cap_add, cap_drop=o.cap_drop,
        security_opt=_security_opts(o.security_opt), ulimits=[units.ulimit(u) for u in o.ulimit],
        shm_size=units.ram_bytes(o.shm_size) if o.shm_size else 64 * 1024 * 1024, tmpfs=tmpfs,
        extra_hosts=o.add_host, dns=o.dns, network_mode=o.network, publish_all=o.publish_all,
        aliases=o.network_alias, ip=o.ip, mac_address=o.mac_address, stop_signal=o.stop_signal,
        stop_timeout=o.stop_timeout, restart=RestartPolicy(name=rname, maximum_retry_count=rmax), resources=res,
        runtime=o.runtime, sysctls=sysctls, userns=o.userns)
    if (o.health_cmd or o.health_interval or o.health_timeout or o.health_retries is not None
            or o.health_start_period or o.no_healthcheck or o.health_on_failure != "none"):
        from dockyard.engine import health  # only when a health flag is given: off the plain run path

        spec.healthcheck = health.from_flags(o.health_cmd, o.health_interval, o.health_timeout, o.health_retries,
                                             o.health_start_period, o.no_healthcheck)
        spec.health_on_failure = o.health_on_failure
        health.check(spec.healthcheck, spec.health_on_failure)
    local.check_spec(spec)  # the engine checks again at create: here, before -p and -v are parsed, as Docker
    spec.ports = local.parse_ports(o.publish) if o.publish else []
    spec.mounts = local.parse_mounts(o.volume, o.mount, o.volumes_from, o.tmpfs)
    return spec


def _attach_streams(values: list[str]) -> set[str]:
    """``-a``: the streams to attach (stdout and stderr when none is named; stdin comes with ``-i``)."""
    out = set()
    for v in values:
        if v.lower() not in ("stdin", "stdout", "stderr"):
            raise InvalidArgument(f'invalid argument "{v}" for "-a, --attach" flag: valid streams are STDIN, '
                                  "STDOUT and STDERR")
        out.add(v.lower())
    return out or {"stdout", "stderr"}


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.engine import local

    o = parse_args(ctx.verb, argv)
    if o.detach and o.attach:
        err = UsageError("conflicting options: cannot specify both --attach and --detach")
        err.exit_code = 1  # the Docker 28 CLI's own check, a plain error: 1, not 125
        raise err
    streams = _attach_streams(o.attach)
    if o.pull not in ("always", "missing", "never"):
        raise InvalidArgument(f"invalid pull option: '{o.pull}': must be one of \"always\", \"missing\" or "
                              "\"never\"")
    if o.cidfile and os.path.exists(o.cidfile):
        raise InvalidArgument(f"Container ID file found, make sure the other container isn't running or delete "
                              f"{o.cidfile}")
    spec = build_spec(o)
    spawner = None
    if o.pull == "always":  # pulled before the monitor is forked: the pull opens the store
        from dockyard.cli.registry import pull_for_run

        pull_for_run(ctx, spec.image, "always", o.platform)
    elif ctx.verb == "run":  # fork the monitor before the store is opened: it loads the runtime meanwhile
        from dockyard.engine.monitor import Spawner

        spawner = Spawner(ctx.root)
    from dockyard.errors import NotFound

    try:
        try:
            c = local.create(ctx.store, spec, o.name, platform=o.platform)
        except NotFound:
            # a missing image is pulled (--pull missing), then the create is made again; the early monitor
            # is let go as the store is now open
            from dockyard.cli.registry import pull_for_run

            if o.pull != "missing" or not pull_for_run(ctx, spec.image, "missing", o.platform):
                raise
            if spawner is not None:
                spawner.cancel()
                spawner = None
            c = local.create(ctx.store, spec, o.name, platform=o.platform)
    except BaseException:
        if spawner is not None:
            spawner.cancel()
        raise
    for w in c.warnings:
        sys.stderr.write(f"WARNING: {w}\n")
    if o.cidfile:
        with open(o.cidfile, "x") as f:
            f.write(c.id)
    if ctx.verb == "create":
        print(c.id)
        return 0
    if o.detach:
        local.start(ctx.store, c, spawner=spawner)
        print(c.id)
        return 0
    from dockyard.cli import stream

    local.start(ctx.store, c, wait_attach=True, spawner=spawner)
    from dockyard.cli.sigproxy import forwarding

    # as Docker: no proxy with a tty (the terminal sends ^C to the container)
    with forwarding(ctx.store, c.id, enabled=bool(o.sig_proxy and not o.tty)):
        status = stream.attach(c.id, stdin=o.interactive, tty=o.tty, start=True, stdout="stdout" in streams,
                               stderr="stderr" in streams, detach_keys=stream.parse_detach_keys(o.detach_keys))
    if status is None:
        from dockyard.errors import NotFound

        try:
            c2 = local.resolve(ctx.store, c.id)
        except NotFound:
            return 0
        if c2.running:
            return 0  # detached with the detach keys
        status = c2.exit_code or 0
    sys.stdout.flush()
    return status
