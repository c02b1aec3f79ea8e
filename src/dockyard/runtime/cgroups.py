"""Control groups for containers, on cgroup v1 (incl. "hybrid" hosts) and on pure cgroup v2.

A container's cgroup is named by the spec's ``linux.cgroupsPath`` (e.g. ``/dockyard/<id>``): an absolute path is
taken from the root of each hierarchy, a relative one from the caller's own cgroup, as runc does. On v1 the same
path is created in every mounted hierarchy (memory, cpu, pids, ...; plus the cgroup2 mount of a hybrid host); on v2
it is one directory whose ancestors get the needed controllers enabled in ``cgroup.subtree_control``.

Speed note (measured on this kernel): moving a process between cgroups takes the global
``cgroup_threadgroup_rwsem`` for writing, which costs an RCU grace period (~10 ms) when no migration happened in
the last few milliseconds, so a lone ``run`` pays it once. A hierarchy mounted with the ``favordynmods`` option
(cgroup2 remount, or any v1 hierarchy, e.g. ``mount -t cgroup -o none,name=dockyard,favordynmods cgroup DIR``)
makes every migration ~0.1 ms, at a small cost to fork/exit; that is a host setting, left to the administrator.

``root`` (default ``/sys/fs/cgroup``) and ``self_cgroup`` (default ``/proc/self/cgroup``) may point to a fake tree
so that the layout logic is unit-testable without root.
"""

from __future__ import annotations

import errno
import os
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.errors import Conflict, InvalidArgument, from_oserror

ROOT = "/sys/fs/cgroup"
_UNLIMITED_V1 = 1 << 62


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _write(path: str, value: str | int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _set(path: str, value: str | int) -> None:
    try:
        _write(path, value)
    except OSError as e:
        raise from_oserror(f"cannot set {os.path.basename(path)} to {value}", e, hint="") from None


def is_v2(root: str = ROOT) -> bool:
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def hierarchies(root: str = ROOT) -> dict[str, str]:
    """Name -> mount directory of every hierarchy: ``{"": root}`` on v2; on v1 ``{"memory": ..., "cpu,cpuacct":
    ..., "systemd": ..., "unified": ...}`` (symlinked aliases such as ``cpuacct -> cpu,cpuacct`` skipped)."""
    if is_v2(root):
        return {"": root}
    out: dict[str, str] = {}
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return out
    for e in entries:
        if e.is_dir(follow_symlinks=False) and os.path.exists(os.path.join(e.path, "cgroup.procs")):
            out[e.name] = e.path
    return out


def own_paths(self_cgroup: str = "/proc/self/cgroup") -> dict[str, str]:
    """The caller's cgroup in each hierarchy, keyed like ``hierarchies`` keys (``name=systemd`` -> ``systemd``,
    the v2 entry -> ``""`` and ``"unified"``)."""
    out: dict[str, str] = {}
    try:
        text = _read(self_cgroup)
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        if ctrls == "":
            out[""] = out["unified"] = path
        else:
            out[ctrls.removeprefix("name=")] = path
            for c in ctrls.split(","):
                out.setdefault(c.removeprefix("name="), path)
    return out


class Cgroup:
    """One container's cgroup across all hierarchies."""

    def __init__(self, dirs: dict[str, str], v2: bool) -> None:
        self.dirs = dirs  # hierarchy name -> absolute directory of this cgroup
        self.v2 = v2

    # ----- naming -------------------------------------------------------------------------------------------
    @classmethod
    def for_path(cls, cgroups_path: str, root: str = ROOT, self_cgroup: str = "/proc/self/cgroup") -> "Cgroup":
        if ":" in cgroups_path:
            raise InvalidArgument(f"systemd cgroup paths are not supported: {cgroups_path}")
        norm = os.path.normpath("/" + cgroups_path)
        if norm == "/":
            raise InvalidArgument(f"invalid cgroup path: {cgroups_path!r}")
        hs = hierarchies(root)
        if not hs:
            raise InvalidArgument(f"no cgroup hierarchy mounted under {root}")
        own = own_paths(self_cgroup) if not cgroups_path.startswith("/") else {}
        dirs = {}
        for name, mnt in hs.items():
            base = own.get(name, "/") if own else "/"
            dirs[name] = os.path.normpath(mnt + "/" + base + "/" + norm)
        return cls(dirs, v2=("" in hs))

    def to_dict(self) -> dict[str, Any]:
        return {"dirs": self.dirs, "v2": self.v2}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Cgroup":
        return cls(dict(d["dirs"]), bool(d["v2"]))

    def _dir(self, *controllers: str) -> str | None:
        if self.v2:
            return self.dirs[""]
        for c in controllers:
            for name, d in self.dirs.items():
                if c in name.split(","):
                    return d
        return None

    # ----- lifecycle ----------------------------------------------------------------------------------------
    def create(self, resources: dict[str, Any] | None = None) -> None:
        """Create the directories and apply ``resources`` (OCI ``linux.resources``). On failure, removes what
        it created and raises."""
        try:
            for name, d in self.dirs.items():
                self._mkdirs(name, d)
            self.apply(resources or {})
        except BaseException:
            self.remove(timeout=1.0)
            raise

    def _mkdirs(self, name: str, d: str) -> None:
        missing = []
        p = d
        while not os.path.isdir(p):
            missing.append(p)
            p = os.path.dirname(p)
        for p in reversed(missing):
            try:
                os.mkdir(p, 0o755)
            except FileExistsError:
                pass
            except OSError as e:
                raise from_oserror(f"cannot create cgroup {p}", e) from None
            if self.v2:
                self._enable_controllers(os.path.dirname(p))
            elif "cpuset" in name.split(","):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    if not _read(os.path.join(p, f)):
                        _set(os.path.join(p, f), _read(os.path.join(os.path.dirname(p), f)))

    @staticmethod
    def _enable_controllers(parent: str) -> None:
        try:
            avail = _read(os.path.join(parent, "cgroup.controllers")).split()
            on = _read(os.path.join(parent, "cgroup.subtree_control")).split()
        except OSError:
            return
        want = [c for c in ("cpuset", "cpu", "io", "memory", "pids", "hugetlb") if c in avail and c not in on]
        if want:
            try:
                _write(os.path.join(parent, "cgroup.subtree_control"), " ".join("+" + c for c in want))
            except OSError:
                for c in want:  # one at a time: a controller busy elsewhere must not block the others
                    try:
                        _write(os.path.join(parent, "cgroup.subtree_control"), "+" + c)
                    except OSError:
                        pass

    def add(self, pid: int = 0) -> None:
        """Move ``pid`` (0: the caller) into this cgroup in every hierarchy."""
        for d in self.dirs.values():
            try:
                _write(os.path.join(d, "cgroup.procs"), pid)
            except OSError as e:
                raise from_oserror(f"cannot join cgroup {d}", e) from None

    # ----- joining at fork (the start path) -----------------------------------------------------------------
    # Writing a pid to ``cgroup.procs`` takes the global cgroup_threadgroup_rwsem for writing: an RCU grace period
    # (10-16 ms here) whenever no migration happened in the last few ms, i.e. once per lone ``run``/``exec``. Two
    # ways around it, used together by ``fork`` + ``enter``: a child born in its cgroup (clone3 CLONE_INTO_CGROUP,
    # the v2 hierarchy only, which on a hybrid host is the ``unified`` mount), and, on v1, writing 0 to ``tasks``,
    # which moves the calling thread without that lock (the kernel skips it for the caller's own thread); for a
    # process that has a single thread, as a freshly forked one, that is the same as moving the process.
    _born_in_dfl = False  # set in the child of ``fork`` when clone3 placed it in the v2 hierarchy's cgroup

    def _dfl(self) -> str | None:
        return self.dirs.get("") if self.v2 else self.dirs.get("unified")

    def fork(self) -> int:
        """``os.fork()``, with the child born in this cgroup of the v2 hierarchy when the kernel can (clone3
        CLONE_INTO_CGROUP); the child then calls ``enter`` for the rest."""
        d = self._dfl()
        if d is None or _clone3 is False:
            return os.fork()
        try:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return os.fork()  # ``enter`` reports why
        try:
            pid = _fork_into(fd)
        finally:
            os.close(fd)
        if pid is None:  # clone3 refused (old kernel, a cgroup that cannot take processes): the ordinary way
            return os.fork()
        if pid == 0:
            self._born_in_dfl = True
        return pid

    def enter(self) -> None:
        """Move the calling process, which must have a single thread (a child of ``fork``), into this cgroup in
        every hierarchy, cheaply where the kernel allows (see above)."""
        dfl = self._dfl()
        for name, d in self.dirs.items():
            if d == dfl:
                if self._born_in_dfl:
                    continue
                f = "cgroup.procs"
            else:
                f = "tasks"
            try:
                _write(os.path.join(d, f), 0)
            except OSError as e:
                raise from_oserror(f"cannot join cgroup {d}", e) from None

    def procs(self) -> list[int]:
        d = self._dir("pids", "memory", "freezer") or next(iter(self.dirs.values()))
        try:
            return [int(x) for x in _read(os.path.join(d, "cgroup.procs")).split()]
        except FileNotFoundError:
            return []

    def kill_all(self, sig: int) -> None:
        if self.v2 and sig == 9 and os.path.exists(os.path.join(self.dirs[""], "cgroup.kill")):
            _write(os.path.join(self.dirs[""], "cgroup.kill"), 1)
            return
        frozen = False
        if sig == 9:  # freeze first so that a fork bomb cannot outrun us
            try:
                self.freeze()
                frozen = True
            except Exception:
                pass
        for pid in self.procs():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if frozen:
            self.thaw()

    def remove(self, timeout: float = 5.0) -> None:
        """Remove the cgroup's directories (not its ancestors), retrying while they are busy."""
        deadline = time.monotonic() + timeout
        for d in self.dirs.values():
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise from_oserror(f"cannot remove cgroup {d}", e, hint="") from None
                    time.sleep(0.005)

    # ----- freezer ------------------------------------------------------------------------------------------
    def freeze(self, timeout: float = 5.0) -> None:
        self._freezer(True, timeout)

    def thaw(self, timeout: float = 5.0) -> None:
        self._freezer(False, timeout)

    def _freezer(self, on: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self.v2:
            d = self.dirs[""]
            _set(os.path.join(d, "cgroup.freeze"), 1 if on else 0)
            while self.frozen() != on:
                if time.monotonic() > deadline:
                    raise Conflict("timed out waiting for the container to " + ("freeze" if on else "thaw"))
                time.sleep(0.001)
            return
        d = self._dir("freezer")
        if d is None:
            raise InvalidArgument("the freezer cgroup controller is not available")
        _set(os.path.join(d, "freezer.state"), "FROZEN" if on else "THAWED")
        while _read(os.path.join(d, "freezer.state")) != ("FROZEN" if on else "THAWED"):
            if time.monotonic() > deadline:
                raise Conflict("timed out waiting for the container to " + ("freeze" if on else "thaw"))
            _set(os.path.join(d, "freezer.state"), "FROZEN" if on else "THAWED")
            time.sleep(0.001)

    def frozen(self) -> bool:
        try:
            if self.v2:
                for line in _read(os.path.join(self.dirs[""], "cgroup.events")).splitlines():
                    if line.startswith("frozen "):
                        return line.split()[1] == "1"
                return False
            d = self._dir("freezer")
            return d is not None and _read(os.path.join(d, "freezer.state")) in ("FROZEN", "FREEZING")
        except OSError:
            return False

    # ----- resources ----------------------------------------------------------------------------------------
    def apply(self, r: dict[str, Any]) -> None:
        if self.v2:
            self._apply_v2(r)
        else:
            self._apply_v1(r)

    def _apply_v1(self, r: dict[str, Any]) -> None:
        mem = r.get("memory") or {}
        d = self._dir("memory")
        if d and mem:
            if mem.get("limit"):
                _set(f"{d}/memory.limit_in_bytes", mem["limit"])
            if mem.get("swap") and os.path.exists(f"{d}/memory.memsw.limit_in_bytes"):
                _set(f"{d}/memory.memsw.limit_in_bytes", mem["swap"])
            if mem.get("reservation"):
                _set(f"{d}/memory.soft_limit_in_bytes", mem["reservation"])
            if mem.get("swappiness") is not None and 0 <= mem["swappiness"] <= 100:
                _set(f"{d}/memory.swappiness", mem["swappiness"])
            if mem.get("disableOOMKiller"):
                _set(f"{d}/memory.oom_control", 1)
        cpu = r.get("cpu") or {}
        d = self._dir("cpu")
        if d and cpu:
            if cpu.get("shares"):
                _set(f"{d}/cpu.shares", cpu["shares"])
            if cpu.get("period"):
                _set(f"{d}/cpu.cfs_period_us", cpu["period"])
            if cpu.get("quota"):
                _set(f"{d}/cpu.cfs_quota_us", cpu["quota"])
        d = self._dir("cpuset")
        if d:
            for k in ("cpus", "mems"):
                if cpu.get(k):
                    _set(f"{d}/cpuset.{k}", cpu[k])
        pids = r.get("pids") or {}
        d = self._dir("pids")
        if d and pids.get("limit") is not None:
            _set(f"{d}/pids.max", pids["limit"] if pids["limit"] > 0 else "max")
        bio = r.get("blockIO") or {}
        d = self._dir("blkio")
        if d and bio.get("weight") and os.path.exists(f"{d}/blkio.weight"):
            _set(f"{d}/blkio.weight", bio["weight"])
        d = self._dir("devices")
        if d and r.get("devices"):
            for rule in r["devices"]:
                _set(f"{d}/devices.{'allow' if rule.get('allow') else 'deny'}", device_rule(rule))

    def _apply_v2(self, r: dict[str, Any]) -> None:
        d = self.dirs[""]
        mem = r.get("memory") or {}
        limit = mem.get("limit")
        if limit:
            _set(f"{d}/memory.max", limit if limit > 0 else "max")
        swap = mem.get("swap")
        if swap and os.path.exists(f"{d}/memory.swap.max"):
            _set(f"{d}/memory.swap.max", "max" if swap < 0 else max(swap - (limit or 0), 0) if limit else swap)
        if mem.get("reservation"):
            _set(f"{d}/memory.low", mem["reservation"])
        if mem.get("disableOOMKiller") and os.path.exists(f"{d}/memory.oom.group"):
            pass  # v2 has no per-cgroup switch; runc ignores it too
        cpu = r.get("cpu") or {}
        if cpu.get("shares"):
            _set(f"{d}/cpu.weight", shares_to_weight(cpu["shares"]))
        if cpu.get("quota") or cpu.get("period"):
            q = cpu.get("quota") or 0
            _set(f"{d}/cpu.max", f"{q if q > 0 else 'max'} {cpu.get('period') or 100000}")
        for k in ("cpus", "mems"):
            if cpu.get(k):
                _set(f"{d}/cpuset.{k}", cpu[k])
        pids = r.get("pids") or {}
        if pids.get("limit") is not None:
            _set(f"{d}/pids.max", pids["limit"] if pids["limit"] > 0 else "max")
        bio = r.get("blockIO") or {}
        if bio.get("weight") and os.path.exists(f"{d}/io.weight"):
            _set(f"{d}/io.weight", f"default {1 + (bio['weight'] - 10) * 9999 // 990}")
        for k, v in (r.get("unified") or {}).items():
            if "/" in k or k.startswith("."):
                raise InvalidArgument(f"invalid cgroup file name: {k}")
            _set(f"{d}/{k}", v)
        if r.get("devices"):
            apply_device_rules(d, r["devices"])

    # ----- observation --------------------------------------------------------------------------------------
    def oom_killed(self) -> bool:
        """True when the kernel's OOM killer killed a process of this cgroup (read before ``remove``)."""
        try:
            if self.v2:
                text = _read(os.path.join(self.dirs[""], "memory.events"))
            else:
                d = self._dir("memory")
                if d is None:
                    return False
                text = _read(os.path.join(d, "memory.oom_control"))
        except OSError:
            return False
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v) > 0
        return False

    def stats(self) -> dict[str, Any]:
        """``{"memory": {"usage", "limit", "max_usage", "inactive_file"}, "cpu": {"usage_ns"},
        "pids": {"current", "limit"}, "io": {"read", "write"}}``; a limit of ``None`` means unlimited; missing
        values are 0. ``io`` is bytes read and written by the cgroup's processes (blkio on v1, io.stat on v2)."""
        mem: dict[str, Any] = {"usage": 0, "limit": None, "max_usage": 0, "inactive_file": 0}
        io = {"read": 0, "write": 0}
        cpu = {"usage_ns": 0}
        pids: dict[str, Any] = {"current": 0, "limit": None}

        def num(path: str | None) -> int | None:
            if path is None:
                return None
            try:
                v = _read(path)
            except OSError:
                return None
            if v == "max":
                return None
            n = int(v.split()[0])
            return None if n >= _UNLIMITED_V1 else n

        def stat_file(path: str | None) -> dict[str, int]:
            out: dict[str, int] = {}
            try:
                for line in _read(path or "").splitlines():
                    k, _, v = line.partition(" ")
                    out[k] = int(v)
            except (OSError, ValueError):
                pass
            return out

        if self.v2:
            d = self.dirs[""]
            mem["usage"] = num(f"{d}/memory.current") or 0
            mem["limit"] = num(f"{d}/memory.max")
            mem["max_usage"] = num(f"{d}/memory.peak") or 0
            mem["inactive_file"] = stat_file(f"{d}/memory.stat").get("inactive_file", 0)
            cpu["usage_ns"] = stat_file(f"{d}/cpu.stat").get("usage_usec", 0) * 1000
            pids["current"] = num(f"{d}/pids.current") or 0
            pids["limit"] = num(f"{d}/pids.max")
            try:
                for line in _read(f"{d}/io.stat").splitlines():  # "8:0 rbytes=4096 wbytes=0 ..."
                    for part in line.split()[1:]:
                        k, _, v = part.partition("=")
                        if k == "rbytes":
                            io["read"] += int(v)
                        elif k == "wbytes":
                            io["write"] += int(v)
            except (OSError, ValueError):
                pass
        else:
            m = self._dir("memory")
            if m:
                mem["usage"] = num(f"{m}/memory.usage_in_bytes") or 0
                mem["limit"] = num(f"{m}/memory.limit_in_bytes")
                mem["max_usage"] = num(f"{m}/memory.max_usage_in_bytes") or 0
                mem["inactive_file"] = stat_file(f"{m}/memory.stat").get("total_inactive_file", 0)
            c = self._dir("cpuacct")
            if c:
                cpu["usage_ns"] = num(f"{c}/cpuacct.usage") or 0
            p = self._dir("pids")
            if p:
                pids["current"] = num(f"{p}/pids.current") or 0
                pids["limit"] = num(f"{p}/pids.max")
            b = self._dir("blkio")
            if b:
                try:  # "8:0 Read 4096"
                    for line in _read(f"{b}/blkio.throttle.io_service_bytes_recursive").splitlines():
                        parts = line.split()
                        if len(parts) == 3 and parts[1] in ("Read", "Write"):
                            io["read" if parts[1] == "Read" else "write"] += int(parts[2])
                except (OSError, ValueError):
                    pass
        return {"memory": mem, "cpu": cpu, "pids": pids, "io": io}


_clone3: bool | None = None  # False once the kernel said it has no clone3 / CLONE_INTO_CGROUP
_CLONE_INTO_CGROUP = 0x200000000
_SYS_CLONE3 = 435  # the same number on every architecture (asm-generic)


def _fork_into(cgroup_fd: int) -> int | None:
    """fork(2) through clone3 with CLONE_INTO_CGROUP: the child starts in ``cgroup_fd``'s cgroup. Python's own
    fork hooks run around it, as ``os.fork`` runs them. Returns the pid (0 in the child) or None if refused."""
    global _clone3
    import ctypes

    class CloneArgs(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint64) for n in ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal",
                                                      "stack", "stack_size", "tls", "set_tid", "set_tid_size",
                                                      "cgroup")]

    args = CloneArgs(flags=_CLONE_INTO_CGROUP, exit_signal=17, cgroup=cgroup_fd)  # 17: SIGCHLD
    libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held across the call, as in os.fork
    libc.syscall.restype = ctypes.c_long
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = libc.syscall(ctypes.c_long(_SYS_CLONE3), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        if err in (errno.ENOSYS, errno.E2BIG, errno.EINVAL):
            _clone3 = False
        return None
    return int(pid)


def apply_device_rules(cgroup_dir: str, rules: list[dict[str, Any]]) -> None:
    """cgroup v2 has no devices controller: the rules become a BPF device program attached to the cgroup (see
    ``devfilter``), as runc and crun do. Without it a container with CAP_MKNOD could open any host device."""
    from dockyard.runtime import devfilter

    try:
        devfilter.attach(cgroup_dir, rules)
    except devfilter.DeviceRuleError as e:
        raise InvalidArgument(str(e)) from None
    except OSError as e:
        raise from_oserror(f"cannot apply the device rules to cgroup {cgroup_dir}", e, hint="") from None


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000], as runc converts."""
    if shares <= 0:
        return 100
    return 1 + ((max(2, min(shares, 262144)) - 2) * 9999) // 262142


def device_rule(rule: dict[str, Any]) -> str:
    """An OCI ``linux.resources.devices`` entry as a v1 ``devices.allow``/``devices.deny`` line."""
    t = rule.get("type") or "a"
    acc = rule.get("access") or "rwm"
    if t == "a":
        return "a"

    def n(v: Any) -> str:
        return "*" if v is None or v == -1 else str(int(v))

    return f"{t} {n(rule.get('major'))}:{n(rule.get('minor'))} {acc}"
