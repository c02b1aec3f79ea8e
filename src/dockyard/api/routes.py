"""Routing, version negotiation and the system endpoints (/_ping, /version, /info).

A route is ``(method, pattern, handler)``; patterns name their parameters (``{id}``). Handlers are sync functions
``handler(api, req, **params)`` run in a worker thread, returning a ``server.Reply``/``StreamReply`` or plain
JSON-able data (200), or coroutines (``async def``) for the hijacking routes. Any exception a handler raises
becomes a response in ``server.error_reply`` (the one place).

Versions: unversioned paths and ``/v1.NN/...`` with 1.24 <= NN <= 1.45; the response's ``Api-Version`` is the
highest one served, as dockerd's, and clients negotiate down from /_ping.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from dockyard import jsonc as json
from dockyard.api.server import MAX_VERSION, MIN_VERSION, Reply, Request, StreamReply, error_reply
from dockyard.errors import InvalidArgument, NotFound

_VERSION = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Any]] = []

    def add(self, method: str, pattern: str, handler: Any) -> None:
        # {name*} takes slashes (image names: library/busybox); the route's literal tail anchors it
        rx = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)) + "$"
        self.routes.append((method, re.compile(rx), handler))

    def find(self, method: str, path: str) -> tuple[Any, dict[str, str]]:
        allowed = False
        for m, rx, h in self.routes:
            mt = rx.match(path)
            if mt is None:
                continue
            if m == method or (method == "HEAD" and m == "GET"):
                return h, mt.groupdict()
            allowed = True
        if allowed:
            raise _MethodNotAllowed(f"{method} not allowed on {path}")
        raise NotFound(f"page not found: {path}")


class _MethodNotAllowed(InvalidArgument):
    http_status = 405


def _version_ok(major: int, minor: int) -> None:
    have = (major, minor)
    lo = tuple(int(x) for x in MIN_VERSION.split("."))
    hi = tuple(int(x) for x in MAX_VERSION.split("."))
    if have < lo:
        raise InvalidArgument(f"client version {major}.{minor} is too old. Minimum supported API version is "
                              f"{MIN_VERSION}, please upgrade your client to a newer version")
    if have > hi:
        raise InvalidArgument(f"client version {major}.{minor} is too new. Maximum supported API version is "
                              f"{MAX_VERSION}")


def make_dispatch(api: Any, router: Router) -> Any:
    async def dispatch(req: Request) -> Any:
        try:
            m = _VERSION.match(req.raw_path)
            if m:
                _version_ok(int(m.group(1)), int(m.group(2)))
                req.version = f"{m.group(1)}.{m.group(2)}"
                req.path = m.group(3)
            else:
                req.version = MAX_VERSION
            handler, params = router.find(req.method, req.path)
            if asyncio.iscoroutinefunction(handler):
                out = await handler(api, req, **params)
            else:
                out = await asyncio.to_thread(handler, api, req, **params)
            return as_reply(out)
        except Exception as e:  # noqa: BLE001 - mapped in one place
            if api.debug:
                import traceback

                traceback.print_exc()
            return error_reply(e)
    return dispatch


def as_reply(out: Any) -> Any:
    from dockyard.api.server import Hijack

    if isinstance(out, (Reply, StreamReply, Hijack)):
        return out
    if out is None:
        return Reply(204)
    return Reply(200, json.dumps(out).encode())


def created(obj: Any) -> Reply:
    return Reply(201, json.dumps(obj).encode())


# ---- system --------------------------------------------------------------------------------------------
def ping(api: Any, req: Request) -> Reply:
    hs = [("Builder-Version", "1"), ("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")]
    return Reply(200, b"OK", "text/plain; charset=utf-8", hs)


def _system() -> Any:
    try:
        from dockyard.engine import system  # R2's system verbs (info, version, df), when present
    except ImportError:
        return None
    return system


def version(api: Any, req: Request) -> Any:
    # engine.system.version has these fields; the API answers them in Docker's shape
    return _version_fallback()  # engine.system.version's fields are these, in Docker's shape


def _version_fallback() -> dict[str, Any]:
    import os
    import platform

    from dockyard import __version__

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {"Platform": {"Name": "dockyard"}, "Version": __version__, "ApiVersion": MAX_VERSION,
            "MinAPIVersion": MIN_VERSION, "GitCommit": "", "GoVersion": "python" + platform.python_version(),
            "Os": "linux", "Arch": arch, "KernelVersion": os.uname().release, "BuildTime": "",
            "Components": [{"Name": "Engine", "Version": __version__,
                            "Details": {"ApiVersion": MAX_VERSION, "MinAPIVersion": MIN_VERSION, "Os": "linux",
                                        "Arch": arch, "KernelVersion": os.uname().release}}]}


def info(api: Any, req: Request) -> Any:
    system = _system()
    if system is not None and hasattr(system, "info"):
        i = system.info(api.store)
        d = {"Containers": i.containers, "ContainersRunning": i.containers_running,
             "ContainersPaused": i.containers_paused, "ContainersStopped": i.containers_stopped,
             "Images": i.images, "ServerVersion": i.server_version, "Driver": i.storage_driver,
             "DriverStatus": i.driver_status,
             "LoggingDriver": i.logging_driver, "CgroupVersion": i.cgroup_version,
             "Runtimes": {r: {"path": r} for r in i.runtimes}, "DefaultRuntime": i.default_runtime,
             "KernelVersion": i.kernel_version, "OperatingSystem": i.operating_system, "OSType": i.os_type,
             "Architecture": i.architecture, "NCPU": i.cpus, "MemTotal": i.mem_total, "DockerRootDir": i.root}
    else:
        from dockyard.engine.containers import ContainerStore

        cs = ContainerStore(api.store).list()
        d = {"Containers": len(cs), "ContainersRunning": sum(c.state == "running" for c in cs),
             "ContainersPaused": sum(c.state == "paused" for c in cs),
             "ContainersStopped": sum(c.state in ("exited", "created", "dead") for c in cs)}
    return _info_fields(api, d)


def _info_fields(api: Any, d: dict[str, Any]) -> dict[str, Any]:
    """The fields the docker CLI's ``info`` reads, filled from the engine's report where it has them."""
    import os
    import platform

    from dockyard import __version__

    arch = platform.machine()
    base: dict[str, Any] = {
        "ID": "", "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0,
        "Images": 0, "Driver": "overlay", "DriverStatus": [], "Plugins": {"Volume": ["local"],
                                                                          "Network": ["bridge", "host", "null"],
                                                                          "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True,
        "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True, "Debug": False, "NFd": 0,
        "OomKillDisable": True, "NGoroutines": 0, "SystemTime": _now(), "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs", "CgroupVersion": "2", "NEventsListener": 0,
        "KernelVersion": os.uname().release, "OperatingSystem": "Linux", "OSVersion": "", "OSType": "linux",
        "Architecture": arch, "NCPU": os.cpu_count() or 1, "MemTotal": _memtotal(), "IndexServerAddress": "",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": [], "Mirrors": []},
        "GenericResources": None, "DockerRootDir": api.store.root, "HttpProxy": "", "HttpsProxy": "",
        "NoProxy": "", "Name": os.uname().nodename, "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__, "Runtimes": {"dockyard": {"path": "dockyard"}, "runc": {"path": "runc"},
                                                    "crun": {"path": "crun"}},
        "DefaultRuntime": "dockyard", "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False,
                                                 "NodeID": "", "NodeAddr": "", "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "", "SecurityOptions": ["name=seccomp,"
                                                                                           "profile=builtin"],
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""}, "Warnings": None,
    }
    base.update({k: v for k, v in d.items() if k in base or k[:1].isupper()})
    return base


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _memtotal() -> int:
    try:
        with open("/proc/meminfo") as f:
            for ln in f:
                if ln.startswith("MemTotal:"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        pass
    return 0


def events(api: Any, req: Request) -> StreamReply:
    """GET /events: the engine's persisted events log (since/until, filters), then new events as they come."""
    from dockyard.api.objects import _fdict
    from dockyard.engine import events as ev
    from dockyard.timeparse import parse_time

    def t(name: str) -> float:
        v = req.arg(name)
        if not v:
            return 0.0
        x = parse_time(v)
        if x is None:
            raise InvalidArgument(f"invalid value for {name}: {v!r} is not a time")
        return x

    since, until = t("since"), t("until")
    ev.check_window(since, until, req.arg("since"), req.arg("until"))
    flt = _fdict(req)
    ev.check_filters(flt)
    it = ev.follow(api.store, since, until, flt, heartbeat=True)

    def body() -> Any:
        yield b""
        for e in it:
            yield b"" if e is None else json.dumps(e.to_api()).encode() + b"\n"

    return StreamReply(body())


def build_router() -> Router:
    r = Router()
    r.add("GET", "/_ping", ping)
    r.add("GET", "/events", events)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)
    from dockyard.api import containers, execs, files, objects

    containers.register(r)
    files.register(r)
    execs.register(r)
    objects.register(r)
    return r


__all__ = ["Router", "make_dispatch", "build_router", "created", "StreamReply", "Reply"]
