"""Helpers for runtime tests (used by tests/integration/test_runtime*.py and friends, not by the engine).

``make_busybox_rootfs(dir)`` builds a root filesystem from Debian's busybox-static (one symlink per applet);
``Harness`` writes bundles, runs containers through any runtime with captured output, and removes every container
(processes, cgroups, state) it made, even when a test fails.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from dockyard.runtime.base import Runtime, Stdio, get_runtime
from dockyard.runtime.defaults import default_spec

BUSYBOX = "/bin/busybox"


def make_busybox_rootfs(dest: str) -> str:
    os.makedirs(os.path.join(dest, "bin"), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(dest, "bin", "busybox"))
    import subprocess

    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(dest, "bin", a))
    for d in ("proc", "sys", "dev", "etc", "tmp", "root", "home", "usr/bin", "var"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    with open(os.path.join(dest, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
    with open(os.path.join(dest, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    with open(os.path.join(dest, "etc", "noexec"), "w") as f:
        f.write("not a program\n")
    return dest


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Harness:
    """One test's containers: bundles under ``tmp``, state under ``tmp/state``, cleaned by ``cleanup()``."""

    tmp: str
    rootfs_template: str
    runtime_name: str = "dockyard"
    ids: list[str] = field(default_factory=list)
    n: int = 0

    def __post_init__(self) -> None:
        from dockyard.runtime import syscalls

        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
        self.rt: Runtime = get_runtime(self.runtime_name, os.path.join(self.tmp, "state", "runtime"))
        self.tag = f"dyt{os.getpid()}x{int(time.monotonic() * 1000) % 100000}"

    def bundle(self, args: list[str], edit: Callable[[dict[str, Any]], None] | None = None,
               setup: Callable[[str], None] | None = None, **kw: Any) -> tuple[str, str]:
        """Write a bundle (a copy of the template rootfs, ``setup(rootfs)`` run on it, and a default spec
        passed through ``edit``); returns (container id to use, bundle dir)."""
        self.n += 1
        cid = f"{self.tag}-{self.n}"
        b = os.path.join(self.tmp, f"bundle{self.n}")
        os.makedirs(b)
        shutil.copytree(self.rootfs_template, os.path.join(b, "rootfs"), symlinks=True)
        if setup:
            setup(os.path.join(b, "rootfs"))
        kw.setdefault("cgroups_path", f"/dockyard-test/{cid}")
        spec = default_spec("rootfs", args, **kw)
        if edit:
            edit(spec)
        from dockyard import jsonc as json

        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(spec, f)
        return cid, b

    def create(self, args: list[str], edit: Callable[[dict[str, Any]], None] | None = None,
               stdin: int | None = None, setup: Callable[[str], None] | None = None,
               **kw: Any) -> tuple[str, int, str, str]:
        """Create (not start) a container; returns (id, pid, stdout path, stderr path)."""
        cid, b = self.bundle(args, edit, setup, **kw)
        out, err = os.path.join(b, "stdout"), os.path.join(b, "stderr")
        fo = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fe = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self.ids.append(cid)
            pid = self.rt.create(cid, b, Stdio(stdin, fo, fe))
        finally:
            os.close(fo)
            os.close(fe)
        return cid, pid, out, err

    def run(self, args: list[str], edit: Callable[[dict[str, Any]], None] | None = None,
            timeout: float = 30, setup: Callable[[str], None] | None = None, **kw: Any) -> Result:
        cid, pid, out, err = self.create(args, edit, setup=setup, **kw)
        self.rt.start(cid)
        code = wait(pid, timeout)
        self.rt.delete(cid, force=True)
        self.ids.remove(cid)
        return Result(code, _read(out), _read(err))

    def cleanup(self) -> None:
        for cid in reversed(self.ids):
            try:
                self.rt.delete(cid, force=True)
            except Exception:  # noqa: BLE001
                pass
        # reap whatever was reparented to us
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


def _read(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()


def wait(pid: int, timeout: float = 30) -> int:
    """waitpid with a deadline (SIGKILL and fail when it passes); returns the shell-style exit code."""
    fd = os.pidfd_open(pid)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        if not p.poll(int(timeout * 1000)):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutError(f"process {pid} did not exit within {timeout}s")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class CrunHybrid:
    """Context manager: let crun run on a cgroup v1 "hybrid" host (see ``ocibin.prepare_crun_hybrid``).

    The hierarchies it mounts stay mounted: unmounting a v1 hierarchy while any engine still has a cgroup in it
    leaves the controller stranded in an unmounted hierarchy (neither v1- nor v2-visible) until that cgroup is
    removed through a new mount, which no engine would do."""

    def __enter__(self) -> "CrunHybrid":
        from dockyard.runtime import ocibin

        self.made = ocibin.prepare_crun_hybrid()
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def runtime_available(name: str) -> str | None:
    """None when runtime ``name`` can be used here, else the reason to skip."""
    if name == "dockyard":
        return None
    return None if shutil.which(name) else f"{name} is not installed"
