"""POST /containers/create: Docker's JSON body -> the engine's ``ContainerSpec``.

Every field is type-checked (a wrong type is a 400, never a 500). A field dockyard does not apply that is *set*
(not its zero value, which clients send for everything) is refused by name: accepted means applied.
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import InvalidArgument

# Config / HostConfig fields read below; everything else must be absent or zero
_CONFIG_KNOWN = {"Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
                 "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint",
                 "Labels", "StopSignal", "StopTimeout", "MacAddress", "HostConfig", "NetworkingConfig",
                 "ArgsEscaped", "NetworkDisabled", "OnBuild", "Shell", "Healthcheck"}
_HOST_KNOWN = {"Binds", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove", "VolumesFrom", "Mounts",
               "CapAdd", "CapDrop", "Dns", "ExtraHosts", "Privileged", "PublishAllPorts", "ReadonlyRootfs",
               "SecurityOpt", "Tmpfs", "ShmSize", "Sysctls", "Runtime", "Init", "Memory", "MemorySwap",
               "MemoryReservation", "NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems",
               "PidsLimit", "OomKillDisable", "Ulimits", "LogConfig", "ConsoleSize", "ContainerIDFile",
               "VolumeDriver", "CgroupnsMode", "IpcMode", "PidMode", "UTSMode", "UsernsMode", "Isolation",
               "MaskedPaths", "ReadonlyPaths", "Devices", "DeviceCgroupRules", "DeviceRequests", "Links",
               "GroupAdd", "DnsOptions", "DnsSearch", "OomScoreAdj", "Cgroup", "CgroupParent", "StorageOpt",
               "Annotations", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
               "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuRealtimePeriod", "CpuRealtimeRuntime",
               "KernelMemory", "KernelMemoryTCP", "MemorySwappiness", "CpuCount", "CpuPercent",
               "IOMaximumIOps", "IOMaximumBandwidth", "LogConfig", "VolumeDriver"}
_ZERO_ONLY_HOST = {"IpcMode": ("", "private", "shareable"), "PidMode": ("",), "UTSMode": ("",),
                   "CgroupnsMode": ("", "private"), "Isolation": ("", "default"),
                   "VolumeDriver": ("", "local"), "Cgroup": ("",), "CgroupParent": ("",)}


def _t(v: Any, typ: type | tuple[type, ...], name: str, default: Any) -> Any:
    if v is None:
        return default
    if typ is int and isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, typ) or (isinstance(v, bool) and typ in (int, (int,))):
        tn = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise InvalidArgument(f"invalid type for {name}: want {tn}, got {type(v).__name__}")
    return v


def _strs(v: Any, name: str) -> list[str]:
    v = _t(v, list, name, [])
    for x in v:
        if not isinstance(x, str):
            raise InvalidArgument(f"invalid type for {name}: want a list of strings")
    return list(v)


def _strmap(v: Any, name: str) -> dict[str, str]:
    v = _t(v, dict, name, {})
    for k, x in v.items():
        if not isinstance(x, str):
            raise InvalidArgument(f"invalid type for {name}[{k}]: want a string")
    return dict(v)


def _zero(v: Any) -> bool:
    if v in (None, "", 0, False, [], {}):
        return True
    if isinstance(v, dict):
        return all(_zero(x) for x in v.values())
    if isinstance(v, list):
        return all(_zero(x) for x in v)
    return False


def _userns(v: Any) -> str:
    """``UsernsMode`` as the CLI's ``--userns`` (engine.validate.userns, the same one-line error): "" / host,
    keep-id[:uid=N,gid=N] when the engine is rootless."""
    import os

    from dockyard.engine import validate

    mode = _t(v, str, "HostConfig.UsernsMode", "")
    validate.userns(mode, "_DOCKYARD_ROOTLESS" in os.environ)
    return mode


def _refuse_unknown(d: dict[str, Any], known: set[str], where: str) -> None:
    for k, v in d.items():
        if k not in known and not _zero(v):
            raise InvalidArgument(f"{where}.{k} is not supported by dockyard")


def spec_from_body(body: Any) -> tuple[Any, dict[str, list[str]]]:
    """Returns the ContainerSpec and the ``NetworkingConfig`` endpoints' aliases (network -> aliases)."""
    from dockyard.engine.options import ContainerSpec, Resources, RestartPolicy

    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON body: want an object")
    hc = _t(body.get("HostConfig"), dict, "HostConfig", {})
    _refuse_unknown(body, _CONFIG_KNOWN, "Config")
    _refuse_unknown(hc, _HOST_KNOWN, "HostConfig")
    for k, allowed in _ZERO_ONLY_HOST.items():
        if hc.get(k) not in (None, *allowed):
            raise InvalidArgument(f"HostConfig.{k}={hc[k]!r} is not supported by dockyard")
    for k in ("MaskedPaths", "ReadonlyPaths", "Devices", "DeviceCgroupRules", "DeviceRequests", "Links",
              "GroupAdd", "DnsOptions", "DnsSearch", "OomScoreAdj", "StorageOpt", "Annotations", "BlkioWeight",
              "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
              "BlkioDeviceWriteIOps", "CpuRealtimePeriod", "CpuRealtimeRuntime", "KernelMemory", "KernelMemoryTCP",
              "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth"):
        if not _zero(hc.get(k)):
            raise InvalidArgument(f"HostConfig.{k} is not supported by dockyard")
    if hc.get("MemorySwappiness") not in (None, -1):
        raise InvalidArgument("HostConfig.MemorySwappiness is not supported by dockyard")
    for k in ("Healthcheck", "OnBuild", "Shell"):
        if not _zero(body.get(k)):
            raise InvalidArgument(f"Config.{k} is not supported by dockyard")
    if body.get("NetworkDisabled"):
        raise InvalidArgument("Config.NetworkDisabled is not supported by dockyard (use NetworkMode none)")
    log = _t(hc.get("LogConfig"), dict, "HostConfig.LogConfig", {})
    if log.get("Type") not in (None, "", "json-file") or not _zero(log.get("Config")):
        raise InvalidArgument("HostConfig.LogConfig: only the json-file driver with its defaults is supported")

    image = _t(body.get("Image"), str, "Image", "")
    if not image:
        raise InvalidArgument("Config.Image is required")
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    ep = body.get("Entrypoint")
    if isinstance(ep, str):
        ep = [ep]
    restart = _t(hc.get("RestartPolicy"), dict, "HostConfig.RestartPolicy", {})
    rname = _t(restart.get("Name"), str, "RestartPolicy.Name", "") or "no"
    if rname not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidArgument(f"invalid restart policy {rname!r}")
    rmax = _t(restart.get("MaximumRetryCount"), int, "RestartPolicy.MaximumRetryCount", 0)
    auto_remove = bool(_t(hc.get("AutoRemove"), bool, "HostConfig.AutoRemove", False))
    if auto_remove and rname != "no":
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    net = _t(hc.get("NetworkMode"), str, "HostConfig.NetworkMode", "") or "bridge"
    if net == "default":
        net = "bridge"
    tmpfs = _strmap(hc.get("Tmpfs"), "HostConfig.Tmpfs")
    res = Resources(
        memory=_t(hc.get("Memory"), int, "Memory", 0), memory_swap=_t(hc.get("MemorySwap"), int, "MemorySwap", 0),
        memory_reservation=_t(hc.get("MemoryReservation"), int, "MemoryReservation", 0),
        nano_cpus=_t(hc.get("NanoCpus"), int, "NanoCpus", 0), cpu_shares=_t(hc.get("CpuShares"), int, "CpuShares", 0),
        cpu_period=_t(hc.get("CpuPeriod"), int, "CpuPeriod", 0), cpu_quota=_t(hc.get("CpuQuota"), int, "CpuQuota", 0),
        cpuset_cpus=_t(hc.get("CpusetCpus"), str, "CpusetCpus", ""),
        cpuset_mems=_t(hc.get("CpusetMems"), str, "CpusetMems", ""),
        pids_limit=max(_t(hc.get("PidsLimit"), int, "PidsLimit", 0), 0),
        oom_kill_disable=bool(_t(hc.get("OomKillDisable"), bool, "OomKillDisable", False)))
    if res.memory and 0 < res.memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    ulimits = []
    for u in _t(hc.get("Ulimits"), list, "HostConfig.Ulimits", []):
        u = _t(u, dict, "HostConfig.Ulimits[]", {})
        ulimits.append({"Name": _t(u.get("Name"), str, "Ulimit.Name", ""), "Soft": _t(u.get("Soft"), int, "Soft", 0),
                        "Hard": _t(u.get("Hard"), int, "Hard", 0)})
    ports = _ports(_t(hc.get("PortBindings"), dict, "HostConfig.PortBindings", {}))
    aliases: dict[str, list[str]] = {}
    ncfg = _t(body.get("NetworkingConfig"), dict, "NetworkingConfig", {})
    for nname, ep_cfg in _t(ncfg.get("EndpointsConfig"), dict, "EndpointsConfig", {}).items():
        ep_cfg = _t(ep_cfg, dict, f"EndpointsConfig.{nname}", {})
        aliases[nname] = _strs(ep_cfg.get("Aliases"), "Aliases")
    my_aliases = aliases.get(net, [])
    spec = ContainerSpec(
        image=image, cmd=None if cmd is None else _strs(cmd, "Cmd"),
        entrypoint=None if ep is None else _strs(ep, "Entrypoint"),
        env=_strs(body.get("Env"), "Env"), workdir=_t(body.get("WorkingDir"), str, "WorkingDir", ""),
        user=_t(body.get("User"), str, "User", ""), hostname=_t(body.get("Hostname"), str, "Hostname", ""),
        domainname=_t(body.get("Domainname"), str, "Domainname", ""), labels=_strmap(body.get("Labels"), "Labels"),
        tty=bool(_t(body.get("Tty"), bool, "Tty", False)),
        open_stdin=bool(_t(body.get("OpenStdin"), bool, "OpenStdin", False)), auto_remove=auto_remove,
        read_only=bool(_t(hc.get("ReadonlyRootfs"), bool, "ReadonlyRootfs", False)),
        privileged=bool(_t(hc.get("Privileged"), bool, "Privileged", False)),
        init=bool(_t(hc.get("Init"), bool, "Init", False)),
        cap_add=_strs(hc.get("CapAdd"), "CapAdd"), cap_drop=_strs(hc.get("CapDrop"), "CapDrop"),
        security_opt=_strs(hc.get("SecurityOpt"), "SecurityOpt"), ulimits=ulimits,
        shm_size=_t(hc.get("ShmSize"), int, "ShmSize", 0) or 64 * 1024 * 1024, tmpfs=tmpfs,
        extra_hosts=_strs(hc.get("ExtraHosts"), "ExtraHosts"), dns=_strs(hc.get("Dns"), "Dns"), network_mode=net,
        ports=ports, publish_all=bool(_t(hc.get("PublishAllPorts"), bool, "PublishAllPorts", False)),
        aliases=my_aliases, mac_address=_t(body.get("MacAddress"), str, "MacAddress", ""),
        stop_signal=_t(body.get("StopSignal"), str, "StopSignal", ""),
        stop_timeout=_t(body.get("StopTimeout"), int, "StopTimeout", None),
        restart=RestartPolicy(name=rname, maximum_retry_count=rmax), resources=res,
        runtime=_t(hc.get("Runtime"), str, "Runtime", "") or "dockyard",
        sysctls=_strmap(hc.get("Sysctls"), "Sysctls"),
        userns=_userns(hc.get("UsernsMode")))
    if spec.workdir and not spec.workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{spec.workdir}' is invalid, it needs to be an absolute path")
    spec.mounts = _mounts(_strs(hc.get("Binds"), "Binds"), _t(hc.get("Mounts"), list, "Mounts", []),
                          _strs(hc.get("VolumesFrom"), "VolumesFrom"), tmpfs)
    return spec, aliases


def _ports(bindings: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, hosts in bindings.items():
        port, _, proto = key.partition("/")
        proto = proto or "tcp"
        if not port.isdigit() or not 0 < int(port) < 65536 or proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid port specification: {key!r}")
        for h in _t(hosts, list, f"PortBindings[{key}]", []) or [{}]:
            h = _t(h, dict, f"PortBindings[{key}][]", {})
            hp = _t(h.get("HostPort"), str, "HostPort", "")
            if hp and (not hp.isdigit() or not 0 <= int(hp) < 65536):
                raise InvalidArgument(f"invalid host port {hp!r}")
            out.append({"host_ip": _t(h.get("HostIp"), str, "HostIp", ""), "host_port": int(hp or 0),
                        "container_port": int(port), "proto": proto})
    return out


def _mounts(binds: list[str], mounts: list[Any], volumes_from: list[str], tmpfs: dict[str, str]) -> list[Any]:
    """-v (Binds) and --mount (Mounts) in the engine's mount syntax: each ``Mounts`` object written as the
    ``--mount`` CSV the engine parses (the one parser of mount options)."""
    if not (binds or mounts or volumes_from):
        return []
    csv = []
    for m in mounts:
        m = _t(m, dict, "HostConfig.Mounts[]", {})
        typ = _t(m.get("Type"), str, "Mount.Type", "volume")
        parts = [f"type={typ}"]
        src = _t(m.get("Source"), str, "Mount.Source", "")
        if src:
            parts.append(f"source={src}")
        parts.append(f"target={_t(m.get('Target'), str, 'Mount.Target', '')}")
        if _t(m.get("ReadOnly"), bool, "Mount.ReadOnly", False):
            parts.append("readonly")
        bo = _t(m.get("BindOptions"), dict, "Mount.BindOptions", {})
        if bo.get("Propagation"):
            parts.append(f"bind-propagation={_t(bo['Propagation'], str, 'Propagation', '')}")
        vo = _t(m.get("VolumeOptions"), dict, "Mount.VolumeOptions", {})
        if vo.get("NoCopy"):
            parts.append("volume-nocopy")
        for k, v in _strmap(vo.get("Labels"), "VolumeOptions.Labels").items():
            parts.append(f"volume-label={k}={v}")
        to = _t(m.get("TmpfsOptions"), dict, "Mount.TmpfsOptions", {})
        if to.get("SizeBytes"):
            parts.append(f"tmpfs-size={_t(to['SizeBytes'], int, 'SizeBytes', 0)}")
        if to.get("Mode"):
            parts.append(f"tmpfs-mode={_t(to['Mode'], int, 'Mode', 0):o}")
        for p in parts:
            if "," in p or '"' in p:
                raise InvalidArgument(f"invalid mount field {p!r}")
        csv.append(",".join(parts))
    from dockyard.engine.local import parse_mounts  # the one parser of -v/--mount, as the CLI's

    return parse_mounts(binds, csv, volumes_from, list(tmpfs))
