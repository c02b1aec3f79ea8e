"""The per-container monitor: one small process per running container, and no daemon.

``spawn`` forks the calling dockyard process twice (the monitor is a session leader reparented away from the CLI,
so killing the CLI never touches it) and waits until the monitor reports that the container is created. The
monitor then:

1. mounts the container's overlay root and writes its bundle (``engine.specgen``),
2. asks the runtime to create the container, holding the container's stdio (pipes, or a pty with ``-t``),
3. listens on the attach socket (``engine.attach``) and starts the process (at once, or when ``run``'s client has
   attached, so that no early output is lost),
4. copies output to the json-file log (``<id>-json.log``, Docker's format) and to attached clients, and client
   input to the container (``engine.monitor_loop``),
5. records the exit status, finish time and OOM kill in the store, unmounts, and applies the restart policy or
   ``--rm``.

Memory: this module and the runtime are heavy (a CLI's worth of imports). A container that outlives a short grace
period gets its monitor re-executed as the C loop ``dockyard-monitor`` (``monitor_loop.c``, built by
scripts/deps.sh; well under 1 MiB), or without it as a fresh, minimal interpreter running only ``monitor_loop``
(same pid, same fds), which calls back into this module when the container exits.

The monitor is a child subreaper so that the container's init (forked by the runtime) is its child to wait for.
"""

from __future__ import annotations

import os
import signal
import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard import jsonc as json
from dockyard.engine.containers import Container, ContainerStore, proc_start_time, remove_files, set_aside
from dockyard.engine.monitor_loop import Loop
from dockyard.errors import DockyardError
from dockyard.state.db import Store
from dockyard.rootless import run_dir as _run_dir
from dockyard.trace import mark

RUNTIME_STATE = _run_dir() + "/runtime"  # /run/dockyard, or the rootless user's run dir
GRACE = 0.2  # seconds a fresh container may finish in before the monitor slims down


class Spawner:
    """A monitor forked early, before the caller touches the store, to be told its container later.

    ``run`` forks the monitor first: the monitor loads the runtime while the CLI records the container, and the
    CLI's SQLite connection never exists across a fork (SQLite state must not cross fork(), and closing the
    connection first would cost a checkpoint). ``launch(cid)`` hands over the container and waits until it is
    created; ``cancel()`` (or the caller's exit) makes the monitor leave quietly.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        cmd_r, self.cmd_w = os.pipe2(os.O_CLOEXEC)
        self.ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # intermediate: detach from the CLI's session, then leave the monitor as an orphan
            try:
                os.setsid()
                if os.fork() == 0:
                    _monitor_main(root, cmd_r, ready_w)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(ready_w)
        os.waitpid(pid, 0)

    def launch(self, cid: str, wait_attach: bool) -> dict[str, Any]:
        """Start the monitor of container ``cid``; returns ``{"pid": container pid}`` once created, or raises.

        Every wait has a way out: the monitor's first line is its pid, and the wait for the outcome ends when the
        monitor exits (its pidfd) or after ``start_timeout()`` seconds (a stuck monitor is then killed)."""
        self.send(cid, wait_attach)
        return self.result(cid)

    def send(self, cid: str, wait_attach: bool = False) -> None:
        """Hand container ``cid`` to the monitor without waiting (``result`` waits): several monitors then
        create their containers at once."""
        os.write(self.cmd_w, json.dumps({"cid": cid, "wait_attach": wait_attach}).encode() + b"\n")
        os.close(self.cmd_w)

    def result(self, cid: str) -> dict[str, Any]:
        """The outcome of ``send``: ``{"pid": ...}`` once the container is created, or raises."""
        try:
            lines = self._read_lines(cid)
        finally:
            os.close(self.ready_r)
        if not lines:
            raise DockyardError(f"container {cid[:12]}: monitor exited before creating the container")
        msg = json.loads(lines[-1])
        if "error" in msg:
            from dockyard import errors

            if msg.get("exec"):
                raise errors.exec_failure(msg["error"])
            # the error's class crosses the boundary by name: a NotFound stays a NotFound
            kind = getattr(errors, str(msg.get("kind", "")), None)
            if not (isinstance(kind, type) and issubclass(kind, errors.DockyardError)):
                kind = DockyardError
            raise kind(msg["error"])
        return msg  # type: ignore[no-any-return]

    def _read_lines(self, cid: str) -> list[bytes]:
        """The monitor's lines up to its report (its own pid first, then the outcome), or what it wrote before it
        exited. Not EOF: the container's init may hold the pipe until it execs."""
        import select

        data = b""
        pidfd = -1
        deadline = time.monotonic() + start_timeout()
        monitor = 0
        try:
            while True:
                lines = data.split(b"\n")[:-1]
                if lines and monitor == 0:
                    monitor = int(json.loads(lines[0]).get("monitor", 0))
                    try:
                        pidfd = os.pidfd_open(monitor)
                    except (ProcessLookupError, OSError):
                        pidfd = -1
                if len(lines) >= 2:
                    return lines[1:]
                p = select.poll()
                p.register(self.ready_r, select.POLLIN)
                if pidfd >= 0:
                    p.register(pidfd, select.POLLIN)
                left = deadline - time.monotonic()
                if left <= 0:
                    if monitor:
                        _kill_quiet(monitor, pidfd)
                    raise DockyardError(f"container {cid[:12]}: timed out waiting for its monitor to create it")
                ready = {fd for fd, _ in p.poll(min(left, 1.0) * 1000)}
                if self.ready_r in ready:
                    b = os.read(self.ready_r, 65536)
                    if not b:
                        return data.split(b"\n")[1:-1]
                    data += b
                elif pidfd in ready:  # the monitor is gone; a child of it may still hold the pipe
                    os.set_blocking(self.ready_r, False)
                    try:
                        data += os.read(self.ready_r, 65536)
                    except BlockingIOError:
                        pass
                    lines = data.split(b"\n")[:-1]
                    return lines[1:]
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def cancel(self) -> None:
        for fd in (self.cmd_w, self.ready_r):
            try:
                os.close(fd)
            except OSError:
                pass


def start_timeout() -> float:
    """Seconds ``run``/``start`` wait for a monitor to create its container (``DOCKYARD_START_TIMEOUT``, default
    120: an image's first mount and a busy host take long, a stuck monitor must not hang the caller forever)."""
    try:
        return max(float(os.environ.get("DOCKYARD_START_TIMEOUT", "120")), 0.1)
    except ValueError:
        return 120.0


def _kill_quiet(pid: int, pidfd: int = -1) -> None:
    try:
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, OSError):
        pass


def spawn(store: Store, c: Container, wait_attach: bool) -> dict[str, Any]:
    """Start the monitor of ``c`` (a caller that already holds the store open)."""
    store.close()  # an open SQLite connection must not cross fork()
    return Spawner(store.root).launch(c.id, wait_attach)


def _monitor_main(root: str, cmd_fd: int, ready_fd: int) -> None:
    code = 0
    cid = ""
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        keep = sorted((cmd_fd, ready_fd))
        os.closerange(3, keep[0])
        os.closerange(keep[0] + 1, keep[1])
        os.closerange(keep[1] + 1, 65536)
        for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGTTOU, signal.SIGTTIN):
            signal.signal(s, signal.SIG_IGN)
        # load what creating a container needs while the caller records it
        from dockyard.engine import rootfs, specgen  # noqa: F401
        from dockyard.fsutil import atomic_write  # noqa: F401
        from dockyard.runtime import syscalls
        from dockyard.snapshots import store as _snapshots  # noqa: F401
        from dockyard.runtime.base import get_runtime

        os.write(ready_fd, json.dumps({"monitor": os.getpid()}).encode() + b"\n")  # the caller's way out
        get_runtime("dockyard", RUNTIME_STATE)
        from dockyard.runtime import nsexec  # noqa: F401  (the built-in runtime's create: ~4 ms of imports)
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)  # kept across execve into the slim loop
        mark("preloaded")
        data = b""
        while not data.endswith(b"\n"):
            b = os.read(cmd_fd, 4096)
            if not b:
                os._exit(0)  # cancelled: the caller failed to create the container
            data += b
        os.close(cmd_fd)
        cmd = json.loads(data)
        cid = cmd["cid"]
        loop = Loop(root, cid)
        loop.listen()
        loop.open_log(os.path.join(root, "containers", cid, f"{cid}-json.log"))
        if os.environ.get("DOCKYARD_TEST_HOOK") == "monitor-stop":  # tests only: a monitor stuck before creating
            os.kill(os.getpid(), signal.SIGSTOP)
        m = Monitor(Store(root), loop, ready_fd, cmd["wait_attach"])
        if m.launch():
            m.supervise()
    except BaseException:  # noqa: BLE001 - the monitor must never die with a traceback nobody sees
        code = 1
        if cid:
            _trace(root, cid)
    finally:
        os._exit(code)


def _trace(root: str, cid: str) -> None:
    try:  # leave the reason where a developer can find it
        import traceback

        fd = os.open(os.path.join(root, "containers", cid, "monitor.err"),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with open(fd, "a") as f:
            traceback.print_exc(file=f)
    except OSError:
        pass


def after_exit(loop: Loop, status: int) -> None:
    """Called by the slim loop (in a fresh interpreter) when the container has exited."""
    m = Monitor(Store(loop.root), loop, None, False)
    if m.finish(status):
        m.supervise()


def finish_main(state: str | int) -> None:
    """Entry point of the finish phase after the C loop (``dockyard-monitor``) has seen the container exit.

    ``state`` is the number of a memfd holding ``Loop.to_state()``'s JSON with no output fds or pidfd, plus
    ``"status"`` (exit code, or 128+signal); the listener, attached clients and log fd are still open. (The JSON
    itself, from a C loop built before the memfd, is still understood.)"""
    from dockyard.engine.monitor_loop import read_state

    code = 0
    text = ""
    try:
        text = read_state(state)
        loop = Loop.from_state(text)
        after_exit(loop, json.loads(text)["status"])
    except BaseException:  # noqa: BLE001
        code = 1
        try:
            d = json.loads(text)
            _trace(d["root"], d["cid"])
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


def slim_binary() -> str | None:
    """The compiled slim loop (scripts/deps.sh builds it into the venv), or None to use the Python one.

    ``DOCKYARD_MONITOR_LOOP=python`` in the environment of the command that starts a container forces the Python
    loop."""
    if os.environ.get("DOCKYARD_MONITOR_LOOP") == "python":
        return None
    from dockyard import libexec

    return libexec.find("dockyard-monitor")


def _slim_args(state: str, src: str) -> list[str]:
    """``Loop.to_state()`` as the C loop's key=value items (see the head of monitor_loop.c)."""
    d = json.loads(state)
    args = [f"python={sys.executable}", f"src={src}", f"root={d['root']}", f"cid={d['cid']}", f"pid={d['pid']}",
            f"pidfd={d['pidfd']}", f"log_fd={d['log_fd']}", f"log_size={d['log_size']}",
            f"log_path={d['log_path']}"]
    args += [f"out={fd}:{stream}" for fd, stream in d["out"].items()]
    args += [f"{k}={d[k]}" for k in ("stdin", "tty", "listener") if d[k] is not None]
    args += [f"partial{k}={v}" for k, v in d["partial"].items()]
    if d.get("health"):
        args.append(f"health={d['health']}")
    for c in d["clients"]:
        o = c["opts"]
        flags = (c["hello"], o.get("stdin", False), o.get("stdout", True), o.get("stderr", True))
        args.append("client=" + ":".join([str(c["fd"]), *(str(int(bool(x))) for x in flags), c["buf"][:510]]))
        if c["pending"]:  # an unread frame, up to 64 KiB
            args.append(f"pending={c['fd']}:{c['pending']}")
    return args


class Monitor:
    def __init__(self, store: Store, loop: Loop, ready_fd: int | None, wait_attach: bool) -> None:
        self.store = store
        self.loop = loop
        self.cid = loop.cid
        self.containers = ContainerStore(store)
        self.ready_fd = ready_fd
        self.wait_attach = wait_attach

    # ---- life cycle -------------------------------------------------------------------------------------
    def launch(self) -> bool:
        """Create the container (not started yet); report the outcome to whoever spawned us."""
        c = self.containers.get(self.cid)
        try:
            self._create(c)
            return True
        except (DockyardError, OSError) as e:
            msg = str(e)
            if isinstance(e, OSError) and not isinstance(e, DockyardError):
                from dockyard.errors import from_oserror

                msg = str(from_oserror(f"cannot start container {c.id[:12]}", e))
            # an external runtime (runc, crun) reports a command it cannot start as a create failure
            kind = type(e).__name__ if isinstance(e, DockyardError) else "SystemFailure"
            self._report({"error": msg, "kind": kind, "exec": c.spec.runtime not in ("dockyard", "builtin", "")})
            # as Docker: the container keeps its state (created, or exited when it ran before), with the start
            # error and an exit code: 127/126 for a command that cannot run, else 128
            code = getattr(e, "exit_code", None) or 128
            try:
                self.containers.update(self.cid, state="exited" if c.started else "created", exit_code=code,
                                       error=msg, pid=None)
            except DockyardError:
                pass
            self.loop.send_exit(code)
            return False

    def supervise(self) -> None:
        """Start the created container, then watch it: in-process for a short while, then slimmed down (an exec
        that never returns). Restarts loop here rather than recurse, so a monitor can restart forever."""
        from dockyard.runtime.base import get_runtime

        while True:
            if self.wait_attach:
                self.loop.serve_until_start(deadline=time.monotonic() + 30)
                self.wait_attach = False
            c = self.containers.get(self.cid)
            mark("start")
            get_runtime(c.spec.runtime, RUNTIME_STATE).start(self.cid)
            status = self.loop.run_until_exit(timeout=GRACE)
            if status is None:
                self._exec_slim()
            mark("exited")
            if not self.finish(status):  # type: ignore[arg-type]
                return

    def finish(self, status: int) -> bool:
        """Record the exit; clean up; restart per policy (True: relaunched, the caller supervises it again), or
        remove with --rm; tell attached clients."""
        from dockyard.engine.containers import take_removal

        if take_removal(self.store.root, self.cid, status):  # rm -f: the remover cleans up
            self.loop.send_exit(status)
            return False
        from dockyard.engine import rootfs
        from dockyard.runtime.base import get_runtime

        c = self.containers.get(self.cid)
        rt = get_runtime(c.spec.runtime, RUNTIME_STATE)
        oom = False
        try:
            oom = rt.oom_killed(self.cid)
        except Exception:  # noqa: BLE001
            pass
        try:
            rt.delete(self.cid, force=True)
        except Exception:  # noqa: BLE001
            pass
        rootfs.unmount(self.store, c)
        veths: list[str] = []
        if c.spec.network_mode not in ("host", "none"):
            try:
                from dockyard.network.attach import release

                veths = release(self.store, c, forget=c.spec.auto_remove, defer=True)
            except Exception:  # noqa: BLE001 - recording the exit matters more; rm retries the release
                pass
        # --rm with no restart possible: the container is removed in the transaction that records its exit, its
        # files set aside before it and deleted after the client has its status (docs/decisions.md)
        remove = c.spec.auto_remove and c.spec.health_on_failure != "restart"
        aside = None
        if remove:
            try:
                aside = set_aside(self.store, c)
            except Exception:  # noqa: BLE001 - recording the exit matters more; rm retries
                remove = False
        from dockyard.engine import events

        with self.store.write() as db:
            db.execute("UPDATE containers SET state='exited', exit_code=?, finished=?, oom_killed=?, pid=NULL,"
                       " error=CASE WHEN error='stopping' THEN 'stopped' ELSE error END WHERE id=?",
                       (status, time.time(), int(oom), self.cid))
            if oom:
                events.container(self.store, "oom", c, db=db)
            events.container(self.store, "die", c, {"exitCode": status}, db=db)
            if remove:  # the row and its destroy event: the same transaction
                db.execute("DELETE FROM containers WHERE id=?", (self.cid,))
                events.container(self.store, "destroy", c, db=db)
        if remove:
            self._removed(c)
        else:
            c = self.containers.get(self.cid)
            if self._should_restart(c, status):
                self.containers.update(self.cid, state="restarting", restart_count=c.restart_count + 1)
                time.sleep(min(0.1 * (2 ** min(c.restart_count, 8)), 10))  # restart back-off, as Docker's
                c = self.containers.get(self.cid)
                if c.state == "restarting" and self.launch():  # not stopped or removed meanwhile
                    return True
            if c.spec.auto_remove:  # --rm with --health-on-failure=restart, once it is not restarted
                try:
                    remove_files(self.store, c)
                    with self.store.write() as db:  # the row and its destroy event: one transaction
                        db.execute("DELETE FROM containers WHERE id=?", (self.cid,))
                        events.container(self.store, "destroy", c, db=db)
                    self._removed(c)
                except Exception:  # noqa: BLE001
                    pass
        mark("finished")
        self.loop.send_exit(status)
        from dockyard.fsutil import rmtree

        if aside:  # after the client has its status: a few milliseconds per file on a slow disk
            try:
                rmtree(aside)
            except OSError:
                pass  # prune removes tmp/removed-<id>
        if veths:  # deleting a veth costs the kernel ~20 ms
            from dockyard.network.attach import delete_links

            try:
                delete_links(veths)
            except OSError:
                pass
        return False

    def _removed(self, c: Container) -> None:
        """What follows a --rm container's removal: its attach socket's name, its anonymous volumes."""
        from dockyard.engine import attach

        try:
            attach.forget(self.cid)  # our listener stays open for the clients to get the exit
            if any(m.type == "volume" for m in c.spec.mounts):
                from dockyard.volumes.attach import remove_anonymous

                remove_anonymous(self.store, c.spec.mounts)  # --rm takes anonymous volumes with it
        except Exception:  # noqa: BLE001
            pass

    def _should_restart(self, c: Container, code: int) -> bool:
        pol = c.spec.restart
        if c.state != "exited":
            return False
        if c.spec.health_on_failure == "restart":
            from dockyard.engine import health

            if health.restart_requested(self.store, c):  # --health-on-failure=restart ended this run
                return True
        if c.error == "stopped":
            return False
        if pol.name in ("always", "unless-stopped"):
            return True
        if pol.name == "on-failure" and code != 0:
            return not pol.maximum_retry_count or c.restart_count < pol.maximum_retry_count
        return False

    def _exec_slim(self) -> None:
        """Replace this process by the C loop, or a minimal interpreter running the loop (same pid, same fds).

        The state goes through a memfd, never the command line: /proc/PID/cmdline is readable by every user, and
        the state holds what clients sent that the container has not read yet (stdin)."""
        from dockyard.engine.monitor_loop import state_fd

        from dockyard.engine.health import loop_config

        self.loop.health = loop_config(self.containers.get(self.cid).spec)  # the loop forks the probes
        state = self.loop.to_state()
        self.store.close()
        import dockyard

        src = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
        exe = slim_binary()
        if exe:  # the C loop (monitor_loop.c): a fraction of an interpreter's memory
            fd = state_fd("\0".join(_slim_args(state, src)).encode())
            try:
                os.execv(exe, [exe, f"cid={self.cid}", f"state={fd}"])
            except OSError:
                os.close(fd)  # the Python loop does the same work
        boot = "import sys; sys.path.insert(0, sys.argv[1]); from dockyard.engine.monitor_loop import main; " \
               "main(sys.argv[2])"
        os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", boot, src, str(state_fd(state.encode()))])

    # ---- creating -----------------------------------------------------------------------------------------
    def _create(self, c: Container) -> None:
        from dockyard.engine import rootfs, specgen
        from dockyard.fsutil import atomic_write
        from dockyard.runtime.base import get_runtime

        cdir = c.dir(self.store)
        rt = get_runtime(c.spec.runtime, RUNTIME_STATE)
        image_config = rootfs.mount(self.store, c)
        mark("mounted")
        net = None
        try:
            hostname = c.spec.hostname or c.id[:12]
            if c.spec.network_mode not in ("host", "none"):  # bridges, addresses, ports (network.attach)
                from dockyard.network import attach

                net = attach.prepare(self.store, c, image_config, self.containers.get)
                mark("network")
            rootfs.write_etc_files(self.store, c, hostname, ip=net.ip if net else None,
                                   nameserver=net.nameserver if net else None)
            if net is not None and net.endpoints:
                attach.sync_hosts(self.store, c.id)
            oci = specgen.generate(c.spec, image_config, container_id=c.id, rootfs=os.path.join(cdir, "rootfs"),
                                   cdir=cdir, hostname=hostname, netns=net.netns if net else None)
            # the spec holds the container's environment (passwords): root-only
            atomic_write(os.path.join(cdir, "config.json"), json.dumps(oci).encode(), mode=0o600, durable=False)
            mark("bundle")
            stdio, theirs = self._stdio(c)
            try:
                try:
                    rt.delete(c.id, force=True)  # leftovers of an earlier run of this container
                except Exception:  # noqa: BLE001
                    pass
                pid = rt.create(c.id, cdir, stdio)
                mark("created")
            finally:
                for fd in theirs:
                    os.close(fd)
            if net is not None:
                try:
                    net.plumb(pid)
                except BaseException:
                    try:
                        rt.delete(c.id, force=True)
                    except Exception:  # noqa: BLE001
                        pass
                    raise
                mark("plumbed")
            if c.spec.tty:
                self._take_console(c)
        except BaseException:
            if net is not None:
                attach.release(self.store, c)
            rootfs.unmount(self.store, c)
            raise
        self.loop.pid = pid
        self.loop.pidfd = os.pidfd_open(pid)
        me = os.getpid()
        from dockyard.engine import events

        with self.store.write() as db:  # the start event commits with the state: one transaction
            db.execute("UPDATE containers SET state='running', pid=?, pid_start=?, monitor_pid=?, monitor_start=?,"
                       " started=?, exit_code=NULL, error='', oom_killed=0, finished=NULL WHERE id=?",
                       (pid, proc_start_time(pid), me, proc_start_time(me), time.time(), self.cid))
            events.container(self.store, "start", c, db=db)
        self._report({"pid": pid})

    def _report(self, msg: dict[str, Any]) -> None:
        if self.ready_fd is None:
            return
        try:
            os.write(self.ready_fd, json.dumps(msg).encode() + b"\n")
        finally:
            os.close(self.ready_fd)
            self.ready_fd = None

    def _take_console(self, c: Container) -> None:
        from dockyard.runtime.base import receive_console

        try:
            master = receive_console(self._console.fileno())
        finally:
            self._console.close()
        os.set_blocking(master, False)
        os.set_inheritable(master, False)
        self.loop.out = {master: 1}
        self.loop.tty_master = master
        self.loop.stdin_fd = master if c.spec.open_stdin else None

    def _stdio(self, c: Container) -> tuple[Any, set[int]]:
        """The container's ends of its stdio (returned, to close once created) and ours (kept in the loop)."""
        from dockyard.runtime.base import Stdio

        lp = self.loop
        if c.spec.tty:  # the runtime allocates the terminal in the container and sends us its master
            import socket

            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self._console = ours
            fd = theirs.detach()
            return Stdio(console_socket=fd), {fd}
        o_r, o_w = os.pipe2(os.O_CLOEXEC)
        e_r, e_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(o_r, False)
        os.set_blocking(e_r, False)
        lp.out = {o_r: 1, e_r: 2}
        lp.tty_master = None
        if c.spec.open_stdin:
            i_r, i_w = os.pipe2(os.O_CLOEXEC)
            lp.stdin_fd = i_w
            stdin = i_r
        else:
            lp.stdin_fd = None
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return Stdio(stdin=stdin, stdout=o_w, stderr=e_w), {stdin, o_w, e_w}
