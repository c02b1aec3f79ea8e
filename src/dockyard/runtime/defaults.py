"""Docker's defaults for an OCI runtime spec, as constants, and a helper that builds a whole default spec.

The engine's specgen imports these constants; tests use ``default_spec`` to make bundles without an engine.
Values follow moby's ``oci/defaults.go`` (Docker 20.10+).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.0.2"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Docker's default capability set (CapEff 00000000a80425fb for root).
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]

READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

SHM_SIZE = 64 * 1024 * 1024


def default_mounts(shm_size: int = SHM_SIZE) -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]


def _dev(type_: str, major: int | None, minor: int | None, access: str = "rwm", allow: bool = True) -> dict:
    d: dict[str, Any] = {"allow": allow, "type": type_, "access": access}
    if major is not None:
        d["major"] = major
    if minor is not None:
        d["minor"] = minor
    return d


#: devices cgroup rules: deny everything, then allow what Docker allows.
DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    _dev("c", None, None, "m"), _dev("b", None, None, "m"),
    _dev("c", 1, 3), _dev("c", 1, 8), _dev("c", 1, 7), _dev("c", 5, 0), _dev("c", 1, 5), _dev("c", 1, 9),
    _dev("c", 136, None), _dev("c", 5, 2), _dev("c", 10, 200),
]

NAMESPACES = ["pid", "network", "ipc", "uts", "mount", "cgroup"]

#: rlimits Docker (through containerd) sets by default; the runtime clamps them to the host's hard limits.
RLIMITS = [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]


def default_spec(rootfs: str, args: list[str], *, env: list[str] | None = None, cwd: str = "/",
                 hostname: str = "", terminal: bool = False, uid: int = 0, gid: int = 0,
                 cgroups_path: str | None = None, readonly: bool = False,
                 resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Docker-like default OCI runtime spec for ``args`` run in the already-mounted ``rootfs``."""
    e = [f"PATH={DEFAULT_PATH}"]
    if hostname:
        e.append(f"HOSTNAME={hostname}")
    if terminal:
        e.append("TERM=xterm")
    e += env or []
    res: dict[str, Any] = {"devices": [dict(d) for d in DEVICE_RULES]}
    res.update(resources or {})
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": uid, "gid": gid},
            "args": list(args),
            "env": e,
            "cwd": cwd,
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [dict(r) for r in RLIMITS],
            "noNewPrivileges": False,
            "oomScoreAdj": 0,
        },
        "root": {"path": rootfs, "readonly": readonly},
        "hostname": hostname,
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [{"type": t} for t in NAMESPACES],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
            "resources": res,
        },
    }
    if cgroups_path:
        spec["linux"]["cgroupsPath"] = cgroups_path
    return spec
