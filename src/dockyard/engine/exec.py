"""``exec``: a process started in a running container's namespaces and cgroup, and its record.

An exec is created (``exec_create``: a record, nothing runs, as Docker's POST /containers/{id}/exec), started
(``exec_start``: the runtime forks the process as a child of the caller, who is made a child subreaper so that it
can wait for it; the caller gives it pipes of its own or a console socket, never its own terminal) and its end is
recorded (``exec_finished``). Records live in ``containers/<id>/exec/<exec id>.json`` (0600) and go with the
container. The relaying of the pipes is the edge's business (the CLI copies them to its stdio, the API to the
hijacked connection).

    rec = exec_create(store, "web", ["sh", "-c", "echo hi"])
    pid = exec_start(store, rec.id, stdout=w)
    exec_finished(store, rec.id, wait_exit(pid))
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.state.db import Store

from dockyard import jsonc as json
from dockyard.engine.records import _Slots
from dockyard.errors import Conflict, NotFound

# execs created with ``defer`` by this process and not yet started: their container (already read), so that the
# start writes the record once and logs exec_create and exec_start in one transaction
_PENDING: dict[str, Any] = {}


class ExecRecord(_Slots):
    """An exec: its ``id`` (64 hex), container, what to run (``cmd``, ``env`` added to the container's,
    ``user``, ``workdir``, ``tty``, ``stdin``, ``privileged``), and once started its ``pid``, ``running`` and,
    once ended, ``exit_code``."""

    __slots__ = ("id", "container_id", "cmd", "env", "user", "workdir", "tty", "stdin", "privileged", "pid",
                 "running", "exit_code")
    if TYPE_CHECKING:
        id: str
        container_id: str
        cmd: list[str]
        env: list[str]
        user: str
        workdir: str
        tty: bool
        stdin: bool
        privileged: bool
        pid: int
        running: bool
        exit_code: int | None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _path(store: Store, cid: str, eid: str) -> str:
    return store.path("containers", cid, "exec", eid + ".json")


def _save(store: Store, rec: ExecRecord) -> None:
    d = store.path("containers", rec.container_id, "exec")
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    tmp = _path(store, rec.container_id, rec.id) + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(rec.to_json(), f)
    os.rename(tmp, _path(store, rec.container_id, rec.id))  # transient, as Docker's: no fsync


def exec_create(store: Store, ref: str, cmd: list[str], env: list[str] | None = None, user: str = "",
                workdir: str = "", tty: bool = False, stdin: bool = False, privileged: bool = False,
                defer: bool = False) -> ExecRecord:
    """Record an exec in running container ``ref`` (Conflict if it is not running or is paused). With ``defer``
    (a caller that starts it at once, in this process) the record and its exec_create event are written by
    ``exec_start`` (or, if the start fails, then too)."""
    from dockyard.engine.containers import ContainerStore
    from dockyard.errors import InvalidArgument
    from dockyard.ids import new_id

    if not cmd:
        raise InvalidArgument("No exec command specified")
    c = ContainerStore(store).get(ref)
    c.can_exec()
    rec = ExecRecord(id=new_id(), container_id=c.id, cmd=list(cmd), env=list(env or []), user=user,
                     workdir=workdir, tty=tty, stdin=stdin, privileged=privileged, pid=0, running=False,
                     exit_code=None)
    if defer:
        _PENDING[rec.id] = c
        return rec
    _save(store, rec)
    from dockyard.engine import events

    events.container(store, "exec_create: " + " ".join(rec.cmd), c, {"execID": rec.id})
    return rec


def exec_inspect(store: Store, exec_id: str) -> ExecRecord:
    """The record of ``exec_id`` (NotFound "No such exec instance: ...")."""
    if len(exec_id) == 64 and all(ch in "0123456789abcdef" for ch in exec_id):
        for cid in store.query("SELECT id FROM containers"):
            try:
                with open(_path(store, cid["id"], exec_id), encoding="utf-8") as f:
                    d = json.load(f)
            except FileNotFoundError:
                continue
            return ExecRecord(**d)
    raise NotFound(f"No such exec instance: {exec_id}")


def exec_ids(store: Store, container_id: str) -> list[str]:
    """The execs recorded for a container (inspect's ExecIDs)."""
    try:
        names = os.listdir(store.path("containers", container_id, "exec"))
    except FileNotFoundError:
        return []
    return sorted(n[:-5] for n in names if n.endswith(".json"))


def process(store: Store, rec: ExecRecord) -> dict[str, Any]:
    """The OCI process of an exec: the container's own (its env, user, cwd, capabilities...) with the exec's
    command, added env, user, workdir, terminal and, with ``privileged``, every capability."""
    cdir = store.path("containers", rec.container_id)
    with open(os.path.join(cdir, "config.json"), "rb") as f:
        spec = json.load(f)
    proc = dict(spec["process"])
    env = dict(e.split("=", 1) for e in proc.get("env", []) if "=" in e)
    for e in rec.env:
        k, _, v = e.partition("=")
        env[k] = v
    if rec.tty:
        env.setdefault("TERM", "xterm")
    proc["env"] = [f"{k}={v}" for k, v in env.items()]
    proc["args"] = list(rec.cmd)
    proc["terminal"] = rec.tty
    if rec.workdir:
        proc["cwd"] = rec.workdir
    if rec.user:
        from dockyard.engine import specgen  # only here: it pulls in the options model (~3 ms of imports)

        proc["user"] = specgen.resolve_user(rec.user, os.path.join(cdir, "rootfs"))
        proc["user"].pop("home", None)
    if rec.privileged:
        from dockyard.runtime.caps import CAP_NAMES

        proc["capabilities"] = {k: list(CAP_NAMES) for k in ("bounding", "effective", "permitted")}
    return proc


def exec_start(store: Store, exec_id: str | ExecRecord, stdin: int | None = None, stdout: int | None = None,
               stderr: int | None = None, console_socket: int | None = None) -> int:
    """Start an exec as a child of the caller (made a child subreaper); returns its host pid. Stdio fds that are
    None are /dev/null (opened by the runtime inside); with ``console_socket`` the runtime sends the master of a
    pty of the container's devpts there (``receive_console``)."""
    from dockyard.engine import events
    from dockyard.engine.containers import ContainerStore
    from dockyard.rootless import run_dir
    from dockyard.runtime import syscalls
    from dockyard.runtime.base import Stdio, get_runtime

    rec = exec_id if isinstance(exec_id, ExecRecord) else exec_inspect(store, exec_id)
    if rec.running or rec.exit_code is not None:
        raise Conflict(f"Error: Exec command {rec.id} is already running" if rec.running else
                       f"Error: Exec command {rec.id} has already run")
    c = _PENDING.pop(rec.id, None)
    saved = c is None  # else a deferred exec's record and exec_create event are written below
    if c is None:
        c = ContainerStore(store).get(rec.container_id)
        c.can_exec()
    try:
        proc = process(store, rec)
        # the stored options' runtime, read without building the ContainerSpec (whose import costs ~1.5 ms)
        rt = get_runtime(c.config.get("runtime", "dockyard"), run_dir() + "/runtime")  # the monitor's RUNTIME_STATE
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)  # the runtime forks the process for us to wait on
        stdio = Stdio(console_socket=console_socket) if console_socket is not None else Stdio(stdin, stdout, stderr)
        try:
            pid = int(rt.exec(c.id, proc, stdio))
        except Conflict:
            if not _wait_started(rt, c.id):
                raise
            pid = int(rt.exec(c.id, proc, stdio))  # its monitor has started it since
    except BaseException:
        if not saved:
            try:
                _save(store, rec)
            except OSError:
                pass
            events.container(store, "exec_create: " + " ".join(rec.cmd), c, {"execID": rec.id})
        raise
    rec.pid, rec.running = pid, True
    _save(store, rec)
    attrs = {"execID": rec.id}
    if saved:
        events.container(store, "exec_start: " + " ".join(rec.cmd), c, attrs)
    else:
        try:
            with store.write() as w:  # one transaction for both
                events.container(store, "exec_create: " + " ".join(rec.cmd), c, attrs, db=w)
                events.container(store, "exec_start: " + " ".join(rec.cmd), c, attrs, db=w)
        except Exception:  # noqa: BLE001 - as emit: an event never fails the exec
            pass
    return pid


def _wait_started(rt: Any, cid: str, timeout: float = 30.0) -> bool:
    """Wait while the runtime holds container ``cid`` created but not yet started; True once it runs.

    The store says "running" from the moment the container is created: its monitor starts it an instant later
    (or, for ``run`` attached, once the CLI's attach asks, within 30 s), so an exec that comes in between (the API
    right after ``start``) waits for the start instead of failing."""
    import time

    from dockyard.errors import DockyardError

    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            status = rt.state(cid)["status"]
        except DockyardError:
            return False
        if status != "created":
            return status == "running"
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)  # polling the runtime's state with a deadline: its monitor starts it
        delay = min(delay * 2, 0.05)


def exec_finished(store: Store, exec_id: str | ExecRecord, status: int) -> None:
    """Record that an exec ended with ``status`` (its starter waited for it)."""
    rec = exec_id if isinstance(exec_id, ExecRecord) else exec_inspect(store, exec_id)
    rec.running, rec.exit_code = False, status
    try:
        _save(store, rec)
    except FileNotFoundError:
        pass  # the container was removed meanwhile
    from dockyard.engine import events
    from dockyard.engine.containers import ContainerStore

    try:
        c = ContainerStore(store).get(rec.container_id)
    except Exception:  # noqa: BLE001 - removed meanwhile
        return
    events.container(store, "exec_die", c, {"execID": rec.id, "exitCode": status})


def wait_exit(pid: int) -> int:
    """Wait for a child process; its exit status as a shell reports it (128+N for a signal)."""
    _, st = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(st)
    return code if code >= 0 else 128 - code


def receive_console(sock_fd: int) -> int:
    """The pty master the runtime sent over a console socket."""
    from dockyard.runtime.base import receive_console as receive

    return receive(sock_fd)


def exec_resize(master: int, rows: int, cols: int) -> None:
    """Resize an exec's terminal (the pty master its starter holds)."""
    import fcntl
    import struct
    import termios

    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
