"""Linux capabilities: names <-> numbers, and applying an OCI ``process.capabilities`` object."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.runtime import syscalls as _sys

CAP_NAMES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
CAP_NUMBERS = {n: i for i, n in enumerate(CAP_NAMES)}


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAP_NAMES) - 1


def mask(names: list[str] | None) -> int:
    """Bit mask of capability names (``CAP_`` prefix optional, case-insensitive); unknown names are skipped,
    as runc does with capabilities the kernel does not know."""
    m = 0
    for n in names or []:
        n = n.upper()
        if not n.startswith("CAP_"):
            n = "CAP_" + n
        i = CAP_NUMBERS.get(n)
        if i is not None:
            m |= 1 << i
    return m


def names(m: int) -> list[str]:
    return [n for i, n in enumerate(CAP_NAMES) if m >> i & 1]


def drop_bounding(caps: dict[str, Any] | None, sc: Any = _sys) -> None:
    """Drop from the bounding set every capability not listed in ``caps["bounding"]`` (needs CAP_SETPCAP)."""
    keep = mask((caps or {}).get("bounding"))
    for i in range(last_cap() + 1):
        if not keep >> i & 1:
            try:
                sc.prctl(_sys.PR_CAPBSET_DROP, i)
            except OSError as e:
                if e.errno != 22:  # EINVAL: capability unknown to this kernel
                    raise


def apply(caps: dict[str, Any] | None, sc: Any = _sys) -> None:
    """Set effective/permitted/inheritable, then ambient (which needs permitted and inheritable)."""
    caps = caps or {}
    top = (1 << (last_cap() + 1)) - 1
    eff, perm, inh = (mask(caps.get(k)) & top for k in ("effective", "permitted", "inheritable"))
    sc.capset(eff, perm | eff, inh)
    sc.prctl(_sys.PR_CAP_AMBIENT, _sys.PR_CAP_AMBIENT_CLEAR_ALL)
    amb = mask(caps.get("ambient")) & top
    for i in range(last_cap() + 1):
        if amb >> i & 1:
            sc.prctl(_sys.PR_CAP_AMBIENT, _sys.PR_CAP_AMBIENT_RAISE, i)
