"""Typed results of the container verbs: what the engine hands to its edges (``cli/``, ``api/``).

Small classes with ``__slots__`` rather than dataclasses: importing ``dataclasses`` costs more than the rest of
``dockyard run``'s start-up (see ``engine.options``). Fields are plain values in the engine's vocabulary
(seconds since the epoch as floats, byte counts as ints); Docker's PascalCase JSON is built by ``engine.view``
(inspect, which both edges print or return as is) or by the edge itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.errors import DockyardError


class _Slots:
    __slots__: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kw: Any) -> None:
        for k, v in zip(self.__slots__, args):
            setattr(self, k, v)
        for k, v in kw.items():
            setattr(self, k, v)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k, None)!r}' for k in self.__slots__)})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, k, None) == getattr(other, k, None)
                                                 for k in self.__slots__)


class Outcome(_Slots):
    """One container of a multi-container verb (stop a b c): ``ref`` as given, the verb's ``value`` (wait: the
    exit code) or the ``error`` it raised. The verb goes on past a failure, as Docker's."""

    __slots__ = ("ref", "value", "error")
    if TYPE_CHECKING:
        ref: str
        value: Any
        error: DockyardError | None

    def __init__(self, ref: str, value: Any = None, error: DockyardError | None = None) -> None:
        self.ref, self.value, self.error = ref, value, error


class PruneReport(_Slots):
    """``container prune``: the IDs removed and the bytes their writable layers held."""

    __slots__ = ("deleted", "space_reclaimed")
    if TYPE_CHECKING:
        deleted: list[str]
        space_reclaimed: int

    def __init__(self, deleted: list[str] | None = None, space_reclaimed: int = 0) -> None:
        self.deleted, self.space_reclaimed = deleted or [], space_reclaimed


class PortRow(_Slots):
    """A published (or exposed only: ``host_port`` 0) port of a listed container."""

    __slots__ = ("host_ip", "host_port", "container_port", "proto")
    if TYPE_CHECKING:
        host_ip: str
        host_port: int
        container_port: int
        proto: str


class ContainerRow(_Slots):
    """One container of ``ps`` / GET /containers/json. ``status`` is Docker's human text ("Up 3 seconds")."""

    __slots__ = ("id", "name", "image", "image_id", "command", "created", "state", "status", "exit_code",
                 "started", "finished", "labels", "network_mode", "ports", "ports_text", "mounts", "size_rw",
                 "size_root_fs", "health")
    if TYPE_CHECKING:
        id: str
        name: str
        image: str
        image_id: str
        command: list[str]
        created: float
        state: str
        status: str
        exit_code: int | None
        started: float | None
        finished: float | None
        labels: dict[str, str]
        network_mode: str
        ports: list[PortRow]
        ports_text: str
        mounts: list[str]
        size_rw: int | None
        size_root_fs: int | None


class LogEntry(_Slots):
    """One line of a container's log: ``stream`` stdout|stderr, ``time`` as logged (RFC 3339, nanoseconds),
    ``ts`` the same as seconds since the epoch, ``data`` the bytes the container wrote (with their newline)."""

    __slots__ = ("stream", "time", "ts", "data")
    if TYPE_CHECKING:
        stream: str
        time: str
        ts: float
        data: bytes


class StatsSample(_Slots):
    """One reading of a running container's resource use (cgroup figures and its network devices).
    ``cpu_percent`` is the rate since the previous sample of the same stream (0.0 on the first)."""

    __slots__ = ("id", "name", "read", "cpu_ns", "cpu_percent", "mem_usage", "mem_cache", "mem_limit", "mem_max",
                 "pids", "pids_limit", "net_rx", "net_tx", "blk_read", "blk_write", "running")
    if TYPE_CHECKING:
        id: str
        name: str
        read: float
        cpu_ns: int
        cpu_percent: float
        mem_usage: int
        mem_cache: int
        mem_limit: int
        mem_max: int
        pids: int
        pids_limit: int | None
        net_rx: int
        net_tx: int
        blk_read: int
        blk_write: int
        running: bool


class TopResult(_Slots):
    """``top``: column titles and one row of strings per process (Docker's ``Titles``/``Processes``)."""

    __slots__ = ("titles", "processes")
    if TYPE_CHECKING:
        titles: list[str]
        processes: list[list[str]]


class Change(_Slots):
    """``diff``: ``kind`` 0 modified, 1 added, 2 deleted (Docker's numbers); ``letter`` C/A/D."""

    __slots__ = ("kind", "path")
    if TYPE_CHECKING:
        kind: int
        path: str

    @property
    def letter(self) -> str:
        return "CAD"[self.kind]


class PathStat(_Slots):
    """``archive stat`` (HEAD .../archive): what a path inside a container is, as Docker's X-Docker-Container-
    Path-Stat header. ``mode`` is Go's os.FileMode bits as Docker sends them."""

    __slots__ = ("name", "size", "mode", "mtime", "link_target")
    if TYPE_CHECKING:
        name: str
        size: int
        mode: int
        mtime: float
        link_target: str
