"""Plain data that crosses from the edges (CLI, API) into the engine.

``ContainerSpec`` holds what ``docker create``/``docker run`` flags say, in Docker's vocabulary, before the image is
consulted. It is stored as JSON in the ``containers`` table, so every field must be JSON-friendly, and its
``to_json``/``from_json`` round-trip. ``engine.specgen`` turns a ContainerSpec plus the image config into the OCI
runtime spec, in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Resources:
    memory: int = 0                 # bytes; 0 = unlimited
    memory_swap: int = 0            # bytes of memory+swap; -1 unlimited; 0 = Docker's default (2x memory)
    memory_reservation: int = 0
    nano_cpus: int = 0              # --cpus 1.5 -> 1_500_000_000
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int = 0             # 0 = unlimited
    oom_kill_disable: bool = False


@dataclass
class RestartPolicy:
    name: str = "no"                # no | on-failure | always | unless-stopped
    maximum_retry_count: int = 0


@dataclass
class MountSpec:
    type: str                       # bind | volume | tmpfs
    target: str
    source: str = ""
    readonly: bool = False
    options: list[str] = field(default_factory=list)   # propagation, tmpfs size/mode, ...


@dataclass
class ContainerSpec:
    image: str                      # what the user typed (shown by ps)
    cmd: list[str] | None = None    # None: the image's CMD
    entrypoint: list[str] | None = None   # None: the image's; [] = cleared (--entrypoint "")
    env: list[str] = field(default_factory=list)
    workdir: str = ""
    user: str = ""
    hostname: str = ""
    domainname: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    tty: bool = False
    open_stdin: bool = False
    auto_remove: bool = False
    read_only: bool = False
    privileged: bool = False
    init: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    ulimits: list[dict[str, Any]] = field(default_factory=list)   # {"Name","Soft","Hard"}
    shm_size: int = 64 * 1024 * 1024
    tmpfs: dict[str, str] = field(default_factory=dict)           # path -> options
    mounts: list[MountSpec] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)          # host:ip
    dns: list[str] = field(default_factory=list)
    network_mode: str = "none"
    stop_signal: str = ""
    stop_timeout: int | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    resources: Resources = field(default_factory=Resources)
    runtime: str = "dockyard"
    sysctls: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerSpec:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d["restart"] = RestartPolicy(**d.get("restart", {}))
        d["resources"] = Resources(**d.get("resources", {}))
        d["mounts"] = [MountSpec(**m) for m in d.get("mounts", [])]
        return cls(**d)
