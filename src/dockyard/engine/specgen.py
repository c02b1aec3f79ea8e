"""The one translator from run options + image config to an OCI runtime spec (config.json).

``run``, ``create``, ``build``'s RUN steps and the API all come here. The result is a plain dict following the OCI
runtime spec 1.0; the runtime (built-in or runc/crun) never sees images or Docker options.

Docker's rules applied here:
- command: ENTRYPOINT + CMD; arguments after the image replace CMD; ``--entrypoint`` replaces ENTRYPOINT and clears
  the image's CMD. An empty result is Docker's "no command specified" error.
- environment: image ENV, then ``-e``; PATH defaults to Docker's; HOSTNAME set; TERM=xterm with ``-t``.
- user: ``name|uid[:group|gid]`` resolved against the container's /etc/passwd and /etc/group.
- working dir: ``-w``, else the image's WORKDIR, else ``/``.
"""

from __future__ import annotations

import os
import signal
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.engine.options import ContainerSpec
from dockyard.errors import InvalidArgument
from dockyard.ids import MAX_ID, is_decimal, parse_id

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command(spec: ContainerSpec, image_config: dict[str, Any]) -> list[str]:
    if spec.entrypoint is not None:
        entry = list(spec.entrypoint)
        cmd = list(spec.cmd) if spec.cmd is not None else []
    else:
        entry = list(image_config.get("Entrypoint") or [])
        cmd = list(spec.cmd) if spec.cmd is not None else list(image_config.get("Cmd") or [])
    args = entry + cmd
    if not args:
        raise InvalidArgument("no command specified")
    return args


def config_env(spec: ContainerSpec, image_config: dict[str, Any]) -> list[str]:
    """A container's ``Config.Env`` as Docker records it: the ``-e`` values first, then each entry of the image's
    Env whose name ``-e`` does not set. PATH and HOSTNAME are not added here: they are the runtime's defaults."""
    user = [e for e in spec.env if "=" in e]  # "-e NAME" without a value was resolved (or dropped) by the CLI
    names = {e.partition("=")[0] for e in user}
    return user + [e for e in image_config.get("Env") or [] if e.partition("=")[0] not in names]


def environment(spec: ContainerSpec, image_config: dict[str, Any], hostname: str) -> list[str]:
    """The process environment, as Docker's: PATH (default), HOSTNAME and with a tty TERM, each replaced in place
    by the container's ``Config.Env`` value of that name, then the rest of ``Config.Env`` in its order."""
    env: dict[str, str] = {"PATH": DEFAULT_PATH.split("=", 1)[1], "HOSTNAME": hostname}
    if spec.tty:
        env["TERM"] = "xterm"
    for item in config_env(spec, image_config):
        k, _, v = item.partition("=")
        env[k] = v
    return [f"{k}={v}" for k, v in env.items()]


def _read_db(rootfs: str, name: str) -> list[list[str]]:
    """/etc/passwd or /etc/group of the image, resolved inside its root (a link to a host file reads the image's
    own path of that name); a device, fifo or file over 4 MiB counts as absent, as a missing file does."""
    from dockyard.rootpath import open_root, read_regular

    try:
        rfd = open_root(rootfs)
        try:
            data = read_regular(rfd, f"/etc/{name}")
        finally:
            os.close(rfd)
    except OSError:
        return []
    if data is None:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return [ln.split(":") for ln in lines if ln.strip() and not ln.startswith("#")]


def resolve_user(user: str, rootfs: str) -> dict[str, Any]:
    """``name|uid[:group|gid]`` -> OCI process.user, with supplementary groups from /etc/group."""
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = _read_db(rootfs, "passwd")
    uid: int | None = None
    gid: int | None = None
    username = ""
    home = "/"
    for ent in passwd:
        # an entry of the image's file with a malformed or out-of-range id is skipped, as libc does
        if (len(ent) >= 4 and (ent[0] == name or (is_decimal(name) and ent[2] == name))
                and is_decimal(ent[2]) and is_decimal(ent[3]) and max(int(ent[2]), int(ent[3])) <= MAX_ID):
            uid, gid, username = int(ent[2]), int(ent[3]), ent[0]
            home = ent[5] if len(ent) > 5 and ent[5] else "/"
            break
    if uid is None:
        if not is_decimal(name):
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = parse_id(name), 0
    groups = _read_db(rootfs, "group")
    if group:
        if is_decimal(group):
            gid = parse_id(group, "group")
        else:
            match = [g for g in groups
                     if len(g) >= 3 and g[0] == group and is_decimal(g[2]) and int(g[2]) <= MAX_ID]
            if not match:
                raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
            gid = int(match[0][2])
    # as Docker: the primary group first, then (only when no group was named) every group of /etc/group that
    # lists the user by name, in the file's order
    extra = [gid or 0]
    if not group:
        for g in groups:
            if (len(g) >= 4 and username and username in g[3].split(",") and is_decimal(g[2])
                    and int(g[2]) <= MAX_ID and int(g[2]) not in extra):
                extra.append(int(g[2]))
    return {"uid": uid, "gid": gid or 0, "additionalGids": extra, "home": home}


def stop_signal(spec: ContainerSpec, image_config: dict[str, Any]) -> int:
    return parse_signal(spec.stop_signal or image_config.get("StopSignal") or "SIGTERM")


def parse_signal(s: str | int) -> int:
    if isinstance(s, int) or (str(s).isascii() and str(s).isdigit()):
        if not 0 < int(s) <= 64:  # SIGRTMAX: a number from an image's StopSignal is not trusted either
            raise InvalidArgument(f"Invalid signal: {s}")
        return int(s)
    name = str(s).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {s}") from None


def _mounts(spec: ContainerSpec, cdir: str) -> list[dict[str, Any]]:
    from dockyard.runtime import defaults

    mounts = defaults.default_mounts(spec.shm_size)
    if spec.privileged:
        for m in mounts:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    # per-container files Docker bind-mounts into every container
    for name in ("resolv.conf", "hostname", "hosts"):
        mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": os.path.join(cdir, name),
                       "options": ["rbind", "rprivate"] + (["ro"] if spec.read_only else [])})
    user: list[dict[str, Any]] = []
    for path, opts in spec.tmpfs.items():
        o = ["nosuid", "nodev", "noexec"] if not opts else [x for x in opts.split(",") if x]
        user.append({"destination": path, "type": "tmpfs", "source": "tmpfs", "options": o})
    root = os.path.dirname(os.path.dirname(cdir))  # cdir is ROOT/containers/<id>
    for ms in spec.mounts:
        ro = ["ro"] if ms.readonly else []
        if ms.type == "tmpfs":
            user.append({"destination": ms.target, "type": "tmpfs", "source": "tmpfs",
                         "options": ["nosuid", "nodev", "noexec"] + ro + ms.options})
        elif ms.type == "volume":
            from dockyard.volumes.attach import source

            copy_from = None
            if not ms.nocopy:
                from dockyard.engine.fspath import secure_join

                copy_from = secure_join(os.path.join(cdir, "rootfs"), ms.target)
            user.append({"destination": ms.target, "type": "bind",
                         "source": source(root, ms.source, copy_from),
                         "options": ["rbind"] + ro + (ms.options or ["rprivate"])})
        elif ms.type == "bind":
            user.append({"destination": ms.target, "type": "bind", "source": ms.source,
                         "options": ["rbind"] + ro + (ms.options or ["rprivate"])})
    # parents before children, as Docker sorts them: /data before /data/logs
    user.sort(key=lambda m: len([p for p in m["destination"].split("/") if p]))
    return mounts + user


def _all_caps() -> list[str]:
    """Every capability this process may hand on: the kernel's, less what our own bounding set lacks (a sandboxed
    host without CAP_SYS_RESOURCE, say), so that --privileged and --cap-add ALL cannot ask for the impossible."""
    from dockyard.runtime.caps import CAP_NAMES

    try:
        with open("/proc/self/status") as f:
            bnd = next(int(ln.split()[1], 16) for ln in f if ln.startswith("CapBnd:"))
    except (OSError, StopIteration):
        return list(CAP_NAMES)
    return [c for i, c in enumerate(CAP_NAMES) if bnd >> i & 1]


def _caps(spec: ContainerSpec) -> list[str]:
    from dockyard.runtime import defaults
    from dockyard.runtime.caps import CAP_NAMES

    if spec.privileged:
        return _all_caps()
    caps = list(defaults.DEFAULT_CAPS)

    def norm(c: str) -> str:
        c = c.upper()
        return c if c.startswith("CAP_") or c == "ALL" else "CAP_" + c

    drop = [norm(c) for c in spec.cap_drop]
    add = [norm(c) for c in spec.cap_add]
    for c in add + drop:
        if c != "ALL" and c not in CAP_NAMES:
            raise InvalidArgument(f"invalid capability: {c}")
    if "ALL" in drop:
        caps = []
    caps = [c for c in caps if c not in drop]
    if "ALL" in add:
        caps = _all_caps()
    caps += [c for c in add if c != "ALL" and c not in caps]
    return caps


def capabilities(spec: ContainerSpec) -> list[str]:
    """The capability set (bounding = effective = permitted) of a container; raises InvalidArgument."""
    return _caps(spec)


_RLIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
            "rtprio", "rttime", "sigpending", "stack", "as"}


def _rlimits(spec: ContainerSpec) -> list[dict[str, Any]]:
    from dockyard.runtime import defaults

    out = [dict(r) for r in defaults.RLIMITS
           if r["type"].lower()[7:] not in {str(u["Name"]).lower() for u in spec.ulimits}]
    for u in spec.ulimits:
        name = str(u["Name"]).lower()
        if name not in _RLIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        out.append({"type": "RLIMIT_" + name.upper(), "soft": int(u["Soft"]), "hard": int(u["Hard"])})
    return out


def _resources(spec: ContainerSpec) -> dict[str, Any]:
    from dockyard.runtime import defaults

    r = spec.resources
    res: dict[str, Any] = {"devices": [dict(d) for d in defaults.DEVICE_RULES]}
    if spec.privileged:
        res["devices"] = [{"allow": True, "access": "rwm"}]
    mem: dict[str, Any] = {}
    if r.memory:
        mem["limit"] = r.memory
        if r.memory_swap == 0:
            mem["swap"] = r.memory * 2  # Docker: swap defaults to the same again (limit counts memory+swap)
        elif r.memory_swap > 0:
            mem["swap"] = r.memory_swap
        else:
            mem["swap"] = -1
    if r.memory_reservation:
        mem["reservation"] = r.memory_reservation
    if r.oom_kill_disable:
        mem["disableOOMKiller"] = True
    if mem:
        res["memory"] = mem
    cpu: dict[str, Any] = {}
    if r.nano_cpus:
        cpu["period"] = 100000
        cpu["quota"] = r.nano_cpus * 100000 // 1_000_000_000
    if r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
    if r.cpu_shares:
        cpu["shares"] = r.cpu_shares
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if cpu:
        res["cpu"] = cpu
    if r.pids_limit:
        res["pids"] = {"limit": r.pids_limit}
    return res


def check_sysctls(spec: ContainerSpec) -> None:
    """Refuse ``--sysctl`` values that are not namespaced (they would change the host), as Docker: the IPC ones
    (private IPC namespace: always here), net.* unless ``--network host`` or ``container:``, kernel.domainname."""
    if not spec.sysctls:
        return
    from dockyard.runtime.linux import sysctl_refusal

    private = {"ipc", "uts"}
    if spec.network_mode != "host":
        private.add("network")
    for k, v in spec.sysctls.items():
        if spec.network_mode.startswith("container:") and k.startswith("net."):
            raise InvalidArgument(f"invalid argument: --sysctl {k}: net.* sysctls cannot be set when the network "
                                  f"mode is container")
        why = sysctl_refusal(k, v, private, host_netns=spec.network_mode == "host")
        if why:
            raise InvalidArgument(f"invalid argument: {why}")


class _KeepId:
    """``--userns=keep-id[:uid=N,gid=N]`` (Podman's, rootless only): the container gets a user namespace nested in
    the rootless user's, where the user (uid 0 of the outer one) is ``uid`` (default: the user's own uid on the
    host) and every other id of the outer namespace keeps its order around it. The process runs as uid:gid unless
    ``--user`` or the image's USER says otherwise; an /etc/passwd and /etc/group entry for the user are added (a
    copy of the image's file with the line appended, bind-mounted) when the image has none, and $HOME is the
    user's home when it is mounted in, else the working directory, as Podman does."""

    def __init__(self, spec: ContainerSpec, rootfs: str, cdir: str, cwd: str, mounts: list[dict[str, Any]]) -> None:
        import grp
        import pwd

        from dockyard.engine.validate import keep_id_options

        opts = keep_id_options(spec.userns.partition(":")[2])
        host_uid, uid_size = _outer_map("uid_map")
        host_gid, gid_size = _outer_map("gid_map")
        self.uid, self.gid = opts.get("uid", host_uid), opts.get("gid", host_gid)
        self.uid_map, self.gid_map = _nested_map(self.uid, uid_size), _nested_map(self.gid, gid_size)
        try:
            pw = pwd.getpwuid(host_uid)
            self.name, gecos, host_home = pw.pw_name, pw.pw_gecos, pw.pw_dir
        except KeyError:
            self.name, gecos, host_home = str(host_uid), "", "/"
        try:
            group = grp.getgrgid(host_gid).gr_name
        except KeyError:
            group = self.name
        dests = {m["destination"].rstrip("/") or "/" for m in mounts}
        self.home = cwd
        d = host_home.rstrip("/")
        while d:
            if d in dests:
                self.home = host_home
                break
            d = d.rsplit("/", 1)[0]
        passwd = _read_db(rootfs, "passwd")
        if not any(len(e) >= 3 and (e[0] == self.name or e[2] == str(self.uid)) for e in passwd):
            line = f"{self.name}:*:{self.uid}:{self.gid}:{gecos}:{self.home}:/bin/sh\n"
            mounts.append(_etc_copy(rootfs, cdir, "passwd", line))
        else:
            self.name = ""  # the image's entry is used as it is
        groups = _read_db(rootfs, "group")
        if self.name and not any(len(g) >= 3 and g[2] == str(self.gid) for g in groups):
            mounts.append(_etc_copy(rootfs, cdir, "group", f"{group}:x:{self.gid}:{self.name}\n"))

    def user(self, who: str) -> str:
        """The user to run as: ``who`` (--user or the image's USER; the added name resolved), else uid:gid."""
        if not who:
            return f"{self.uid}:{self.gid}"
        name, sep, group = who.partition(":")
        return f"{self.uid}{sep}{group}" if self.name and name == self.name else who


def _outer_map(name: str) -> tuple[int, int]:
    """(the host id that 0 is, the number of ids) of this process's user namespace (the rootless user's)."""
    host, size = 0, 0
    with open(f"/proc/self/{name}") as f:
        for line in f:
            inside, outside, count = (int(x) for x in line.split())
            if inside == 0:
                host = outside
            size = max(size, inside + count)
    return host, size


def _nested_map(inner: int, size: int) -> list[dict[str, int]]:
    """OCI id mappings (ids as this namespace sees them) that make ``inner`` our 0 and keep the rest in order:
    0..inner-1 -> 1..inner, inner -> 0, inner+1.. -> inner+1.. (Podman's keep-id layout)."""
    out = []
    below = min(inner, size - 1)
    if below > 0:
        out.append({"containerID": 0, "hostID": 1, "size": below})
    out.append({"containerID": inner, "hostID": 0, "size": 1})
    if size - 1 - inner > 0:
        out.append({"containerID": inner + 1, "hostID": inner + 1, "size": size - 1 - inner})
    return out


def _etc_copy(rootfs: str, cdir: str, name: str, line: str) -> dict[str, Any]:
    """The image's /etc/<name> with ``line`` appended, written in the container's directory; its bind mount."""
    from dockyard.fsutil import atomic_write
    from dockyard.rootpath import open_root, read_regular

    data = b""
    try:
        rfd = open_root(rootfs)
        try:
            data = read_regular(rfd, f"/etc/{name}") or b""
        finally:
            os.close(rfd)
    except OSError:
        pass
    if data and not data.endswith(b"\n"):
        data += b"\n"
    path = os.path.join(cdir, name)
    atomic_write(path, data + line.encode(), 0o644, durable=False)
    return {"destination": f"/etc/{name}", "type": "bind", "source": path, "options": ["rbind", "rprivate"]}


INIT_PATH = "/sbin/docker-init"  # where Docker puts its init in the container


def init_binary() -> str:
    """The host path of dockyard-init (``run --init``), built into the package or the venv (``libexec``)."""
    from dockyard import libexec

    path = libexec.find("dockyard-init")
    if path is None:
        raise InvalidArgument(f"--init: {libexec.describe('dockyard-init')}")
    return path


def generate(spec: ContainerSpec, image_config: dict[str, Any], *, container_id: str, rootfs: str, cdir: str,
             hostname: str, netns: str | None = None) -> dict[str, Any]:
    """The OCI runtime spec for a container. ``rootfs`` must be mounted (users are resolved inside it)."""
    from dockyard.runtime import defaults

    args = command(spec, image_config)
    mounts = _mounts(spec, cdir)
    if spec.init:
        args = [INIT_PATH, "--"] + args
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": init_binary(),
                       "options": ["bind", "ro", "nosuid", "nodev"]})
    caps = _caps(spec)
    from dockyard.engine import security

    secopts = security.parse(spec.security_opt)
    nnp = secopts.no_new_privileges
    writable_cgroups = spec.privileged if secopts.writable_cgroups is None else secopts.writable_cgroups
    for m in mounts:
        if m["destination"] == "/sys/fs/cgroup":
            m["options"] = [o for o in m["options"] if o not in ("ro", "rw")] + ["rw" if writable_cgroups else "ro"]
    cwd = spec.workdir or image_config.get("WorkingDir") or "/"
    keep = _KeepId(spec, rootfs, cdir, cwd, mounts) if spec.userns.startswith("keep-id") else None
    who = spec.user or image_config.get("User") or ""
    if keep is not None:
        who = keep.user(who)
    user = resolve_user(who, rootfs)
    env = environment(spec, image_config, hostname)
    home = user.pop("home")
    if keep is not None and user["uid"] == keep.uid:
        home = keep.home
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")  # as Docker: from the user's passwd entry, else /
    process: dict[str, Any] = {
        "terminal": spec.tty,
        "user": user,
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": nnp,
        "oomScoreAdj": 0,
    }
    rl = _rlimits(spec)
    if rl:
        process["rlimits"] = rl
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
    if spec.network_mode != "host":
        namespaces.append({"type": "network", "path": netns} if netns else {"type": "network"})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": f"/dockyard/{container_id}",
        "resources": _resources(spec),
    }
    if keep is not None:  # a user namespace of its own, nested in the rootless user's (see docs/decisions.md)
        namespaces.insert(0, {"type": "user"})
        linux["uidMappings"], linux["gidMappings"] = keep.uid_map, keep.gid_map
    if not spec.privileged and not secopts.unmask_systempaths:
        linux["maskedPaths"] = list(defaults.MASKED_PATHS)
        linux["readonlyPaths"] = list(defaults.READONLY_PATHS)
    seccomp = security.seccomp_for(secopts, caps, spec.privileged)  # Docker's profile, resolved for these caps
    if seccomp is not None:
        linux["seccomp"] = seccomp
    if spec.sysctls:
        check_sysctls(spec)
        linux["sysctl"] = dict(spec.sysctls)
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": spec.read_only},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": {"org.dockyard.container.id": container_id},
    }
