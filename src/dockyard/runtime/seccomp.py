"""seccomp: the OCI spec's ``linux.seccomp`` compiled to a classic BPF filter and installed before execve.

Supported subset (what dockyard's default profile uses): ``defaultAction`` SCMP_ACT_ALLOW, and rules whose action
is SCMP_ACT_ERRNO (with ``errnoRet``) for whole syscalls, or for a syscall whose first argument has a flag set
(``args: [{"index": 0, "value": FLAG, "valueTwo": FLAG, "op": "SCMP_CMP_MASKED_EQ"}]``, one rule per flag, as
libseccomp reads them too: runc and crun get the same profile).
The filter checks the architecture first: a syscall made through another ABI (i386 ``int 0x80`` or x32 on x86_64)
fails with ENOSYS instead of slipping past the rules, as they are written for the native numbers only.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# syscall numbers of the names the default profile denies (x86_64 and the generic table aarch64 uses)
SYSCALLS = {
    "x86_64": {
        "acct": 163, "add_key": 248, "bpf": 321, "clock_adjtime": 305, "clock_settime": 227, "clone": 56,
        "clone3": 435, "create_module": 174, "delete_module": 176, "finit_module": 313, "init_module": 175,
        "get_kernel_syms": 177, "query_module": 178, "fanotify_init": 300, "kcmp": 312, "kexec_file_load": 320,
        "kexec_load": 246, "keyctl": 250, "request_key": 249, "lookup_dcookie": 212, "mount": 165, "umount2": 166,
        "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "name_to_handle_at": 303, "open_by_handle_at": 304, "perf_event_open": 298,
        "pivot_root": 155, "process_vm_readv": 310, "process_vm_writev": 311, "quotactl": 179, "quotactl_fd": 443,
        "reboot": 169, "setns": 308, "swapon": 167, "swapoff": 168, "sysfs": 139, "_sysctl": 156, "unshare": 272,
        "uselib": 134, "userfaultfd": 323, "ustat": 136, "nfsservctl": 180, "iopl": 172, "ioperm": 173,
        "syslog": 103, "settimeofday": 164, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    },
    "aarch64": {
        "acct": 89, "add_key": 217, "bpf": 280, "clock_adjtime": 266, "clock_settime": 112, "clone": 220,
        "clone3": 435, "delete_module": 106, "finit_module": 273, "init_module": 105, "fanotify_init": 262,
        "kcmp": 272, "kexec_file_load": 294, "kexec_load": 104, "keyctl": 219, "request_key": 218,
        "lookup_dcookie": 18, "mount": 40, "umount2": 39, "move_mount": 429, "open_tree": 428, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442, "name_to_handle_at": 264,
        "open_by_handle_at": 265, "perf_event_open": 241, "pivot_root": 41, "process_vm_readv": 270,
        "process_vm_writev": 271, "quotactl": 60, "quotactl_fd": 443, "reboot": 142, "setns": 268, "swapon": 224,
        "swapoff": 225, "unshare": 97, "userfaultfd": 282, "nfsservctl": 42, "syslog": 116, "settimeofday": 170,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    },
}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def compile_filter(profile: dict[str, Any], machine: str | None = None) -> bytes:
    """The BPF program (bytes of sock_filter) for an OCI seccomp profile, for this machine's ABI."""
    machine = machine or platform.machine()
    if machine not in SYSCALLS:
        raise OSError(errno.ENOTSUP, f"seccomp filters are not available on {machine}")
    table = SYSCALLS[machine]
    if profile.get("defaultAction", "SCMP_ACT_ALLOW") != "SCMP_ACT_ALLOW":
        raise ValueError("only defaultAction SCMP_ACT_ALLOW is supported")
    deny: dict[int, int] = {}       # nr -> errno
    masked: dict[int, tuple[int, int]] = {}  # nr -> (flag mask of arg 0, errno)
    for rule in profile.get("syscalls") or []:
        action = rule.get("action")
        if action == "SCMP_ACT_ALLOW":
            continue
        if action != "SCMP_ACT_ERRNO":
            raise ValueError(f"unsupported seccomp action {action}")
        err = int(rule.get("errnoRet", errno.EPERM))
        for name in rule.get("names") or []:
            nr = table.get(name)
            if nr is None:
                continue  # not a syscall on this architecture
            args = rule.get("args") or []
            if args:  # only "arg 0 has FLAG set" (MASKED_EQ with value == valueTwo); several rules OR together
                a = args[0]
                if a.get("index", 0) != 0 or a.get("op") != "SCMP_CMP_MASKED_EQ" or \
                        int(a["value"]) != int(a.get("valueTwo", a["value"])):
                    raise ValueError(f"unsupported seccomp argument rule for {name}")
                masked[nr] = (masked.get(nr, (0, err))[0] | int(a["value"]), err)
            else:
                deny[nr] = err
    # layout: arch check, nr load, one JEQ per rule, then the return blocks
    body: list[tuple[str, int, int]] = [("jeq", nr, i) for i, nr in enumerate(deny)]
    rets = [err for err in deny.values()]
    prog = [_ins(_LD_W_ABS, 4), None, _ins(_LD_W_ABS, 0)]  # arch; (jump to ENOSYS if foreign); nr
    if machine == "x86_64":
        prog.append(None)  # nr >= 0x40000000: x32 ABI -> ENOSYS
    n_checks = len(deny) + len(masked)
    # after the checks: [ALLOW] [masked blocks: ld arg0; jset mask -> errno; ALLOW] [errno rets...] [ENOSYS]
    masked_list = list(masked.items())
    checks_start = len(prog)
    allow_at = checks_start + n_checks
    masked_at = allow_at + 1
    errno_at = masked_at + 4 * len(masked_list)
    enosys_at = errno_at + len(rets) + 2 * len(masked_list)
    for i, (_, nr, r) in enumerate(body):
        here = checks_start + i
        prog.append(_ins(_JEQ, nr, jt=errno_at + r - here - 1))
    for j, (nr, _) in enumerate(masked_list):
        here = checks_start + len(body) + j
        prog.append(_ins(_JEQ, nr, jt=masked_at + 4 * j - here - 1))
    prog.append(_ins(_RET, _ALLOW))
    for j, (nr, (mask, err)) in enumerate(masked_list):
        base = masked_at + 4 * j
        err_ret = errno_at + len(rets) + 2 * j
        prog.append(_ins(_LD_W_ABS, 16))                                   # low 32 bits of arg 0
        prog.append(_ins(_JSET, mask, jt=err_ret - (base + 1) - 1))
        prog.append(_ins(_RET, _ALLOW))
        prog.append(_ins(_RET, _ALLOW))  # padding keeps every block 4 long
    for err in rets:
        prog.append(_ins(_RET, _ERRNO | err))
    for _, (mask, err) in masked_list:
        prog.append(_ins(_RET, _ERRNO | err))
        prog.append(_ins(_RET, _ERRNO | err))
    prog.append(_ins(_RET, _ERRNO | errno.ENOSYS))
    prog[1] = _ins(_JEQ, AUDIT_ARCH[machine], jt=0, jf=enosys_at - 1 - 1)
    if machine == "x86_64":
        prog[3] = _ins(_JGE, 0x40000000, jt=enosys_at - 3 - 1, jf=0)
    if any(p is None for p in prog) or len(prog) > 4096:
        raise ValueError("seccomp program assembly failed")
    for i, p in enumerate(prog):  # every jump must land inside the program
        code, jt, jf, _ = struct.unpack("HBBI", p)  # type: ignore[arg-type]
        if code in (_JEQ, _JGE, _JSET) and (i + 1 + max(jt, jf) >= len(prog)):
            raise ValueError("seccomp jump out of range")
    return b"".join(prog)  # type: ignore[arg-type]


def install(profile: dict[str, Any]) -> None:
    """Install the filter on the calling thread (needs CAP_SYS_ADMIN or no_new_privs); raises OSError."""
    code = compile_filter(profile)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(code, len(code))
    prog = SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    from dockyard.runtime import syscalls

    syscalls.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog))
