"""The runtime interface through an external OCI runtime binary (``runc``, ``crun``, or a path to one).

The bundle is not used as is: a copy of its ``config.json`` goes to ``<state_root>/<name>/bundles/<id>/`` with
``root.path`` made absolute, rlimits clamped to the host's hard limits (runc and crun fail every container when a
hard limit cannot be raised, e.g. without CAP_SYS_RESOURCE) and ``process.terminal`` turned off: the caller's pty
slave is passed as plain stdio, so the process has the terminal on 0/1/2 but not as its controlling tty (runc and
crun only hand out terminals they create, through ``--console-socket``).

Stats and OOM status are read from the container's cgroup directly (same ``cgroupsPath`` rules as runc and crun).

crun 1.8 refuses cgroup v1 "hybrid" hosts (a cgroup2 mount that holds a controller) with "cgroups in hybrid mode
not supported"; mounting that controller as its own v1 hierarchy fixes it:
``mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb`` (see ``prepare_crun_hybrid``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

from dockyard import jsonc as json
from dockyard.errors import Conflict, NotFound, SystemFailure
from dockyard.runtime.base import Stdio
from dockyard.runtime.cgroups import Cgroup


def clamp_rlimits(rlimits: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    import resource

    from dockyard.runtime.linux import RLIMITS

    out = []
    for r in rlimits or []:
        r = dict(r)
        res = RLIMITS.get(str(r.get("type", "")).upper())
        if res is not None:
            cur = resource.getrlimit(res)[1]
            if cur != resource.RLIM_INFINITY:
                r["hard"] = min(int(r.get("hard", cur)), cur)
                r["soft"] = min(int(r.get("soft", cur)), r["hard"])
        out.append(r)
    return out


class OCIBinaryRuntime:
    def __init__(self, binary: str, state_root: str = "/run/dockyard/runtime") -> None:
        path = binary if "/" in binary else shutil.which(binary)
        if not path or not os.access(path, os.X_OK):
            raise NotFound(f"OCI runtime {binary} not found")
        self.binary = path
        self.name = os.path.basename(path)
        self.base = os.path.join(os.path.dirname(state_root.rstrip("/")) or "/", f"runtime-{self.name}")
        self.root = os.path.join(self.base, "state")
        self.bundles = os.path.join(self.base, "bundles")

    def _run(self, *args: str, stdio: Stdio | None = None, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [self.binary, "--root", self.root, *args]
        kw: dict[str, Any] = {"stderr": subprocess.PIPE}
        if stdio is not None:
            kw["stdin"] = stdio.stdin if stdio.stdin is not None else subprocess.DEVNULL
            kw["stdout"] = stdio.stdout if stdio.stdout is not None else subprocess.DEVNULL
            # the container inherits runc's stderr: give it the container's, and read errors from the log
            kw["stderr"] = stdio.stderr if stdio.stderr is not None else subprocess.DEVNULL
        else:
            kw["stdout"] = subprocess.PIPE
        p = subprocess.run(cmd, **kw)
        if check and p.returncode != 0:
            raise self._error(args[0], p, args[-1])
        return p

    def _error(self, verb: str, p: subprocess.CompletedProcess, cid: str) -> Exception:
        msg = (p.stderr or b"").decode(errors="replace").strip() if isinstance(p.stderr, bytes) else ""
        if not msg:
            try:
                with open(os.path.join(self.bundles, cid, "log.json")) as f:
                    lines = [json.loads(x) for x in f if x.strip()]
                msg = next((x.get("msg", "") for x in reversed(lines) if x.get("level") == "error"), "")
            except (OSError, ValueError):
                pass
        msg = _last_message(msg) or f"{self.name} {verb} failed with status {p.returncode}"
        if "does not exist" in msg or "not found" in msg.lower() and verb != "create":
            return NotFound(msg)
        if "not running" in msg or "not stopped" in msg or "already exists" in msg or "exists" in msg:
            return Conflict(msg)
        return SystemFailure(msg)

    def create(self, container_id: str, bundle: str, stdio: Stdio) -> int:
        with _console_from_host(stdio) as st:
            return self._create(container_id, bundle, st)

    def _create(self, container_id: str, bundle: str, stdio: Stdio) -> int:
        bundle = os.path.abspath(bundle)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        root = spec.setdefault("root", {})
        root["path"] = os.path.join(bundle, root.get("path") or "rootfs")
        proc = spec.setdefault("process", {})
        proc["rlimits"] = clamp_rlimits(proc.get("rlimits"))
        terminal_fd = stdio.terminal_fd
        if terminal_fd is not None:
            proc["terminal"] = False
            stdio = Stdio(terminal_fd, terminal_fd, terminal_fd)
        linux = spec.setdefault("linux", {})
        linux.setdefault("cgroupsPath", f"/dockyard/{container_id}")
        d = os.path.join(self.bundles, container_id)
        if os.path.exists(os.path.join(self.root, container_id)):
            raise Conflict(f"container with id exists: {container_id}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d, 0o700)
        os.makedirs(self.root, 0o700, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(spec, f)
        with open(os.path.join(d, "cgroup.json"), "w") as f:
            json.dump(Cgroup.for_path(linux["cgroupsPath"]).to_dict(), f)
        pidfile = os.path.join(d, "pid")
        cmd = [self.binary, "--root", self.root, "--log", os.path.join(d, "log.json"), "--log-format", "json",
               "create", "--bundle", d, "--pid-file", pidfile, container_id]
        p = subprocess.run(cmd, stdin=stdio.stdin if stdio.stdin is not None else subprocess.DEVNULL,
                           stdout=stdio.stdout if stdio.stdout is not None else subprocess.DEVNULL,
                           stderr=stdio.stderr if stdio.stderr is not None else subprocess.DEVNULL)
        if p.returncode != 0:
            err = self._error("create", p, container_id)
            self._run("delete", "--force", container_id, check=False)
            shutil.rmtree(d, ignore_errors=True)
            raise SystemFailure(str(err))
        with open(pidfile) as f:
            return int(f.read().strip())

    def start(self, container_id: str) -> None:
        self._run("start", container_id)

    def state(self, container_id: str) -> dict[str, Any]:
        p = self._run("state", container_id)
        st = json.loads(p.stdout)
        if st.get("status") == "stopped":
            st["pid"] = 0
        return st

    def kill(self, container_id: str, sig: int, all: bool = False) -> None:
        self._run("kill", *(["--all"] if all else []), container_id, str(sig))

    def pause(self, container_id: str) -> None:
        self._run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._run("resume", container_id)

    def delete(self, container_id: str, force: bool = False) -> None:
        p = self._run("delete", *(["--force"] if force else []), container_id, check=False)
        if p.returncode != 0 and os.path.exists(os.path.join(self.root, container_id)):
            raise self._error("delete", p, container_id)
        shutil.rmtree(os.path.join(self.bundles, container_id), ignore_errors=True)

    def exec(self, container_id: str, process: dict[str, Any], stdio: Stdio) -> int:
        with _console_from_host(stdio) as st:
            return self._exec(container_id, process, st)

    def _exec(self, container_id: str, process: dict[str, Any], stdio: Stdio) -> int:
        import tempfile

        d = os.path.join(self.bundles, container_id)
        with open(os.path.join(d, "config.json")) as f:
            base = json.load(f).get("process") or {}
        proc = {k: v for k, v in base.items() if k not in ("args", "terminal", "consoleSize")}
        proc.update({k: v for k, v in process.items() if v is not None})
        proc["rlimits"] = clamp_rlimits(proc.get("rlimits"))
        proc.setdefault("cwd", "/")
        if stdio.terminal_fd is not None:
            stdio = Stdio(stdio.terminal_fd, stdio.terminal_fd, stdio.terminal_fd)
        proc["terminal"] = False
        fd, pfile = tempfile.mkstemp(dir=d, prefix="exec-", suffix=".json")
        pidfile = pfile[:-5] + ".pid"
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(proc, f)
            cmd = [self.binary, "--root", self.root, "--log", os.path.join(d, "log.json"), "--log-format", "json",
                   "exec", "--process", pfile, "--pid-file", pidfile, "--detach", container_id]
            p = subprocess.run(cmd, stdin=stdio.stdin if stdio.stdin is not None else subprocess.DEVNULL,
                               stdout=stdio.stdout if stdio.stdout is not None else subprocess.DEVNULL,
                               stderr=stdio.stderr if stdio.stderr is not None else subprocess.DEVNULL)
            if p.returncode != 0:
                raise SystemFailure(str(self._error("exec", p, container_id)))
            with open(pidfile) as f:
                return int(f.read().strip())
        finally:
            for x in (pfile, pidfile):
                try:
                    os.unlink(x)
                except FileNotFoundError:
                    pass

    def _cgroup(self, container_id: str) -> Cgroup:
        try:
            with open(os.path.join(self.bundles, container_id, "cgroup.json")) as f:
                return Cgroup.from_dict(json.load(f))
        except FileNotFoundError:
            raise NotFound(f"container {container_id} does not exist") from None

    def stats(self, container_id: str) -> dict[str, Any]:
        return self._cgroup(container_id).stats()

    def oom_killed(self, container_id: str) -> bool:
        return self._cgroup(container_id).oom_killed()


def _last_message(text: str) -> str:
    """runc/crun print logfmt or JSON lines; keep the last error message, one line."""
    for line in reversed([x for x in text.splitlines() if x.strip()]):
        if line.startswith("{"):
            try:
                return str(json.loads(line).get("msg", line))
            except ValueError:
                return line
        if 'msg="' in line:
            return line.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
        return line.strip()
    return ""


def hybrid_blockers(root: str = "/sys/fs/cgroup") -> list[str]:
    """Controllers held by the cgroup2 mount of a hybrid host (crun refuses to run while there are any)."""
    try:
        with open(os.path.join(root, "unified", "cgroup.controllers")) as f:
            return f.read().split()
    except OSError:
        return []


def prepare_crun_hybrid(root: str = "/sys/fs/cgroup") -> list[str]:
    """Mount each controller of a hybrid host's cgroup2 as its own v1 hierarchy; returns the mount points made."""
    from dockyard.runtime import syscalls as S

    made = []
    for c in hybrid_blockers(root):
        mp = os.path.join(root, c)
        os.makedirs(mp, exist_ok=True)
        S.mount("cgroup", mp, "cgroup", S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC, c)
        made.append(mp)
    return made


@contextlib.contextmanager
def _console_from_host(stdio: Stdio) -> Iterator[Stdio]:
    """A console socket asks for a terminal: runc/crun give theirs only through a socket path, so allocate a
    host pty, send its master to the caller and pass the slave on as the terminal (closed here afterwards)."""
    if stdio.console_socket is None:
        yield stdio
        return
    from dockyard.runtime.base import send_console

    master, slave = os.openpty()
    try:
        send_console(stdio.console_socket, master)
    finally:
        os.close(master)
    try:
        yield Stdio(stdio.stdin, stdio.stdout, stdio.stderr, terminal_fd=slave)
    finally:
        os.close(slave)
