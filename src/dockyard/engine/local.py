"""The engine interface, local implementation: every container verb of the CLI (and later the API) calls these.

Functions take a ``Store`` and plain options and return plain data; they never print. Container processes are
never children of the caller except for ``exec``: each started container belongs to its monitor
(``engine.monitor``), so killing any dockyard command leaves containers running.
"""

from __future__ import annotations

import os
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from dockyard.engine.records import Outcome, PruneReport

from dockyard.engine.containers import Container, ContainerStore, alive, remove_files
from dockyard.engine.options import ContainerSpec
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.ids import new_id, validate_name
from dockyard.state.db import Store


MIN_MEMORY = 6 * 1024 * 1024


def parse_ports(values: list[str]) -> list[dict[str, Any]]:
    """``-p`` values (``[ip:][hostport:]port[/proto]``, ranges) -> ``ContainerSpec.ports`` entries."""
    from dockyard.network.ports import parse

    return parse(values)


def parse_mounts(volumes: list[str], mounts: list[str], volumes_from: list[str] | None = None,
                 tmpfs: list[str] | None = None) -> list[Any]:
    """``-v``, ``--mount`` and ``--volumes-from`` values (Docker's syntax, also the API's ``Binds``) ->
    ``MountSpec``s; ``tmpfs`` paths are only checked against the targets."""
    if not (volumes or mounts or volumes_from):
        return []
    from dockyard.engine.options import MountSpec
    from dockyard.volumes.spec import parse_all

    return [MountSpec.from_json(m) for m in parse_all(volumes, mounts, volumes_from, tmpfs)]


def check_spec(spec: ContainerSpec) -> None:
    """Docker's create-time rules on the options alone (before the image or the store is consulted):
    --restart with --rm, --memory-swap without --memory, the minimum memory, ``container:`` without a name, a
    relative working directory. ``network_mode`` "default" becomes "bridge" (the host and none pseudo-networks
    and ``container:<ref>`` stay as given)."""
    if spec.auto_remove and spec.restart.name not in ("no", ""):
        raise InvalidArgument("Conflicting options: --restart and --rm")
    res = spec.resources
    if res.memory_swap and not res.memory and res.memory_swap != -1:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage.")
    if res.memory and 0 < res.memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if spec.network_mode in ("default", ""):
        spec.network_mode = "bridge"
    elif spec.network_mode.startswith("container:") and not spec.network_mode.partition(":")[2]:
        raise InvalidArgument("invalid container format container:<name|id>")
    if spec.workdir and not spec.workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{spec.workdir}' is invalid, it needs to be an absolute path")


def _ensure_runnable(config: dict) -> None:
    """A foreign architecture's image runs through qemu-user (binfmt_misc registered if it is not)."""
    from dockyard.runtime import binfmt

    arch = str(config.get("architecture") or "")
    if arch and arch not in binfmt.native_arches():
        binfmt.ensure_platform(f"{config.get('os') or 'linux'}/{arch}")


def create(store: Store, spec: ContainerSpec, name: str | None = None, platform: str = "") -> Container:
    """Record a new container in state ``created`` (Docker's ``create``); nothing runs yet. Every rule Docker
    applies at create is applied here, for every edge: ``check_spec``, the network checks (an unknown network,
    aliases or --ip on the default bridge, a host port already taken; not for ``none``), the security options,
    the image (``platform``, ``os/arch[/variant]``, must match the image's, as with Docker's ``--platform``)."""
    from dockyard.images.store import ImageStore

    from dockyard.engine import validate

    check_spec(spec)
    if spec.network_mode != "none":  # Docker's create-time network checks (unknown network, taken port)
        from dockyard.network.ports import check

        check(store, spec)

    spec.extra_hosts = validate.container_values(spec.hostname, spec.domainname, spec.extra_hosts, spec.dns)
    if spec.userns:
        validate.userns(spec.userns, "_DOCKYARD_ROOTLESS" in os.environ)
    if spec.security_opt:  # before anything exists; the capabilities (ctypes, cap tables) only when needed
        from dockyard.engine import security, specgen

        security.check(spec.security_opt, specgen.capabilities(spec), spec.privileged)
    img = ImageStore(store).resolve_image(spec.image, platform)  # an index: its variant for the platform
    _ensure_runnable(img.config)
    if platform:
        want = platform.lower().split("/")
        have = [str(img.config.get("os") or "linux"), str(img.config.get("architecture") or "")]
        if want[:2] != have:
            raise InvalidArgument(f"image with reference {spec.image} was found but its platform "
                                  f"({'/'.join(have)}) does not match the specified platform ({platform})")
    cfg = (img.config.get("config") or {})
    # Docker merges the image's command into the container's config at create time
    from dockyard.engine.specgen import check_sysctls, command

    command(spec, cfg)  # "no command specified"
    check_sysctls(spec)  # only namespaced sysctls (a host one would change the host)
    if spec.entrypoint is None:
        spec.entrypoint = list(cfg.get("Entrypoint") or [])
        if spec.cmd is None:
            spec.cmd = list(cfg.get("Cmd") or [])
    elif spec.cmd is None:
        spec.cmd = []
    if spec.healthcheck or spec.health_on_failure != "none" or cfg.get("Healthcheck"):  # off the plain run path
        from dockyard.engine import health

        health.check(spec.healthcheck, spec.health_on_failure)
        health.merge(spec, cfg.get("Healthcheck"))  # Docker merges the image's HEALTHCHECK at create
    if spec.stop_timeout is None and cfg.get("StopTimeout") is not None:
        spec.stop_timeout = int(cfg["StopTimeout"])
    labels = dict(cfg.get("Labels") or {})
    labels.update(spec.labels)
    if spec.mounts or cfg.get("Volumes"):  # volumes-from, volumes created on first use, anonymous volumes
        from dockyard.engine.options import MountSpec
        from dockyard.volumes.attach import resolve

        spec.mounts = [MountSpec.from_json(m) for m in resolve(
            store, [m.to_json() for m in spec.mounts], cfg.get("Volumes"), list(spec.tmpfs))]
    cs = ContainerStore(store)
    cid = new_id()
    auto_name = name is None
    if name is not None:
        validate_name(name.lstrip("/"))
        name = name.lstrip("/")
    from dockyard.engine.names import random_name

    for attempt in range(10):
        cname = name if name is not None else random_name(attempt)
        c = Container(id=cid, name=cname, image_id=img.id, image_ref=spec.image, state="created", spec=spec,
                      created=time.time(), labels=labels)
        try:
            os.makedirs(c.dir(store), mode=0o700)
            for sub in ("diff", "work", "rootfs"):
                os.mkdir(os.path.join(c.dir(store), sub), 0o755)
            from dockyard.engine import events
            from dockyard.network.ports import warnings

            cs.insert(c, lambda db: events.container(store, "create", c, db=db))  # one transaction

            c.warnings = warnings(spec)
            return c
        except Conflict:
            from dockyard.fsutil import rmtree

            rmtree(c.dir(store))
            if not auto_name:
                raise
    raise Conflict("could not find a free container name")


def start(store: Store, c: Container, wait_attach: bool = False, spawner: Any = None) -> dict[str, Any]:
    """Start a created or exited container under a new monitor (``spawner``: one forked earlier)."""
    from dockyard.engine import monitor

    c.can_start()
    if c.state in ("running", "restarting"):
        if spawner is not None:
            spawner.cancel()
        return {"pid": c.pid}
    if c.state != "created":  # an rm -f cut short may have left its word to the monitor
        from dockyard.engine.containers import removal_flag

        try:
            os.unlink(removal_flag(store.root, c.id))
        except FileNotFoundError:
            pass
    try:
        if spawner is not None:
            return spawner.launch(c.id, wait_attach)  # type: ignore[no-any-return]
        return monitor.spawn(store, c, wait_attach)
    except BaseException:
        if c.spec.auto_remove:  # --rm: a container that could not start is removed (Docker does)
            try:
                remove(store, ContainerStore(store).get(c.id), force=True, volumes=True)
            except DockyardError:
                pass
        raise


def _wait_state(store: Store, cid: str, done: Any, timeout: float) -> Container | None:
    cs = ContainerStore(store)
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            c = cs.get(cid)
        except NotFound:
            return None
        if done(c):
            return c
        if time.monotonic() >= deadline:
            return c
        time.sleep(delay)  # polling the store with a deadline; the monitor records the exit
        delay = min(delay * 2, 0.05)


def signal_container(c: Container, sig: int) -> None:
    if c.pid and alive(c.pid, c.pid_start):
        try:
            os.kill(c.pid, sig)
        except ProcessLookupError:
            pass


def stop(store: Store, c: Container, timeout: int | None = None, sig: int | None = None) -> None:
    """Docker's stop: the stop signal, then SIGKILL after ``timeout`` seconds (default 10)."""
    from dockyard.engine.specgen import stop_signal

    if not c.running:
        return
    cs = ContainerStore(store)
    if c.state == "restarting":  # between two runs: end the restart loop; the monitor's back-off then exits
        with store.write() as db:
            n = db.execute("UPDATE containers SET state='exited', error='stopped', finished=? WHERE id=? AND "
                           "state='restarting'", (time.time(), c.id)).rowcount
        if n:
            return
        c = cs.get(c.id)  # it was just relaunched: stop the new run
        if not c.running:
            return
    cs.update(c.id, error="stopping")  # tells the monitor not to apply the restart policy
    if c.state == "paused":
        unpause(store, c)
    import signal

    if sig is None:
        from dockyard.engine.rootfs import image_config

        try:
            sig = stop_signal(c.spec, image_config(store, c)[0])
        except NotFound:
            sig = int(signal.SIGTERM)
    t = timeout if timeout is not None else (c.spec.stop_timeout if c.spec.stop_timeout is not None else 10)
    from dockyard.engine import events

    events.container(store, "kill", c, {"signal": sig})
    signal_container(c, sig)
    c2 = _wait_state(store, c.id, lambda x: not x.running, max(t, 0))
    if c2 is not None and c2.running:
        events.container(store, "kill", c, {"signal": int(signal.SIGKILL)})
        signal_container(c2, signal.SIGKILL)
        _wait_state(store, c.id, lambda x: not x.running, 30)
    events.container(store, "stop", c)


FATAL_SIGNALS = {1, 2, 3, 6, 9, 15}  # HUP INT QUIT ABRT KILL TERM


def kill(store: Store, c: Container, sig: int = 9) -> None:
    """Docker's kill: a fatal signal (or the container's stop signal) disables the restart policy until the
    container is started again; a non-fatal one (USR1, WINCH...) leaves it in place."""
    if not c.running:
        raise Conflict(f"Cannot kill container: {c.id[:12]}: Container {c.id} is not running")
    fatal = sig in FATAL_SIGNALS
    if not fatal and c.spec.stop_signal:
        from dockyard.engine.specgen import parse_signal

        fatal = sig == parse_signal(c.spec.stop_signal)
    if fatal:
        ContainerStore(store).update(c.id, error="stopping")
    from dockyard.engine import events

    events.container(store, "kill", c, {"signal": sig})
    signal_container(c, sig)
    if sig == 9:  # SIGKILL
        if c.state == "paused":
            unpause(store, c)
        _wait_state(store, c.id, lambda x: not x.running, 10)


def remove(store: Store, c: Container, force: bool = False, volumes: bool = False) -> None:
    c.can_remove(force)
    cs = ContainerStore(store)
    from dockyard.errors import NoSpace

    def mark(**values: object) -> None:
        try:
            cs.update(c.id, **values)
        except NoSpace:
            pass  # a full disk: remove the files first (that frees the space), the row after

    # "removing" with a live process: an rm -f cut short after it had marked the row (below)
    if c.running or (c.state == "removing" and alive(c.pid, c.pid_start)):
        mark(error="stopping")
        if c.state == "paused":
            unpause(store, c)
        status = _kill_for_removal(store, c)
        if status is None:
            signal_container(c, 9)  # SIGKILL
            _wait_state(store, c.id, lambda x: not x.running, 10)
        else:
            from dockyard.engine import events

            events.container(store, "die", c, {"exitCode": status})
    _end_monitor(c)
    mark(state="removing")
    from dockyard.engine.rootfs import unmount

    unmount(store, c)
    try:
        from dockyard.runtime.base import get_runtime
        from dockyard.engine.monitor import RUNTIME_STATE

        get_runtime(c.spec.runtime, RUNTIME_STATE).delete(c.id, force=True)
    except Exception:  # noqa: BLE001 - nothing of the runtime's may be left, but absence is fine
        pass
    if c.spec.network_mode not in ("host", "none"):  # ports, veths, addresses, connected networks
        from dockyard.network.attach import release

        release(store, c, forget=True)
    remove_files(store, c)
    from dockyard.engine import attach

    attach.forget(c.id)  # the socket of its last monitor, in /run/dockyard/attach
    cs.delete(c.id)
    from dockyard.engine import events

    events.container(store, "destroy", c)
    if volumes:  # rm -v: its anonymous volumes go too (named ones stay, as in Docker)
        from dockyard.volumes.attach import remove_anonymous

        remove_anonymous(store, c.spec.mounts)


def _kill_for_removal(store: Store, c: Container, timeout: float = 10.0) -> int | None:
    """``rm -f`` of a running container with a live monitor: the monitor is told (``containers.removal_flag``) that
    the container is being removed, so that at its exit it records nothing and runs no finish phase (a Python start
    per container: most of the cost of removing many at once), hands the status to its clients and here, and
    leaves; the caller removes the rest. Returns the exit status, or None when the monitor cannot be told (none
    alive, the container not alive) or does not leave in time: the caller then waits for the exit to be recorded
    as for any stop."""
    import select

    from dockyard.engine.containers import removal_flag

    if not c.monitor_pid or not c.pid:
        return None
    try:
        pidfd = os.pidfd_open(c.monitor_pid)
    except OSError:
        return None
    flag = removal_flag(store.root, c.id)
    try:
        if not (alive(c.monitor_pid, c.monitor_start) and alive(c.pid, c.pid_start)):
            return None  # checked with the pidfd held: the monitor it names is the one recorded
        try:
            os.close(os.open(flag, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        except OSError:
            return None
        # the monitor will not record the exit: the row says what is going on before anything dies, so that a
        # remover killed from here on leaves "removing" (Docker's "Removal In Progress"), not a "running"
        # container with no process; another rm -f finishes the work
        from dockyard.errors import NoSpace

        try:
            ContainerStore(store).update(c.id, state="removing")
        except NoSpace:
            pass
        signal_container(c, 9)  # SIGKILL
        p = select.poll()
        p.register(pidfd, select.POLLIN)
        if not p.poll(timeout * 1000):
            return None
        try:
            with open(flag, "rb") as f:
                return int(f.read().strip() or b"137")
        except (OSError, ValueError):
            return 137  # the monitor left without answering (killed): SIGKILL's status
    finally:
        os.close(pidfd)


def _end_monitor(c: Container, grace: float = 2.0) -> None:
    """A monitor still alive once its container is not running (stuck or stopped, or killed callers left it) gets
    ``grace`` seconds to finish, then SIGKILL: ``rm -f`` leaves no process. It is found by its recorded pid or, if
    it never recorded one, as the listener of the container's attach socket (SO_PEERCRED)."""
    import select
    import signal as sig

    pid = c.monitor_pid if alive(c.monitor_pid, c.monitor_start) else _attach_peer(c.id)
    if not pid or pid == os.getpid():
        return
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        if p.poll(grace * 1000):
            return
        sig.pidfd_send_signal(fd, sig.SIGKILL)
        p.poll(grace * 1000)
    except OSError:
        pass
    finally:
        os.close(fd)


def _attach_peer(cid: str) -> int | None:
    """The pid of the process listening on the container's attach socket (its monitor), or None."""
    import socket
    import struct

    from dockyard.engine import attach

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        attach.connect_to(s, cid)
        pid, _uid, _gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return pid or None
    except OSError:
        return None
    finally:
        s.close()


def wait(store: Store, c: Container) -> int:
    """Block until the container is not running; returns its exit code (Docker's ``wait``)."""
    from dockyard.engine import attach as proto

    if c.running:
        s = proto.connect(c.id)
        if s is not None:
            s.sendall(b'{"stdout": false, "stderr": false}\n')
            r = proto.FrameReader()
            while True:
                try:
                    data = s.recv(65536)
                except OSError:  # the monitor exited between accepting us and serving us
                    data = b""
                if not data:
                    break
                for kind, payload in r.feed(data):
                    if kind == proto.EXIT:
                        s.close()
                        return int(payload)
            s.close()
        c2 = _wait_state(store, c.id, lambda x: not x.running, 1e9)
        if c2 is None:
            return c.exit_code or 0
        c = c2
    return c.exit_code if c.exit_code is not None else 0


def pause(store: Store, c: Container) -> None:
    from dockyard.engine.monitor import RUNTIME_STATE
    from dockyard.runtime.base import get_runtime

    if c.state == "paused":
        raise Conflict(f"Container {c.id} is already paused")
    if c.state != "running":
        raise Conflict(f"Container {c.id} is not running")
    get_runtime(c.spec.runtime, RUNTIME_STATE).pause(c.id)
    ContainerStore(store).update(c.id, state="paused")
    from dockyard.engine import events

    events.container(store, "pause", c)


def unpause(store: Store, c: Container) -> None:
    from dockyard.engine.monitor import RUNTIME_STATE
    from dockyard.runtime.base import get_runtime

    if c.state != "paused":
        raise Conflict(f"Container {c.id} is not paused")
    get_runtime(c.spec.runtime, RUNTIME_STATE).resume(c.id)
    ContainerStore(store).update(c.id, state="running")
    from dockyard.engine import events

    events.container(store, "unpause", c)


def rename(store: Store, c: Container, new: str) -> None:
    validate_name(new)
    if new == c.name:
        raise InvalidArgument("Renaming a container with the same name as its current name")
    from dockyard.state.db import IntegrityError

    try:
        ContainerStore(store).update(c.id, name=new)
    except IntegrityError:
        raise Conflict(f'Conflict. The container name "/{new}" is already in use') from None
    from dockyard.engine import events

    old, c.name = c.name, new
    events.container(store, "rename", c, {"oldName": "/" + old})


def resolve(store: Store, ref: str) -> Container:
    """The container called ``ref``: its name, full ID or a unique ID prefix (NotFound otherwise)."""
    return ContainerStore(store).get(ref)


def parse_signal(value: str) -> int:
    """A signal as ``kill -s``/``--stop-signal`` take it: a name (``TERM``, ``SIGTERM``) or a number (1-64)."""
    from dockyard.engine.specgen import parse_signal as parse

    return parse(value)


def restart(store: Store, c: Container, timeout: int | None = None, sig: int | None = None) -> None:
    """Docker's restart: stop (as ``stop``) then start again."""
    stop(store, c, timeout, sig)
    start(store, ContainerStore(store).get(c.id))


PARALLEL = 16  # at most this many containers acted on at once (Docker's CLI: 50)


def for_each(store: Store, refs: list[str], fn: Callable[[Container], Any], *,
             parallel: bool = False) -> Iterator[Outcome]:
    """Docker's multi-container verbs: resolve and act on each ``ref``, going on past a failure; one ``Outcome``
    per ref, in the order of ``refs``, each yielded as soon as it and those before it are done.

    ``parallel``: act on the containers concurrently, in threads, as Docker does for ``rm``, ``stop`` and ``kill``;
    only for an ``fn`` that never forks (starting a monitor does: ``start``/``restart`` stay serial). A ref given
    twice is acted on once, then answers as a serial run would (NotFound after a removal, say)."""
    from dockyard.engine.records import Outcome

    cs = ContainerStore(store)

    def one(ref: str) -> Outcome:
        try:
            return Outcome(ref, fn(cs.get(ref)))
        except DockyardError as e:
            return Outcome(ref, error=e)

    firsts = list(dict.fromkeys(refs))
    if not parallel or len(firsts) < 2:
        for ref in refs:
            yield one(ref)
        return
    from concurrent.futures import ThreadPoolExecutor

    seen: set[str] = set()
    with ThreadPoolExecutor(max_workers=min(len(firsts), PARALLEL), thread_name_prefix="dockyard-each") as pool:
        futures = {ref: pool.submit(one, ref) for ref in firsts}
        for ref in refs:
            if ref in seen:
                yield one(ref)  # again, after the first one is done
                continue
            seen.add(ref)
            yield futures[ref].result()


def remove_many(store: Store, refs: list[str], force: bool = False, volumes: bool = False) -> Iterator[Outcome]:
    """``rm`` of several containers, concurrently: each is removed or reports its error (NotFound included: the
    CLI's ``rm -f`` ignores that one, as Docker's), and the others go on."""
    return for_each(store, refs, lambda c: remove(store, c, force, volumes), parallel=True)


PRUNE_FILTERS = ("until", "label", "label!")


def prune(store: Store, filters: list[tuple[str, str]] | None = None) -> PruneReport:
    """``container prune``: remove every stopped container (created, exited, dead) that the filters keep
    (``until=<time>`` created before it, ``label=k[=v]``, ``label!=k[=v]``); returns their IDs and the bytes
    their writable layers held."""
    from dockyard.engine import filters as flt
    from dockyard.engine.records import PruneReport

    by = flt.group(filters or [], PRUNE_FILTERS, "container prune")
    until = flt.time_value(by["until"][-1]) if by.get("until") else None
    report = PruneReport()
    for c in ContainerStore(store).list():
        if c.state not in ("exited", "created", "dead"):
            continue
        if until is not None and c.created >= until:
            continue
        if not flt.labels_match(c.labels, by.get("label", []), by.get("label!", [])):
            continue
        size = flt.dir_size(os.path.join(c.dir(store), "diff"))
        try:
            remove(store, c)
        except NotFound:
            continue  # removed meanwhile by someone else
        report.deleted.append(c.id)
        report.space_reclaimed += size
    from dockyard.engine.prune import collect_leftovers

    report.space_reclaimed += collect_leftovers(store)  # killed builds' workspaces, stale staging files
    return report


__all__ = ["create", "check_spec", "parse_ports", "parse_mounts", "start", "stop", "restart", "kill", "parse_signal", "remove",
           "remove_many", "for_each", "prune", "wait", "pause", "unpause", "rename", "resolve", "DockyardError"]
