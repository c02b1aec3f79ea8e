"""A loaded Compose project -> engine calls (no shelling out to dockyard itself).

Names and labels are Docker Compose's: containers ``PROJECT-SERVICE-N`` (or ``container_name``), networks
``PROJECT_KEY`` (``PROJECT_default`` for the implicit one), volumes ``PROJECT_KEY``, and labels
``com.docker.compose.project/service/container-number/config-hash/oneoff`` on containers,
``com.docker.compose.project/network`` and ``.../volume`` on networks and volumes. The config hash is a sha256 of
the service's canonical JSON (after interpolation and merging): a second ``up`` recreates exactly the services
whose hash changed.

Containers are created in dependency order; the containers of services that do not wait for one another are
started together (``start_together``): one monitor forked per container from this single-threaded process with the
store closed, all told their container, then all awaited, so the monitors set up their containers in parallel.
No thread starts anything (``logs -f`` reads with threads).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.engine.options import ContainerSpec
    from dockyard.engine.records import ContainerRow

from dockyard import jsonc as json
from dockyard.compose.loader import ComposeError, _as_map, depends_on, order, read_env_file
from dockyard.errors import DockyardError, NotFound

P = "com.docker.compose."
SUPPORTED = {
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes",
    "networks", "network_mode", "depends_on", "healthcheck", "restart", "deploy", "scale", "user", "working_dir",
    "labels", "init", "stop_signal", "stop_grace_period", "container_name", "hostname", "domainname",
    "privileged", "read_only", "cap_add", "cap_drop", "dns", "extra_hosts", "sysctls", "tmpfs", "tty",
    "stdin_open", "security_opt", "ulimits", "shm_size", "profiles", "extends", "pull_policy", "platform",
    "mem_limit", "cpus", "pids_limit", "runtime", "secrets", "configs",
}
_UNITS = {"b": 1, "k": 1024, "kb": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "g": 1024 ** 3, "gb": 1024 ** 3}


def _bytes(v: Any, where: str) -> int:
    if isinstance(v, int):
        return v
    import re

    m = re.fullmatch(r"([0-9.]+)\s*([a-zA-Z]*)", str(v).strip())
    if not m or m.group(2).lower() not in _UNITS and m.group(2):
        raise ComposeError(f"{where}: invalid size {v!r}")
    return int(float(m.group(1)) * _UNITS.get(m.group(2).lower() or "b", 1))


def _seconds(v: Any, where: str) -> int:
    from dockyard.engine.health import parse_duration

    return int(parse_duration(str(v), where) // 1_000_000_000) if not isinstance(v, (int, float)) else int(v)


def _ns(v: Any, where: str) -> int:
    from dockyard.engine.health import parse_duration

    return parse_duration(str(v), where) if not isinstance(v, (int, float)) else int(v * 1e9)


def config_hash(svc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(svc, sort_keys=True, default=str).encode()).hexdigest()


def image_name(proj: dict[str, Any], name: str) -> str:
    svc = proj["services"][name]
    return str(svc.get("image") or f"{proj['name']}-{name}")


def container_name(proj: dict[str, Any], name: str, n: int) -> str:
    return str(proj["services"][name].get("container_name") or f"{proj['name']}-{name}-{n}")


def network_name(proj: dict[str, Any], key: str) -> str:
    cfg = proj["networks"].get(key) or {}
    return str(cfg.get("name") or (key if cfg.get("external") else f"{proj['name']}_{key}"))


def volume_name(proj: dict[str, Any], key: str) -> str:
    cfg = proj["volumes"].get(key) or {}
    return str(cfg.get("name") or (key if cfg.get("external") else f"{proj['name']}_{key}"))


def replicas(svc: dict[str, Any], scale: dict[str, int], name: str) -> int:
    if name in scale:
        return scale[name]
    d = (svc.get("deploy") or {}).get("replicas")
    return int(svc.get("scale", d if d is not None else 1))


def _networks(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    n = svc.get("networks")
    if svc.get("network_mode"):
        return {}
    if not n:
        return {"default": {}}
    return {k: {} for k in n} if isinstance(n, list) else {k: (v or {}) for k, v in n.items()}


# ---- service -> container spec -----------------------------------------------------------------------------
def _cmd(v: Any) -> list[str] | None:
    if v is None:
        return None
    return shlex.split(v) if isinstance(v, str) else [str(x) for x in v]


def _env(proj: dict[str, Any], svc: dict[str, Any]) -> list[str]:
    env: dict[str, str] = {}
    files = svc.get("env_file") or []
    for f in [files] if isinstance(files, str) else files:
        path, required = (f, True) if isinstance(f, str) else (f["path"], f.get("required", True))
        p = os.path.join(proj["workdir"], path)
        if required and not os.path.exists(p):
            raise ComposeError(f"env file {p} not found")
        env.update(read_env_file(p))
    for k, v in _as_map(svc.get("environment") or {}).items():
        if v is None:
            if k in proj["env"]:
                env[k] = proj["env"][k]
        else:
            env[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return [f"{k}={v}" for k, v in env.items()]


def _ports(svc: dict[str, Any]) -> list[str]:
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            s = str(p["target"])
            if p.get("published") not in (None, ""):
                s = f"{p['published']}:{s}"
                if p.get("host_ip"):
                    s = f"{p['host_ip']}:{s}"
            out.append(s + (f"/{p['protocol']}" if p.get("protocol") else ""))
        else:
            out.append(str(p))
    return out


def _mounts(proj: dict[str, Any], name: str, svc: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """``-v`` strings, ``--mount`` strings and ``--tmpfs`` paths for a service's volumes."""
    vols, mounts, tmpfs = [], [], []

    def source(src: str) -> str:
        if src.startswith((".", "~")):
            return os.path.normpath(os.path.join(proj["workdir"], os.path.expanduser(src)))
        if src and not src.startswith("/"):
            if src not in proj["volumes"]:
                raise ComposeError(f"service {name!r} refers to undefined volume {src}: invalid compose project")
            return volume_name(proj, src)
        return src

    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) == 1:
                vols.append(v)
            else:
                vols.append(":".join([source(parts[0])] + parts[1:]))
            continue
        t = v.get("type", "volume")
        items = [f"type={t}", f"target={v['target']}"]
        if v.get("source"):
            items.append(f"source={source(str(v['source']))}")
        if v.get("read_only"):
            items.append("readonly")
        if t == "volume" and (v.get("volume") or {}).get("nocopy"):
            items.append("volume-nocopy")
        if t == "bind" and (v.get("bind") or {}).get("propagation"):
            items.append(f"bind-propagation={v['bind']['propagation']}")
        if t == "tmpfs" and (v.get("tmpfs") or {}).get("size"):
            items.append(f"tmpfs-size={_bytes(v['tmpfs']['size'], 'tmpfs.size')}")
        mounts.append(",".join(items))
    t = svc.get("tmpfs") or []
    for x in [t] if isinstance(t, str) else t:
        tmpfs.append(x)
    for kind in ("secrets", "configs"):
        for src, target in _files(proj, name, svc, kind):
            mounts.append(f"type=bind,source={src},target={target},readonly")
    return vols, mounts, tmpfs


def _files(proj: dict[str, Any], name: str, svc: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """(host file, target in the container) of a service's ``secrets`` or ``configs``: the file of the top-level
    definition, mounted read-only at ``/run/secrets/<name>`` (a relative secret target goes under /run/secrets)
    or at the config's target (``/<name>`` by default). Only file-backed ones: the others are refused."""
    out = []
    for ref in svc.get(kind) or []:
        src, target = (ref, "") if isinstance(ref, str) else (str(ref["source"]), str(ref.get("target") or ""))
        where = f"services.{name}.{kind}"
        defn = (proj.get(kind) or {}).get(src)
        if defn is None:
            raise ComposeError(f"{where}: {kind[:-1]} {src!r} is not defined in the top-level {kind}")
        if defn.get("external") or not defn.get("file"):
            how = "external" if defn.get("external") else next((k for k in ("environment", "content", "name")
                                                                  if defn.get(k)), "without a file")
            raise ComposeError(f"{kind}.{src}: {how} {kind} are not supported by dockyard compose (use file:)")
        path = os.path.normpath(os.path.join(proj["workdir"], os.path.expanduser(str(defn["file"]))))
        if not os.path.isfile(path):
            raise ComposeError(f"{kind}.{src}: file {path} not found")
        if kind == "secrets":
            target = target if target.startswith("/") else f"/run/secrets/{target or src}"
        else:
            target = target or f"/{src}"
        out.append((path, target))
    return out


def healthcheck(hc: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    if not hc:
        return None
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    test = hc.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    out = {"Test": list(test or []), "Retries": int(hc.get("retries") or 0)}
    for k, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        out[key] = _ns(hc[k], f"{where}.{k}") if hc.get(k) is not None else 0
    return out


def check(proj: dict[str, Any], names: list[str]) -> None:
    """What a service asks that dockyard refuses, or refers to and is missing (keys, volumes, secrets, configs):
    checked for every service before ``up`` creates anything."""
    for name in names:
        svc = proj["services"][name]
        bad = sorted(k for k in svc if k not in SUPPORTED and not k.startswith("x-"))
        if bad:
            raise ComposeError(f"services.{name}.{bad[0]}: not supported by dockyard compose")
        _mounts(proj, name, svc)


def spec_for(proj: dict[str, Any], name: str, n: int, chash: str,
             resolve: Callable[[str], str]) -> tuple[ContainerSpec, list[tuple[str, list[str]]]]:
    """The container spec of replica ``n`` of service ``name``, and the extra networks to connect
    (``resolve``: a service name -> one of its containers, for ``network_mode: service:X``)."""
    from dockyard.engine import local
    from dockyard.engine.options import ContainerSpec, Resources, RestartPolicy

    svc = proj["services"][name]
    where = f"services.{name}"
    check(proj, [name])
    rname, _, rmax = str(svc.get("restart") or "no").partition(":")
    if rname not in ("no", "always", "on-failure", "unless-stopped"):
        raise ComposeError(f"{where}.restart: invalid restart policy {svc['restart']!r}")
    lim = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    res = Resources(memory=_bytes(lim.get("memory") or svc.get("mem_limit") or 0, f"{where}.memory"),
                    nano_cpus=int(float(lim.get("cpus") or svc.get("cpus") or 0) * 1e9),
                    pids_limit=int(lim.get("pids") or svc.get("pids_limit") or 0))
    labels = {str(k): str(v) for k, v in _as_map(svc.get("labels") or {}).items()}
    labels.update({P + "project": proj["name"], P + "service": name, P + "container-number": str(n),
                   P + "config-hash": chash, P + "oneoff": "False", P + "project.working_dir": proj["workdir"],
                   P + "project.config_files": ",".join(proj["files"]), P + "version": "2.0.0-dockyard"})
    nets = _networks(svc)
    mode = str(svc.get("network_mode") or "")
    if mode.startswith("service:"):
        mode = "container:" + resolve(mode.split(":", 1)[1])
    aliases: list[str] = []
    extra: list[tuple[str, list[str]]] = []
    ip = ""
    for i, (key, cfg) in enumerate(nets.items()):
        if key not in proj["networks"] and key != "default":
            raise ComposeError(f"service {name!r} refers to undefined network {key}: invalid compose project")
        al = [name, container_name(proj, name, n)] + [str(a) for a in cfg.get("aliases") or []]
        if i == 0:
            mode, aliases, ip = network_name(proj, key), al, str(cfg.get("ipv4_address") or "")
        else:
            extra.append((network_name(proj, key), al))
    stop = svc.get("stop_grace_period")
    spec = ContainerSpec(
        image=image_name(proj, name), cmd=_cmd(svc.get("command")), entrypoint=_cmd(svc.get("entrypoint")),
        env=_env(proj, svc), workdir=str(svc.get("working_dir") or ""), user=str(svc.get("user") or ""),
        hostname=str(svc.get("hostname") or ""), domainname=str(svc.get("domainname") or ""), labels=labels,
        tty=bool(svc.get("tty")), open_stdin=bool(svc.get("stdin_open")), read_only=bool(svc.get("read_only")),
        privileged=bool(svc.get("privileged")), init=bool(svc.get("init")), cap_add=list(svc.get("cap_add") or []),
        cap_drop=list(svc.get("cap_drop") or []), security_opt=list(svc.get("security_opt") or []),
        extra_hosts=[x if isinstance(svc.get("extra_hosts"), list) else f"{x}:{svc['extra_hosts'][x]}"
                     for x in svc.get("extra_hosts") or []],
        dns=[svc["dns"]] if isinstance(svc.get("dns"), str) else list(svc.get("dns") or []),
        network_mode=mode or "none", aliases=aliases, ip=ip, stop_signal=str(svc.get("stop_signal") or ""),
        stop_timeout=_seconds(stop, f"{where}.stop_grace_period") if stop is not None else None,
        restart=RestartPolicy(name=rname, maximum_retry_count=int(rmax or 0)), resources=res,
        sysctls={str(k): str(v) for k, v in (svc.get("sysctls") or {}).items()} if isinstance(
            svc.get("sysctls"), dict) else dict(str(x).split("=", 1) for x in svc.get("sysctls") or []),
        runtime=str(svc.get("runtime") or "dockyard"),
        shm_size=_bytes(svc["shm_size"], f"{where}.shm_size") if svc.get("shm_size") else 64 * 1024 * 1024,
        healthcheck=healthcheck(svc.get("healthcheck"), f"{where}.healthcheck"))
    vols, mounts, tmpfs = _mounts(proj, name, svc)
    spec.tmpfs = {t.partition(":")[0]: t.partition(":")[2] for t in tmpfs}
    spec.ports = local.parse_ports(_ports(svc)) if svc.get("ports") else []
    spec.mounts = local.parse_mounts(vols, mounts, None, tmpfs)
    return spec, extra


# ---- the verbs ---------------------------------------------------------------------------------------------
def containers(store: Any, project: str, service: str | None = None, all: bool = True,
               oneoff: bool = False) -> list[ContainerRow]:
    from dockyard.engine.filters import list_containers

    f = [("label", P + "project=" + project)]
    if service:
        f.append(("label", P + "service=" + service))
    rows = list_containers(store, all=all, filters=f)
    rows = [r for r in rows if (r.labels.get(P + "oneoff") == "True") == oneoff]
    return sorted(rows, key=lambda r: (r.labels.get(P + "service", ""),
                                        int(r.labels.get(P + "container-number", "0") or 0)))


def ensure_resources(store: Any, proj: dict[str, Any], say: Callable[[str], None]) -> None:
    from dockyard.engine import networks, volumes

    used = {k for s in proj["services"].values() for k in _networks(s)}
    for key in sorted(used | set(proj["networks"])):
        cfg = proj["networks"].get(key) or {}
        nm = network_name(proj, key)
        try:
            networks.find_network(store, nm)
            continue
        except NotFound:
            if cfg.get("external"):
                raise ComposeError(f"network {nm} declared as external, but could not be found") from None
        if key not in used:
            continue
        ipam = [c for c in ((cfg.get("ipam") or {}).get("config") or [])]
        networks.create_network(store, nm, driver=str(cfg.get("driver") or "bridge"),
                                subnets=[c["subnet"] for c in ipam if c.get("subnet")],
                                gateways=[c["gateway"] for c in ipam if c.get("gateway")],
                                internal=bool(cfg.get("internal")),
                                labels={**{str(k): str(v) for k, v in (cfg.get("labels") or {}).items()},
                                        P + "project": proj["name"], P + "network": key},
                                options={str(k): str(v) for k, v in (cfg.get("driver_opts") or {}).items()})
        say(f"Network {nm}  Created")
    for key, cfg in proj["volumes"].items():
        cfg = cfg or {}
        nm = volume_name(proj, key)
        if cfg.get("external"):
            try:
                volumes.inspect_volume(store, nm)
            except NotFound:
                raise ComposeError(f"external volume \"{nm}\" not found") from None
            continue
        try:
            volumes.inspect_volume(store, nm)
        except NotFound:
            volumes.create_volume(store, nm, driver=str(cfg.get("driver") or "local"),
                                  options={str(k): str(v) for k, v in (cfg.get("driver_opts") or {}).items()},
                                  labels={**{str(k): str(v) for k, v in (cfg.get("labels") or {}).items()},
                                          P + "project": proj["name"], P + "volume": key})
            say(f"Volume {nm}  Created")


def build(store: Any, proj: dict[str, Any], names: list[str], say: Callable[[str], None],
          only_missing: bool = False) -> None:
    from dockyard.engine import build as eb
    from dockyard.engine import images

    for name in names:
        svc = proj["services"][name]
        b = svc.get("build")
        if not b:
            continue
        tag = image_name(proj, name)
        if only_missing:
            try:
                images.inspect_image(store, tag)
                continue
            except NotFound:
                pass
        b = {"context": b} if isinstance(b, str) else b
        ctx = os.path.join(proj["workdir"], str(b.get("context") or "."))
        df = b.get("dockerfile")
        args = b.get("args") or {}
        if isinstance(args, list):
            args = dict(str(a).partition("=")[::2] for a in args)
        say(f"Service {name}  Building")
        eb.run_build(store, ctx, lambda e: None, dockerfile_path=os.path.join(ctx, df) if df else None,
                     tags=[tag], build_args={str(k): str(v) for k, v in args.items()},
                     target=b.get("target"), labels={str(k): str(v) for k, v in (b.get("labels") or {}).items()})
        say(f"Service {name}  Built")


def _ensure_image(store: Any, proj: dict[str, Any], name: str) -> None:
    from dockyard.engine import images

    svc = proj["services"][name]
    if svc.get("build"):
        return
    for _ in images.ensure_image(store, image_name(proj, name), str(svc.get("pull_policy") or "missing")):
        pass


def _wait_deps(store: Any, proj: dict[str, Any], name: str, timeout: float = 600) -> None:
    from dockyard.engine import view

    for dep, cond in depends_on(proj["services"][name]).items():
        if dep not in proj["services"]:
            continue
        deadline = time.monotonic() + timeout
        for row in containers(store, proj["name"], dep):
            while True:
                st = view.inspect(store, row.id)["State"]
                if cond == "service_healthy":
                    h = (st.get("Health") or {}).get("Status")
                    if h is None:
                        raise ComposeError(f"dependency {dep} has no healthcheck: condition service_healthy "
                                           "cannot be met")
                    if h == "healthy":
                        break
                    if h == "unhealthy" or st["Status"] == "exited":
                        raise DockyardError(f"dependency failed to start: container {row.name} is unhealthy")
                elif cond == "service_completed_successfully":
                    if st["Status"] == "exited":
                        if st["ExitCode"] != 0:
                            raise DockyardError(f"service {dep!r} didn't complete successfully: "
                                                f"exit {st['ExitCode']}")
                        break
                elif st["Status"] in ("running", "exited"):
                    break
                if time.monotonic() > deadline:
                    raise DockyardError(f"timed out waiting for {row.name} ({cond})")
                time.sleep(0.1)


def up(store: Any, proj: dict[str, Any], say: Callable[[str], None], services: list[str] | None = None, *,
       build_images: bool = False, force_recreate: bool = False, no_recreate: bool = False,
       remove_orphans: bool = False, scale: dict[str, int] | None = None, no_start: bool = False) -> list[str]:
    """Create/recreate/start what the file says; returns the project's container IDs in start order."""
    from dockyard.engine import local, networks

    scale = scale or {}
    names = order(proj["services"])
    if services:
        want = set()
        for s in services:
            if s not in proj["services"]:
                raise NotFound(f"no such service: {s}")
            stack = [s]
            while stack:
                x = stack.pop()
                if x not in want:
                    want.add(x)
                    stack.extend(d for d in depends_on(proj["services"][x]) if d in proj["services"])
        names = [n for n in names if n in want]
    check(proj, names)
    ensure_resources(store, proj, say)
    build(store, proj, names, say, only_missing=not build_images)
    existing = containers(store, proj["name"])
    for r in existing:
        if r.labels.get(P + "service") not in proj["services"]:
            if remove_orphans:
                local.remove(store, local.resolve(store, r.id), force=True)
                say(f"Container {r.name}  Removed")
            else:
                say(f"WARN: Found orphan container ({r.name}) for this project. If you removed or renamed this "
                    "service in your compose file, you can run this command with the --remove-orphans flag to "
                    "clean it up.")
    ids: list[str] = []

    def resolve(svc: str) -> str:
        rows = containers(store, proj["name"], svc)
        if not rows:
            raise ComposeError(f"service {svc!r} has no container for network_mode")
        return rows[0].id

    batch: list[tuple[str, str, str]] = []  # (service, container id, name) created, to start together
    started: set[str] = set()

    def flush() -> None:
        start_together(store, [(cid, cname) for _, cid, cname in batch], say)
        started.update(s for s, _, _ in batch)
        batch.clear()

    for name in names:
        _ensure_image(store, proj, name)
        svc = proj["services"][name]
        if any(d in {s for s, _, _ in batch} for d in depends_on(svc)) or str(svc.get("network_mode") or "").startswith(
                "service:"):
            flush()  # what this service waits for (or joins) must be started first
        chash = config_hash(svc)
        n_want = replicas(svc, scale, name)
        have = {int(r.labels.get(P + "container-number", "0") or 0): r for r in containers(store, proj["name"], name)}
        for num, r in sorted(have.items()):
            if num > n_want:
                c = local.resolve(store, r.id)
                local.stop(store, c)
                local.remove(store, c, force=True)
                say(f"Container {r.name}  Removed")
        _wait_deps(store, proj, name)
        for num in range(1, n_want + 1):
            r = have.get(num)
            cname = container_name(proj, name, num)
            if r is not None and (no_recreate or (r.labels.get(P + "config-hash") == chash and not force_recreate)):
                c = local.resolve(store, r.id)
                if not c.running and not no_start:
                    local.start(store, c)
                    say(f"Container {cname}  Started")
                else:
                    say(f"Container {cname}  Running")
                ids.append(c.id)
                continue
            if r is not None:
                old = local.resolve(store, r.id)
                local.stop(store, old)
                local.remove(store, old, force=True)
                say(f"Container {cname}  Recreate")
            spec, extra = spec_for(proj, name, num, chash, resolve)
            c = local.create(store, spec, name=cname)
            for net, aliases in extra:
                networks.connect_network(store, net, c.id, aliases)
            say(f"Container {cname}  {'Recreated' if r is not None else 'Created'}")
            if not no_start:
                batch.append((name, c.id, cname))
            ids.append(c.id)
    flush()
    return ids


def start_together(store: Any, todo: list[tuple[str, str]], say: Callable[[str], None]) -> None:
    """Start containers ``(id, name)`` at once: one monitor forked per container while no thread runs and the
    store is closed (SQLite state must not cross fork), each told its container, then every outcome awaited.
    The monitors create their containers in parallel; the first failure is raised once all have answered."""
    from dockyard.engine import local
    from dockyard.engine.monitor import Spawner

    if not todo:
        return
    if len(todo) == 1:
        local.start(store, local.resolve(store, todo[0][0]))
        say(f"Container {todo[0][1]}  Started")
        return
    for cid, _ in todo:
        local.resolve(store, cid).can_start()
    store.close()
    spawners = [Spawner(store.root) for _ in todo]
    for sp, (cid, _) in zip(spawners, todo):
        sp.send(cid)
    err: BaseException | None = None
    for sp, (cid, cname) in zip(spawners, todo):
        try:
            sp.result(cid)
            say(f"Container {cname}  Started")
        except DockyardError as e:
            err = err or e
    if err is not None:
        raise err


def wait_ready(store: Any, ids: list[str], timeout: float = 600) -> None:
    """``up --wait``: every container running (and healthy when it has a healthcheck)."""
    from dockyard.engine import view

    deadline = time.monotonic() + timeout
    for cid in ids:
        while True:
            st = view.inspect(store, cid)["State"]
            h = (st.get("Health") or {}).get("Status")
            if st["Status"] == "exited" or h == "unhealthy":
                raise DockyardError(f"container {cid[:12]} is {h or 'exited'}")
            if st["Status"] == "running" and h in (None, "healthy"):
                break
            if time.monotonic() > deadline:
                raise DockyardError(f"timed out waiting for container {cid[:12]}")
            time.sleep(0.1)


def stop(store: Any, proj: dict[str, Any], say: Callable[[str], None], services: list[str] | None = None,
         timeout: int | None = None) -> None:
    from dockyard.engine import local

    rows = [r for r in containers(store, proj["name"]) if not services or r.labels.get(P + "service") in services]
    names = order(proj["services"]) if proj["services"] else []
    rank = {n: i for i, n in enumerate(names)}
    for r in sorted(rows, key=lambda r: -rank.get(r.labels.get(P + "service", ""), -1)):  # dependents first
        c = local.resolve(store, r.id)
        if c.running:
            local.stop(store, c, timeout)
            say(f"Container {r.name}  Stopped")


def down(store: Any, proj: dict[str, Any], say: Callable[[str], None], volumes: bool = False, rmi: str = "",
         remove_orphans: bool = False, timeout: int | None = None) -> None:
    from dockyard.engine import images, local, networks
    from dockyard.engine import volumes as ev

    stop(store, proj, say, timeout=timeout)
    for r in containers(store, proj["name"]) + containers(store, proj["name"], oneoff=True):
        if r.labels.get(P + "service") in proj["services"] or remove_orphans or r.labels.get(P + "oneoff") == "True":
            local.remove(store, local.resolve(store, r.id), force=True, volumes=volumes)
            say(f"Container {r.name}  Removed")
    for n in networks.list_networks(store, {"label": [P + "project=" + proj["name"]]}):
        try:
            networks.remove_network(store, n.id)
            say(f"Network {n.name}  Removed")
        except DockyardError as e:
            say(f"Network {n.name}  Error: {e}")
    if volumes:
        for key, cfg in proj["volumes"].items():
            if (cfg or {}).get("external"):
                continue
            nm = volume_name(proj, key)
            try:
                ev.remove_volume(store, nm)
                say(f"Volume {nm}  Removed")
            except NotFound:
                pass
    if rmi:
        for name, svc in proj["services"].items():
            if rmi == "local" and svc.get("image"):
                continue
            try:
                images.remove_image(store, image_name(proj, name))
                say(f"Image {image_name(proj, name)}  Removed")
            except NotFound:
                pass


def projects(store: Any) -> list[tuple[str, str, str]]:
    """``compose ls``: (name, status like ``running(2)``, config files) of every project with containers."""
    from dockyard.engine.filters import list_containers

    by: dict[str, dict[str, Any]] = {}
    for r in list_containers(store, all=True, filters=[("label", P + "project")]):
        p = by.setdefault(r.labels[P + "project"], {"states": {}, "files": r.labels.get(P + "project.config_files",
                                                                                          "")})
        p["states"][r.state] = p["states"].get(r.state, 0) + 1
    return [(n, ", ".join(f"{s}({k})" for s, k in sorted(p["states"].items())), p["files"])
            for n, p in sorted(by.items())]
