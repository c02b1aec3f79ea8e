"""The built-in OCI runtime: containers created by forking the calling Python process (no helper binary).

State of a container lives in ``<state_root>/<id>/``: ``state.json`` (pid, its start time, bundle, cgroup
directories, the spec's process defaults for ``exec``) and, while the container is *created*, ``exec.fifo`` on which
its init waits before execve (``start`` opens it, as runc does, so ``start`` may come from another process).
"""

from __future__ import annotations

import os
import signal
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard import jsonc as json
from dockyard.errors import Conflict, InvalidArgument, NotFound, SystemFailure
from dockyard.runtime.base import Stdio
from dockyard.runtime.cgroups import Cgroup
from dockyard.trace import mark

OCI_VERSION = "1.0.2"
_ROOTLESS_ENV = "_DOCKYARD_ROOTLESS"  # dockyard.rootless.ENV, checked without importing it


def _start_time(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of ``pid``, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[19])


def validate_id(container_id: str) -> None:
    if not container_id or container_id in (".", "..") or not container_id.isascii() or not all(c.isalnum() or c in "_+-." for c in container_id):
        raise InvalidArgument(f"invalid container id: {container_id!r}")


class BuiltinRuntime:
    name = "dockyard"

    def __init__(self, state_root: str = "/run/dockyard/runtime", cgroup_root: str = "/sys/fs/cgroup") -> None:
        self.state_root = state_root
        self.cgroup_root = cgroup_root

    # ----- state files --------------------------------------------------------------------------------------
    def _dir(self, cid: str) -> str:
        validate_id(cid)
        return os.path.join(self.state_root, cid)

    def _load(self, cid: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self._dir(cid), "state.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            raise NotFound(f"container {cid} does not exist") from None

    def _save(self, cid: str, st: dict[str, Any]) -> None:
        d = self._dir(cid)
        tmp = os.path.join(d, ".state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.rename(tmp, os.path.join(d, "state.json"))

    def _status(self, cid: str, st: dict[str, Any]) -> str:
        cur = _start_time(st["pid"])
        if cur is None or cur[1] != st["start_time"] or cur[0] in ("Z", "X", "x"):
            return "stopped"
        if os.path.exists(os.path.join(self._dir(cid), "exec.fifo")):
            return "created"
        if st.get("cgroup") and Cgroup.from_dict(st["cgroup"]).frozen():
            return "paused"
        return "running"

    def _cgroup(self, st: dict[str, Any]) -> Cgroup | None:
        return Cgroup.from_dict(st["cgroup"]) if st.get("cgroup") else None

    # ----- lifecycle ----------------------------------------------------------------------------------------
    def create(self, container_id: str, bundle: str, stdio: Stdio) -> int:
        from dockyard.runtime import nsexec

        d = self._dir(container_id)
        bundle = os.path.abspath(bundle)
        try:
            with open(os.path.join(bundle, "config.json")) as f:
                spec = json.load(f)
        except FileNotFoundError:
            raise NotFound(f"bundle {bundle} has no config.json") from None
        except ValueError as e:
            raise InvalidArgument(f"invalid config.json in {bundle}: {e}") from None
        rootfs = os.path.join(bundle, (spec.get("root") or {}).get("path") or "rootfs")
        if not os.path.isdir(rootfs):
            raise NotFound(f"root filesystem {rootfs} does not exist")
        if not (spec.get("process") or {}).get("args"):
            raise InvalidArgument("process.args must not be empty")
        if stdio.terminal_fd is None and stdio.console_socket is None and (spec.get("process") or {}).get("terminal"):
            raise InvalidArgument("process.terminal is set but no terminal was given")
        from dockyard.runtime import linux as L

        try:
            L.check_sysctls(spec.get("linux") or {})  # the engine checks too; the runtime may be given any spec
        except L.SetupError as e:
            raise InvalidArgument(str(e)) from None
        os.makedirs(self.state_root, 0o700, exist_ok=True)  # root-only, as every dir under /run/dockyard
        try:
            os.mkdir(d, 0o711)
        except FileExistsError:
            raise Conflict(f"container with id exists: {container_id}") from None
        cg: Cgroup | None = None
        pid: int | None = None
        try:
            linux = spec.get("linux") or {}
            if _ROOTLESS_ENV in os.environ:  # no cgroup of its own on this host (see dockyard.rootless)
                from dockyard import rootless

                problem = rootless.spec_problems(linux.get("resources"))
                if problem:
                    raise InvalidArgument(problem)
            else:
                cg = Cgroup.for_path(linux.get("cgroupsPath") or f"/dockyard/{container_id}", self.cgroup_root)
                cg.create(linux.get("resources"))
                mark("cgroup")
            fifo = os.path.join(d, "exec.fifo")
            old = os.umask(0)
            try:
                os.mkfifo(fifo, 0o622)
            finally:
                os.umask(old)
            bpf = _seccomp_bpf(d, (spec.get("linux") or {}).get("seccomp"))
            mark("seccomp")
            body = nsexec.init_body(spec, rootfs, stdio, cg, fifo, bpf)
            try:
                way = _init_pid_ns(linux)
                if way is False:  # a user namespace of its own (made first) or a pid namespace path that fails
                    pid = nsexec.spawn(nsexec.init_prepare(spec, cg), body, "ready", nsexec.stdio_fds(stdio), cg)
                else:  # one fork: the init is born in its pid namespace (see nsexec.spawn_in_pidns)
                    try:
                        pid = nsexec.spawn_in_pidns(way if isinstance(way, int) and way is not True else None,
                                                    nsexec.init_prepare(spec, cg, pid_by_caller=True), body,
                                                    "ready", nsexec.stdio_fds(stdio), cg, new_pid_ns=way is True)
                    finally:
                        if isinstance(way, int) and way is not True:
                            os.close(way)
            except nsexec.SpawnError as e:
                pid = e.pid
                from dockyard.errors import DockyardError, exec_failure

                err = exec_failure(str(e))  # a command that cannot run: 127/126, as runc's create reports it
                raise (err if type(err) is not DockyardError else SystemFailure(str(e))) from None
            st = _start_time(pid)
            proc = dict(spec.get("process") or {})
            for k in ("args", "env", "terminal", "consoleSize", "cwd"):
                proc.pop(k, None)
            self._save(container_id, {
                "id": container_id, "pid": pid, "start_time": st[1] if st else 0, "bundle": bundle,
                "rootfs": rootfs, "created": time.time(), "cgroup": cg.to_dict() if cg else None, "process": proc,
                "seccomp": (spec.get("linux") or {}).get("seccomp"),
                "annotations": spec.get("annotations") or {},
            })
            return pid
        except BaseException:
            if pid:
                _kill_reap(pid)
            if cg is not None:
                try:
                    cg.kill_all(signal.SIGKILL)
                    _wait_empty(cg, 2.0)
                    cg.remove(timeout=2.0)
                except Exception:
                    pass
            from dockyard.fsutil import rmtree

            rmtree(d)
            raise

    def start(self, container_id: str) -> None:
        import select

        st = self._load(container_id)
        status = self._status(container_id, st)
        if status != "created":
            raise Conflict(f"cannot start a container in state {status}: {container_id}")
        fifo = os.path.join(self._dir(container_id), "exec.fifo")
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise Conflict(f"container {container_id} is already started") from None
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            deadline = time.monotonic() + 30
            while not p.poll(100):
                if self._status(container_id, st) == "stopped":
                    raise Conflict(f"container {container_id} exited before it was started")
                if time.monotonic() > deadline:
                    raise SystemFailure(f"timed out starting container {container_id}")
            if os.read(fd, 1) != b"0":
                raise Conflict(f"container {container_id} exited before it was started")
        finally:
            os.close(fd)
        try:
            os.unlink(fifo)
        except FileNotFoundError:
            pass

    def state(self, container_id: str) -> dict[str, Any]:
        st = self._load(container_id)
        status = self._status(container_id, st)
        return {"ociVersion": OCI_VERSION, "id": container_id, "status": status,
                "pid": st["pid"] if status != "stopped" else 0, "bundle": st["bundle"],
                "rootfs": st["rootfs"], "created": st["created"], "annotations": st.get("annotations") or {}}

    def kill(self, container_id: str, sig: int, all: bool = False) -> None:
        st = self._load(container_id)
        status = self._status(container_id, st)
        cg = self._cgroup(st)
        if status == "stopped" and not (all and cg and cg.procs()):
            raise Conflict(f"container {container_id} is not running")
        if all and cg is not None:
            cg.kill_all(sig)
        else:
            try:
                os.kill(st["pid"], sig)
            except ProcessLookupError:
                raise Conflict(f"container {container_id} is not running") from None
        if sig == signal.SIGKILL and cg is not None and cg.frozen():
            cg.thaw()

    def pause(self, container_id: str) -> None:
        st = self._load(container_id)
        status = self._status(container_id, st)
        if status != "running":
            raise Conflict(f"cannot pause container {container_id} in state {status}")
        cg = self._cgroup(st)
        if cg is None:
            raise Conflict(f"container {container_id} has no cgroup")
        cg.freeze()

    def resume(self, container_id: str) -> None:
        st = self._load(container_id)
        status = self._status(container_id, st)
        if status != "paused":
            raise Conflict(f"container {container_id} is not paused")
        cg = self._cgroup(st)
        assert cg is not None
        cg.thaw()

    def delete(self, container_id: str, force: bool = False) -> None:
        from dockyard.fsutil import rmtree

        st = self._load(container_id)
        status = self._status(container_id, st)
        cg = self._cgroup(st)
        if status in ("running", "paused") and not force:
            raise Conflict(f"cannot delete container {container_id} that is not stopped: {status}")
        if status != "stopped":
            _kill_quiet(st["pid"])
        if cg is not None:
            if cg.procs():
                cg.kill_all(signal.SIGKILL)
                if cg.frozen():
                    cg.thaw()
                _wait_empty(cg, 10.0)
            cg.remove()
        rmtree(self._dir(container_id))

    def exec(self, container_id: str, process: dict[str, Any], stdio: Stdio) -> int:
        from dockyard.runtime import nsexec

        st = self._load(container_id)
        status = self._status(container_id, st)
        if status != "running":
            raise Conflict(f"container {container_id} is not running")
        if not process.get("args"):
            raise InvalidArgument("process.args must not be empty")
        proc = dict(st.get("process") or {})
        proc.update({k: v for k, v in process.items() if v is not None})
        if proc.get("terminal") and stdio.terminal_fd is None and stdio.console_socket is None:
            raise InvalidArgument("process.terminal is set but no terminal was given")
        cg = self._cgroup(st)
        prepare = nsexec.exec_prepare(st["pid"], cg)
        body = nsexec.exec_body(proc, stdio, _saved_bpf(self._dir(container_id), st))
        try:
            pid_ns = _pid_ns(st["pid"])
            if pid_ns is False:  # a user namespace of its own to join first: the intermediate process's way
                return nsexec.spawn(prepare, body, "exec", nsexec.stdio_fds(stdio), cg)
            try:  # one fork: the process is born in the container's pid namespace
                return nsexec.spawn_in_pidns(pid_ns, prepare, body, "exec", nsexec.stdio_fds(stdio), cg)
            finally:
                if pid_ns is not None:
                    os.close(pid_ns)
        except nsexec.SpawnError as e:
            if e.pid:
                _kill_reap(e.pid)
            raise SystemFailure(str(e)) from None

    def stats(self, container_id: str) -> dict[str, Any]:
        cg = self._cgroup(self._load(container_id))
        if cg is None:
            raise Conflict(f"container {container_id} has no cgroup")
        return cg.stats()

    def oom_killed(self, container_id: str) -> bool:
        cg = self._cgroup(self._load(container_id))
        return cg.oom_killed() if cg is not None else False

    def list(self) -> list[str]:
        try:
            return sorted(os.listdir(self.state_root))
        except FileNotFoundError:
            return []


def _init_pid_ns(linux: dict[str, Any]) -> int | bool | None:
    """For create: True (a new pid namespace), an fd of the one given by path, None (ours), or False when the
    intermediate process's way is needed (a new user namespace, made before the rest; a path that fails, which
    that way reports)."""
    nss = linux.get("namespaces") or []
    if _ROOTLESS_ENV in os.environ or any(ns.get("type") == "user" for ns in nss):
        return False  # rootless: the engine's own user namespace may not make pid namespaces for its children
    for ns in nss:
        if ns.get("type") == "pid":
            if not ns.get("path"):
                return True
            try:
                return os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
    return None


def _pid_ns(pid: int) -> int | bool | None:
    """For exec into the container whose init is ``pid``: an fd of its pid namespace (None: it is ours), or
    False when it has a user namespace of its own (joined first, from an intermediate process) or the engine is
    rootless (an unprivileged caller may not join it for its children)."""
    if _ROOTLESS_ENV in os.environ:
        return False
    try:
        if os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino:
            return False
        p = f"/proc/{pid}/ns/pid"
        if os.stat(p).st_ino == os.stat("/proc/self/ns/pid").st_ino:
            return None
        return os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # the init has exited: the intermediate's way reports it
        return False


def _kill_quiet(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_reap(pid: int) -> None:
    _kill_quiet(pid)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _wait_empty(cg: Cgroup, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while cg.procs():
        if time.monotonic() > deadline:
            raise SystemFailure("timed out waiting for the container's processes to exit")
        time.sleep(0.002)


def _seccomp_bpf(state_dir: str, profile: dict[str, Any] | None) -> tuple[bytes, list[str]] | None:
    """Compile the container's filter here, in the runtime (the container process cannot load libseccomp past
    pivot_root), and keep it for exec as ``seccomp.bpf`` in the container's state directory."""
    if not profile:
        return None
    from dockyard.fsutil import atomic_write
    from dockyard.runtime import seccomp

    try:
        code = seccomp.compile_cached(profile)
    except seccomp.ProfileError as e:
        raise InvalidArgument(f"invalid seccomp profile: {e}") from None
    atomic_write(os.path.join(state_dir, "seccomp.bpf"), code, 0o600, durable=False)
    return code, list(profile.get("flags") or [])


def _saved_bpf(state_dir: str, st: dict[str, Any]) -> tuple[bytes, list[str]] | None:
    profile = st.get("seccomp")
    if not profile:
        return None
    try:
        with open(os.path.join(state_dir, "seccomp.bpf"), "rb") as f:
            return f.read(), list(profile.get("flags") or [])
    except FileNotFoundError:  # a container created before filters were kept
        from dockyard.runtime import seccomp

        return seccomp.compile_cached(profile), list(profile.get("flags") or [])
