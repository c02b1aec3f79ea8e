"""Docker's container inspect JSON, built in ONE place for both edges: the CLI prints it, the API returns it.

``container_json(store, c)`` is what ``docker inspect CONTAINER`` and GET /containers/{id}/json show (PascalCase
keys, Go's zero times, ``null`` where Docker has ``null``); ``inspect(store, ref, size=True)`` adds ``SizeRw`` and
``SizeRootFs`` as ``docker inspect -s`` and ``?size=1``.
"""

from __future__ import annotations

import os
from typing import Any

from dockyard.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.engine.containers import Container
    from dockyard.state.db import Store


def _ts(t: float | None) -> str:
    if not t:
        return "0001-01-01T00:00:00Z"
    from dockyard.timeparse import rfc3339_nano

    return rfc3339_nano(t)


def _mounts(store: Any, s: Any) -> list[dict[str, Any]]:
    """Docker's ``Mounts``: volumes with their name, driver and mountpoint; binds with their propagation."""
    out: list[dict[str, Any]] = []
    for m in s.mounts:
        if m.type == "volume":
            out.append({"Type": "volume", "Name": m.source, "Source": store.path("volumes", m.source, "_data"),
                        "Destination": m.target, "Driver": m.volume_driver or "local", "Mode": m.mode,
                        "RW": not m.readonly, "Propagation": ""})
        elif m.type == "bind":
            out.append({"Type": "bind", "Source": m.source, "Destination": m.target, "Mode": m.mode,
                        "RW": not m.readonly, "Propagation": (m.options or ["rprivate"])[0]})
        elif m.type == "tmpfs":
            out.append({"Type": "tmpfs", "Source": "", "Destination": m.target, "Mode": "", "RW": not m.readonly,
                        "Propagation": ""})
    return out


def _network_settings(store: Any, c: Any, image_cfg: dict[str, Any]) -> dict[str, Any]:
    from dockyard.network.report import settings

    return settings(store, c, image_cfg)


def _port_bindings(c: Any) -> dict[str, Any]:
    from dockyard.network.report import port_bindings

    return port_bindings(c)


def _exec_ids(store: Store, c: Container) -> list[str] | None:
    from dockyard.engine.exec import exec_ids

    return exec_ids(store, c.id) or None


def _health(store: Store, c: Container) -> dict[str, Any]:
    """``State.Health`` for a container with a healthcheck (engine.health), else nothing, as Docker."""
    if not c.config.get("healthcheck"):
        return {}
    from dockyard.engine import health

    h = health.state(store, c)
    return {"Health": h} if h is not None else {}


def container_json(store: Store, c: Container) -> dict[str, Any]:
    s = c.spec
    cdir = c.dir(store)
    args = list(s.entrypoint or []) + list(s.cmd or [])
    image_cfg: dict[str, Any] = {}
    try:
        from dockyard.engine.rootfs import image_config

        image_cfg = image_config(store, c)[0]
    except NotFound:
        pass
    env = []
    try:
        from dockyard.engine.specgen import config_env

        env = config_env(s, image_cfg)
    except Exception:  # noqa: BLE001
        pass
    r = s.resources
    return {
        "Id": c.id,
        "Created": _ts(c.created),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": c.state, "Running": c.state in ("running", "paused"), "Paused": c.state == "paused",
            "Restarting": c.state == "restarting", "OOMKilled": c.oom_killed, "Dead": c.state == "dead",
            "Pid": c.pid or 0 if c.running else 0, "ExitCode": c.exit_code or 0,
            "Error": "" if c.error in ("stopping", "stopped") else c.error,
            "StartedAt": _ts(c.started), "FinishedAt": _ts(c.finished),
            **_health(store, c),
        },
        "Image": c.image_id or "",
        "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
        "HostnamePath": os.path.join(cdir, "hostname"),
        "HostsPath": os.path.join(cdir, "hosts"),
        "LogPath": os.path.join(cdir, f"{c.id}-json.log"),
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": _exec_ids(store, c),
        "HostConfig": {
            "Binds": [f"{m.source}:{m.target}" + (":ro" if m.readonly else "") for m in s.mounts
                      if m.type == "bind"] or None,
            "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": s.network_mode,
            "PortBindings": _port_bindings(c), "PublishAllPorts": s.publish_all,
            "RestartPolicy": {"Name": s.restart.name, "MaximumRetryCount": s.restart.maximum_retry_count},
            "AutoRemove": s.auto_remove,
            "CapAdd": s.cap_add or None, "CapDrop": s.cap_drop or None,
            "Dns": s.dns, "ExtraHosts": s.extra_hosts or None,
            "Privileged": s.privileged, "ReadonlyRootfs": s.read_only, "SecurityOpt": s.security_opt or None,
            "Tmpfs": s.tmpfs or None, "ShmSize": s.shm_size, "Runtime": s.runtime, "Init": s.init or None,
            "Memory": r.memory, "MemorySwap": r.memory_swap, "MemoryReservation": r.memory_reservation,
            "NanoCpus": r.nano_cpus, "CpuShares": r.cpu_shares, "CpuPeriod": r.cpu_period,
            "CpuQuota": r.cpu_quota, "CpusetCpus": r.cpuset_cpus, "CpusetMems": r.cpuset_mems,
            "PidsLimit": r.pids_limit or None, "OomKillDisable": r.oom_kill_disable,
            "Ulimits": s.ulimits or None, "Sysctls": s.sysctls or None, "UsernsMode": s.userns,
        },
        "GraphDriver": {"Name": "overlay", "Data": {
            "MergedDir": os.path.join(cdir, "rootfs"), "UpperDir": os.path.join(cdir, "diff"),
            "WorkDir": os.path.join(cdir, "work")}},
        "Mounts": _mounts(store, s),
        "Config": {
            "Hostname": s.hostname or c.id[:12], "Domainname": s.domainname,
            "User": s.user or image_cfg.get("User", ""),
            "AttachStdin": s.open_stdin, "AttachStdout": True, "AttachStderr": True,
            "Tty": s.tty, "OpenStdin": s.open_stdin, "StdinOnce": s.open_stdin,
            "Env": env, "Cmd": s.cmd, "Image": c.image_ref,
            "Volumes": image_cfg.get("Volumes"), "WorkingDir": s.workdir or image_cfg.get("WorkingDir", ""),
            "Entrypoint": s.entrypoint or None, "OnBuild": None, "Labels": c.labels,
            **({"StopSignal": s.stop_signal or image_cfg.get("StopSignal")}
               if (s.stop_signal or image_cfg.get("StopSignal")) else {}),
            **({"StopTimeout": s.stop_timeout} if s.stop_timeout is not None else {}),
            **({"Healthcheck": s.healthcheck} if s.healthcheck else {}),
        },
        "NetworkSettings": _network_settings(store, c, image_cfg),
    }


def inspect(store: Store, ref: str, size: bool = False) -> dict[str, Any]:
    """The inspect JSON of container ``ref`` (NotFound "No such container: ref")."""
    from dockyard.engine.containers import ContainerStore

    c = ContainerStore(store).get(ref)
    obj = container_json(store, c)
    if size:  # as docker inspect -s: the writable layer, and the whole root's size
        from dockyard.engine.filters import sizes

        obj["SizeRw"], obj["SizeRootFs"] = sizes(store, c)
    return obj
