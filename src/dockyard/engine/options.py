"""Plain data that crosses from the edges (CLI, API) into the engine.

``ContainerSpec`` holds what ``docker create``/``docker run`` flags say, in Docker's vocabulary, before the image is
consulted. It is stored as JSON in the ``containers`` table, so every field is JSON-friendly, and ``to_json`` /
``from_json`` round-trip. ``engine.specgen`` turns a ContainerSpec plus the image config into the OCI runtime spec.

These are small hand-written records rather than dataclasses: importing ``dataclasses`` (and ``inspect`` with it)
costs more than the rest of ``dockyard run``'s start-up.
"""

from __future__ import annotations

from dockyard.jsonc import copied

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Record:
    """Fields and their defaults are the class's ``FIELDS``; nested records are named in ``NESTED``."""

    FIELDS: dict[str, Any] = {}
    NESTED: dict[str, type[Record]] = {}
    LISTS: dict[str, type[Record]] = {}

    def __init__(self, **kw: Any) -> None:
        for k in kw:
            if k not in self.FIELDS:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument '{k}'")
        for k, default in self.FIELDS.items():
            if k in kw:
                v = kw[k]
            elif k in self.NESTED:
                v = self.NESTED[k]()
            else:
                v = type(default)(default) if isinstance(default, (list, dict)) else default
            setattr(self, k, v)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in self.FIELDS:
            v = getattr(self, k)
            if k in self.NESTED:
                v = v.to_json()
            elif k in self.LISTS:
                v = [x.to_json() for x in v]
            elif isinstance(v, (list, dict)):
                v = copied(v)
            out[k] = v
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Any:
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k not in cls.FIELDS:
                continue  # written by a newer dockyard: ignore
            if k in cls.NESTED:
                v = cls.NESTED[k].from_json(v or {})
            elif k in cls.LISTS:
                v = [cls.LISTS[k].from_json(x) for x in v or []]
            kw[k] = v
        return cls(**kw)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_json() == other.to_json()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.FIELDS)})"


class Resources(Record):
    FIELDS = {
        "memory": 0,                # bytes; 0 = unlimited
        "memory_swap": 0,           # bytes of memory+swap; -1 unlimited; 0 = Docker's default (2x memory)
        "memory_reservation": 0,
        "nano_cpus": 0,             # --cpus 1.5 -> 1_500_000_000
        "cpu_shares": 0,
        "cpu_period": 0,
        "cpu_quota": 0,
        "cpuset_cpus": "",
        "cpuset_mems": "",
        "pids_limit": 0,            # 0 = unlimited
        "oom_kill_disable": False,
    }


class RestartPolicy(Record):
    FIELDS = {"name": "no", "maximum_retry_count": 0}  # no | on-failure | always | unless-stopped


class MountSpec(Record):
    FIELDS = {
        "type": "bind",             # bind | volume | tmpfs; "volumes-from" (source = container) until create
        "target": "",
        "source": "",               # host path (bind), volume name (volume; "" = a new anonymous one)
        "readonly": False,
        "options": [],              # propagation, tmpfs size/mode, ...
        "mode": "",                 # the -v mode as given (inspect's Mode), or ro/rw of --volumes-from
        "nocopy": False,            # volume: no copy-up of the image's files
        "volume_driver": "",        # volume: when created on first use
        "volume_options": {},
        "volume_labels": {},
    }


class ContainerSpec(Record):
    FIELDS = {
        "image": "",                # what the user typed (shown by ps)
        "cmd": None,                # None: the image's CMD
        "entrypoint": None,         # None: the image's; [] = cleared (--entrypoint "")
        "env": [],
        "workdir": "",
        "user": "",
        "hostname": "",
        "domainname": "",
        "labels": {},
        "tty": False,
        "open_stdin": False,
        "auto_remove": False,
        "read_only": False,
        "privileged": False,
        "init": False,
        "cap_add": [],
        "cap_drop": [],
        "security_opt": [],
        "ulimits": [],              # {"Name","Soft","Hard"}
        "shm_size": 64 * 1024 * 1024,
        "tmpfs": {},                # path -> options
        "mounts": [],               # MountSpec
        "extra_hosts": [],          # host:ip
        "dns": [],
        "network_mode": "none",
        "ports": [],                # -p: {"host_ip", "host_port" (0 = any free), "container_port", "proto"}
        "publish_all": False,       # -P
        "aliases": [],              # --network-alias
        "ip": "",                   # --ip
        "mac_address": "",          # --mac-address
        "stop_signal": "",
        "stop_timeout": None,
        "restart": None,            # RestartPolicy
        "resources": None,          # Resources
        "runtime": "dockyard",
        "sysctls": {},
        "healthcheck": None,        # Docker's Healthcheck {"Test", "Interval", "Timeout", "StartPeriod", "Retries"}
        "health_on_failure": "none",  # none | kill | restart | stop (Podman's --health-on-failure)
        "userns": "",               # --userns: "" / host (the engine's namespace), keep-id[:uid=N,gid=N] (rootless)
    }
    NESTED = {"restart": RestartPolicy, "resources": Resources}
    LISTS = {"mounts": MountSpec}

    if TYPE_CHECKING:  # attribute types, for readers and mypy
        image: str
        cmd: list[str] | None
        entrypoint: list[str] | None
        env: list[str]
        workdir: str
        user: str
        hostname: str
        domainname: str
        labels: dict[str, str]
        tty: bool
        open_stdin: bool
        auto_remove: bool
        read_only: bool
        privileged: bool
        init: bool
        cap_add: list[str]
        cap_drop: list[str]
        security_opt: list[str]
        ulimits: list[dict[str, Any]]
        shm_size: int
        tmpfs: dict[str, str]
        mounts: list[MountSpec]
        extra_hosts: list[str]
        dns: list[str]
        network_mode: str
        ports: list[dict[str, Any]]
        publish_all: bool
        aliases: list[str]
        ip: str
        mac_address: str
        stop_signal: str
        stop_timeout: int | None
        restart: RestartPolicy
        resources: Resources
        runtime: str
        sysctls: dict[str, str]
        healthcheck: dict[str, Any] | None
        health_on_failure: str
        userns: str
