"""/containers routes: each parses the request, calls the engine (``engine.local`` and friends), formats Docker's JSON.

Starting goes through ``engine.spawn.ProcessSpawner`` (a fresh process, never a fork of the service). ``attach``
before ``start`` (what ``docker run`` does) waits in the service until the start, which then starts the monitor
in attach mode so that no early output is lost; ``wait?condition=next-exit|removed`` registered before the start
likewise waits for it. Waiting for an exit is the monitor's EXIT frame on its attach socket, not polling.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dockyard import jsonc as json
from dockyard.api.server import Hijack, Reply, Request, StreamReply
from dockyard.errors import Conflict, InvalidArgument, NotFound


def _c(api: Any, ref: str) -> Any:
    from dockyard.engine.containers import ContainerStore

    return ContainerStore(api.store).get(ref)


def _iso(t: float | None) -> str:
    if not t:
        return "0001-01-01T00:00:00Z"
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


# ---- create / list / inspect ---------------------------------------------------------------------------------
def create(api: Any, req: Request) -> Reply:
    from dockyard.api.create import spec_from_body
    from dockyard.engine import local

    name = req.arg("name") or None
    platform = req.arg("platform")
    spec, _aliases = spec_from_body(req.json())
    check = getattr(local, "check_spec", None)
    if check is not None:
        check(spec)  # the engine's create-time checks (unknown network, published port taken...)
    c = local.create(api.store, spec, name, platform=platform)
    return Reply(201, json.dumps({"Id": c.id, "Warnings": c.warnings}).encode())


def _state(c: Any) -> dict[str, Any]:
    st = {"running": "running", "paused": "paused", "restarting": "restarting", "exited": "exited",
          "created": "created", "removing": "removing", "dead": "dead"}.get(c.state, c.state)
    return {"Status": st, "Running": c.state in ("running", "paused", "restarting"), "Paused": c.state == "paused",
            "Restarting": c.state == "restarting", "OOMKilled": bool(c.oom_killed), "Dead": c.state == "dead",
            "Pid": c.pid or 0, "ExitCode": c.exit_code or 0, "Error": c.error if c.error not in
            ("stopping", "stopped") else "", "StartedAt": _iso(c.started), "FinishedAt": _iso(c.finished)}


def _versioned(req: Request, d: dict[str, Any]) -> dict[str, Any]:
    """The inspect data as dockerd gives it to an older client: below API 1.45 a user-defined network's Aliases
    hold the short ID too (Compose 1.x reads it to know the container's endpoint is already set up), and
    DNSNames exists from 1.44 on."""
    if not req.before("1.45"):
        return d
    short = d["Id"][:12]
    for ep in ((d.get("NetworkSettings") or {}).get("Networks") or {}).values():
        if ep.get("DNSNames"):  # a user-defined network (the default bridge has no DNS names)
            ep["Aliases"] = [*(ep.get("Aliases") or []), *([short] if short not in (ep.get("Aliases") or []) else [])]
        if req.before("1.44"):
            ep.pop("DNSNames", None)
    return d


def inspect(api: Any, req: Request, id: str) -> Any:
    c = _c(api, id)
    try:
        from dockyard.engine import view  # the engine's inspect data (both edges print it as is)
    except ImportError:
        view = None
    if view is not None:
        return _versioned(req, view.inspect(api.store, c.id, size=req.flag("size")))
    s = c.spec
    return {"Id": c.id, "Name": "/" + c.name, "Created": _iso(c.created), "Image": c.image_id or "",
            "State": _state(c), "Path": (s.entrypoint or s.cmd or [""])[0],
            "Args": ((s.entrypoint or []) + (s.cmd or []))[1:], "RestartCount": c.restart_count,
            "Driver": "overlay", "Platform": "linux",
            "Config": {"Image": s.image, "Cmd": s.cmd, "Entrypoint": s.entrypoint or None, "Env": s.env,
                       "Tty": s.tty, "OpenStdin": s.open_stdin, "Labels": c.labels, "Hostname": s.hostname or
                       c.id[:12], "User": s.user, "WorkingDir": s.workdir, "AttachStdin": False,
                       "AttachStdout": False, "AttachStderr": False},
            "HostConfig": {"AutoRemove": s.auto_remove, "NetworkMode": s.network_mode,
                           "RestartPolicy": {"Name": s.restart.name,
                                             "MaximumRetryCount": s.restart.maximum_retry_count},
                           "Privileged": s.privileged, "Runtime": s.runtime, "ReadonlyRootfs": s.read_only},
            "Mounts": [], "NetworkSettings": {"Networks": {}, "Ports": {}}}


def list_(api: Any, req: Request) -> Any:
    from dockyard.engine import filters as f

    limit = req.int_arg("limit") or -1
    rows = f.list_containers(api.store, all=req.flag("all"), filters=_filters(req), size=req.flag("size"),
                             last=limit if limit > 0 else -1)
    return [_row_json(r, req.flag("size")) for r in rows]


def _row_json(r: Any, size: bool = False) -> dict[str, Any]:
    """Docker's ContainerSummary: Command one string, Names with their "/", Status the human text."""
    d: dict[str, Any] = {
        "Id": r.id, "Names": ["/" + r.name], "Image": r.image, "ImageID": r.image_id,
        "Command": " ".join(r.command), "Created": int(r.created or 0),
        "Ports": [{"PrivatePort": p.container_port, "Type": p.proto,
                   **({"IP": p.host_ip, "PublicPort": p.host_port} if p.host_port else {})} for p in r.ports],
        "Labels": r.labels, "State": r.state, "Status": r.status,
        "HostConfig": {"NetworkMode": r.network_mode or "default"},
        "NetworkSettings": {"Networks": {r.network_mode: {}} if r.network_mode else {}},
        "Mounts": [{"Source": m, "Destination": m} for m in r.mounts]}
    if size:
        d["SizeRw"], d["SizeRootFs"] = r.size_rw or 0, r.size_root_fs or 0
    return d


def _filters(req: Request) -> list[tuple[str, str]]:
    """Docker's ``filters`` query: JSON ``{"key": ["v", ...]}`` (or the old ``{"key": {"v": true}}``)."""
    raw = req.arg("filters")
    if not raw:
        return []
    try:
        d = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid filter: {raw!r} is not JSON") from None
    if not isinstance(d, dict):
        raise InvalidArgument("invalid filter: want a JSON object")
    out = []
    for k, v in d.items():
        vals = list(v.keys()) if isinstance(v, dict) else v
        if not isinstance(vals, list) or not all(isinstance(x, str) for x in vals):
            raise InvalidArgument(f"invalid filter {k!r}: want a list of strings")
        out += [(k, x) for x in vals]
    return out


# ---- life cycle ----------------------------------------------------------------------------------------------
def _start(api: Any, c: Any) -> None:
    from dockyard.engine import local
    from dockyard.engine.spawn import ProcessSpawner

    c.can_start()
    if c.running:
        return
    with api.lock:
        pending = api.pending_attach.pop(c.id, [])
    local.start(api.store, c, wait_attach=bool(pending), spawner=ProcessSpawner(api.root))
    with api.lock:  # after the start: a next-exit waiter that registered while it ran is told too
        waiters = api.started.pop(c.id, [])
    for i, (fut, loop) in enumerate(pending + waiters):  # the first attached client sends START
        loop.call_soon_threadsafe(lambda f=fut, v=(i == 0 and bool(pending)): f.done() or f.set_result(v))


def start(api: Any, req: Request, id: str) -> Reply:
    c = _c(api, id)
    if c.running:
        return Reply(304)
    _start(api, c)
    return Reply(204)


def stop(api: Any, req: Request, id: str) -> Reply:
    from dockyard.engine import local

    c = _c(api, id)
    if not c.running:
        return Reply(304)
    sig = _signal(req.arg("signal")) if req.arg("signal") else None
    local.stop(api.store, c, timeout=req.int_arg("t"), sig=sig)
    return Reply(204)


def _signal(v: str) -> int:
    from dockyard.engine import local

    parse = getattr(local, "parse_signal", None)
    if parse is not None:
        return int(parse(v))
    from dockyard.engine.specgen import parse_signal

    return int(parse_signal(v))


def kill(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import local

    c = _c(api, id)
    local.kill(api.store, c, _signal(req.arg("signal", "KILL")))


def restart(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import local

    c = _c(api, id)
    if c.running:
        local.stop(api.store, c, timeout=req.int_arg("t"))
    _start(api, _c(api, c.id))


def pause(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import local

    local.pause(api.store, _c(api, id))


def unpause(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import local

    local.unpause(api.store, _c(api, id))


def rename(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import local

    new = req.arg("name")
    if not new:
        raise InvalidArgument("rename: the new name is required (name=...)")
    local.rename(api.store, _c(api, id), new)


def remove(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import local

    local.remove(api.store, _c(api, id), force=req.flag("force"), volumes=req.flag("v"))


def prune(api: Any, req: Request) -> Any:
    from dockyard.engine import local

    rep = local.prune(api.store, _filters(req))
    return {"ContainersDeleted": rep.deleted or None, "SpaceReclaimed": rep.space_reclaimed}


def resize(api: Any, req: Request, id: str) -> None:
    from dockyard.api import streams

    c = _c(api, id)
    h, w = req.int_arg("h", 0), req.int_arg("w", 0)
    if not c.running:
        raise Conflict(f"Container {c.id} is not running")
    streams.resize(c.id, int(h or 0), int(w or 0))


# ---- wait / attach -------------------------------------------------------------------------------------------
async def wait(api: Any, req: Request, id: str) -> StreamReply:
    cond = req.arg("condition", "not-running")
    if cond not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {cond!r}")
    c = await asyncio.to_thread(_c, api, id)
    fut = None
    if cond == "next-exit" and not c.running and c.state in ("created", "exited"):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with api.lock:
            api.started.setdefault(c.id, []).append((fut, loop))
        now = await asyncio.to_thread(_c, api, id)
        if (now.started != c.started or now.running) and not fut.done():
            fut.set_result(True)  # started between the first read and the registration: that start counts

    def body() -> Any:
        yield b""  # the head goes out now: docker run starts the container only once it has it
        if cond == "removed":  # on the events log: the exit (die's exitCode) and then the removal
            code = _until_removed(api, c)
        else:
            code = _wait_blocking(api, c, cond, fut)
        yield json.dumps({"StatusCode": code, "Error": None}).encode()

    return StreamReply(body())


def _wait_blocking(api: Any, c: Any, cond: str, fut: Any) -> int:
    from dockyard.api import streams

    if fut is not None:
        import concurrent.futures

        cf: concurrent.futures.Future[Any] = concurrent.futures.Future()
        fut.add_done_callback(lambda f: cf.set_result(True))
        cf.result()
    code = streams.wait_exit(c.id)
    try:
        c2 = _c(api, c.id)
    except NotFound:
        return code if code is not None else (c.exit_code or 0)
    if code is None:  # no monitor: the row has the status
        code = c2.exit_code or 0
    return code


def _until_removed(api: Any, c: Any) -> int:
    """Block until the container's row is gone, on the events log (whoever removes it, this service or the CLI):
    ``die`` gives the exit code, ``destroy`` ends the wait. The row is checked again once the log is being
    followed and every few seconds in case an event could not be written."""
    from dockyard.engine import events

    code = c.exit_code or 0

    def gone() -> bool:
        nonlocal code
        try:
            code = _c(api, c.id).exit_code or 0
        except NotFound:
            return True
        return False

    idle = 0
    # the first item comes once the follower has taken the log's end: a removal from then on is seen
    for e in events.follow(api.store, filters={"container": [c.id], "event": ["die", "destroy"]}, heartbeat=True):
        if e is not None and e.action == "die":
            code = int(e.attributes.get("exitCode", code) or 0)
        elif e is not None:
            return code
        else:
            idle += 1
            if idle % 25 == 1 and gone():
                return code
    return code


async def attach(api: Any, req: Request, id: str) -> Hijack:
    from dockyard.api import streams

    c = await asyncio.to_thread(_c, api, id)
    if c.state == "paused":
        raise Conflict(f"You cannot attach to a paused container {c.id}, unpause it first")
    if not req.flag("stream") and not req.flag("logs"):
        raise InvalidArgument("attach: stream or logs must be set")
    opts = dict(stdin=req.flag("stdin"), stdout=req.flag("stdout"), stderr=req.flag("stderr"), tty=c.spec.tty)
    fut = None
    if not c.running:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with api.lock:
            api.pending_attach.setdefault(c.id, []).append((fut, loop))
    ctype = "application/vnd.docker.raw-stream" if c.spec.tty else "application/vnd.docker.multiplexed-stream"

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        start = False
        if fut is not None:
            start = bool(await fut)
        await streams.relay(c.id, reader, writer, start=start, **opts)

    return Hijack(run, ctype)


# ---- logs ----------------------------------------------------------------------------------------------------
def _time_arg(req: Request, name: str) -> float:
    from dockyard.timeparse import parse_time

    v = req.arg(name)
    if not v or v == "0":
        return 0.0
    t = parse_time(v)
    if t is None:
        raise InvalidArgument(f"invalid value for {name}: {v!r} is not a time")
    return t


def logs(api: Any, req: Request, id: str) -> StreamReply:
    """GET /containers/{id}/logs on ``engine.logs.logs``: 8-byte multiplexed frames, raw bytes with a TTY."""
    from dockyard.engine import attach as proto
    from dockyard.engine import logs as elogs

    c = _c(api, id)
    stdout, stderr = req.flag("stdout"), req.flag("stderr")
    if not (stdout or stderr):
        raise InvalidArgument("You must choose at least one stream")
    t = req.arg("tail", "all")
    if t in ("all", ""):
        tail = -1
    elif t.lstrip("-").isdigit():
        tail = max(int(t), -1)
    else:
        raise InvalidArgument(f"invalid value for tail: {t!r}")
    follow = req.flag("follow")
    entries = elogs.logs(api.store, c.id, follow=follow, since=_time_arg(req, "since"),
                         until=_time_arg(req, "until"), tail=tail, heartbeat=follow)
    ts = req.flag("timestamps")
    tty = c.spec.tty

    def body() -> Any:
        yield b""  # the head goes out at once (docker logs -f waits for it)
        for e in entries:
            if e is None:
                yield b""  # a heartbeat while following: a gone client stops the stream here
                continue
            if (e.stream == "stderr" and not stderr) or (e.stream != "stderr" and not stdout):
                continue
            data = e.data if not ts else e.time.encode() + b" " + e.data
            yield data if tty else proto.frame(2 if e.stream == "stderr" else 1, data)

    return StreamReply(body(), "application/vnd.docker.raw-stream" if tty
                       else "application/vnd.docker.multiplexed-stream")


def register(r: Any) -> None:
    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", list_)
    r.add("POST", "/containers/prune", prune)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/wait", wait)
    r.add("POST", "/containers/{id}/attach", attach)
    r.add("POST", "/containers/{id}/resize", resize)
    r.add("GET", "/containers/{id}/logs", logs)
    r.add("DELETE", "/containers/{id}", remove)
