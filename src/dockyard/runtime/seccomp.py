"""seccomp: the OCI spec's ``linux.seccomp`` compiled to a BPF filter by libseccomp, installed before execve.

Vocabulary (the OCI runtime spec's ``linux.seccomp``, which runc and crun read too):
- ``defaultAction`` (+ ``defaultErrnoRet``): what a syscall no rule matches gets. Docker's profile is an allow-list:
  ``SCMP_ACT_ERRNO`` with errno 1 (EPERM), and rules that allow.
- ``architectures``: the ABIs the filter covers (``SCMP_ARCH_X86_64``, ``SCMP_ARCH_X86``, ``SCMP_ARCH_X32`` on
  x86_64); a syscall made through an ABI not listed is killed (libseccomp's bad-architecture action).
- ``syscalls``: rules ``{names, action, errnoRet?, args?}``; ``args`` compare one argument each (``index``,
  ``value``, ``valueTwo``, ``op``: ``SCMP_CMP_EQ``... ``SCMP_CMP_MASKED_EQ``, which is ``arg & value == valueTwo``);
  the conditions of one rule must all hold (AND), except that several conditions on the same argument become one
  rule each (OR), as runc reads them.

Lifecycle: the runtime compiles the profile with :func:`compile_bpf` in the parent, before the container process
exists (past pivot_root the process cannot load a host library), and the container process installs the raw
program with :func:`install_bpf` after its mounts and before execve. A syscall name libseccomp does not know is
skipped in a rule whose action is the default or more permissive than it (it stays denied: fail closed); a name it
does not know in a rule that denies under a default that allows refuses the profile (it would fail open).
Syscalls newer than any the profile names get ENOSYS rather than the default errno (runc's "ENOSYS stub"), so that
a libc falls back from a syscall the filter cannot name to an older one instead of failing with EPERM.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from dockyard.rootless import run_dir as _run_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LIBSECCOMP = "libseccomp.so.2"

#: OCI action -> libseccomp action (the low 16 bits of ERRNO and TRACE carry the errno / trace message)
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}
#: how much each action lets through (a rule less permissive than the default denies)
_PERMISSIVE = {"SCMP_ACT_KILL": 0, "SCMP_ACT_KILL_THREAD": 0, "SCMP_ACT_KILL_PROCESS": 0, "SCMP_ACT_TRAP": 1,
               "SCMP_ACT_ERRNO": 1, "SCMP_ACT_TRACE": 2, "SCMP_ACT_LOG": 3, "SCMP_ACT_ALLOW": 3}
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
       "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
#: OCI architecture -> libseccomp's name for it (seccomp_arch_resolve_name)
ARCHES = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32", "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_MIPS": "mips", "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32", "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32", "SCMP_ARCH_PPC": "ppc", "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_S390": "s390", "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc", "SCMP_ARCH_PARISC64": "parisc64", "SCMP_ARCH_RISCV64": "riscv64",
    "SCMP_ARCH_LOONGARCH64": "loongarch64",
}
#: seccomp(2) filter flags the built-in runtime passes on
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
#: the AUDIT_ARCH value and seccomp(2)'s number of the machines the ENOSYS stub and install() know
_NATIVE = {"x86_64": (0xC000003E, 317), "aarch64": (0xC00000B7, 277)}

_NR_SCMP_ERROR = -1
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, _SECCOMP_SET_MODE_FILTER = 22, 2, 1


class ProfileError(ValueError):
    """The profile cannot be compiled as written (unknown action, operator or architecture, a deny rule naming a
    syscall libseccomp does not know, ...)."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


_lib: Any = None


def _libseccomp() -> Any:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL(LIBSECCOMP, use_errno=True)
        except OSError:
            from dockyard import libexec

            raise ProfileError(libexec.missing_message(LIBSECCOMP)) from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib = lib
    return _lib


def _action(name: Any, errno_ret: Any, what: str) -> int:
    if name not in ACTIONS:
        raise ProfileError(f"unknown seccomp action {name!r} in {what}")
    act = ACTIONS[name]
    if name == "SCMP_ACT_ERRNO":
        act |= int(errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF
    elif name == "SCMP_ACT_TRACE":
        act |= int(errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return act


def _conditions(args: list[dict[str, Any]], name: str) -> list[list[_ArgCmp]]:
    """The rules (each a list of conditions, ANDed) for one syscall: several conditions on one argument are ORed."""
    conds = []
    for a in args:
        op = a.get("op")
        if op not in OPS:
            raise ProfileError(f"unknown seccomp operator {op!r} for {name}")
        index = int(a.get("index", 0))
        if not 0 <= index <= 5:
            raise ProfileError(f"seccomp argument index {index} out of range for {name}")
        conds.append(_ArgCmp(index, OPS[op], int(a.get("value", 0)) & (2**64 - 1),
                             int(a.get("valueTwo", 0)) & (2**64 - 1)))
    indexes = [c.arg for c in conds]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in conds]
    return [conds]


def compile_bpf(profile: dict[str, Any], machine: str | None = None) -> bytes:
    """The BPF program (``struct sock_filter`` bytes) for an OCI ``linux.seccomp``; raises ProfileError."""
    lib = _libseccomp()
    machine = machine or os.uname().machine
    default_name = profile.get("defaultAction")
    default = _action(default_name, profile.get("defaultErrnoRet"), "defaultAction")
    flags = profile.get("flags") or []
    for f in flags:
        if f not in FLAGS:
            raise ProfileError(f"unknown seccomp flag {f!r}")
    if profile.get("listenerPath"):
        raise ProfileError("seccomp notify (listenerPath) is not supported")
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise ProfileError("seccomp_init failed")
    try:
        for arch in profile.get("architectures") or []:
            if arch not in ARCHES:
                raise ProfileError(f"unknown seccomp architecture {arch!r}")
            token = lib.seccomp_arch_resolve_name(ARCHES[arch].encode())
            if token == 0:
                raise ProfileError(f"libseccomp does not know the architecture {arch}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -errno.EEXIST:
                raise ProfileError(f"cannot add architecture {arch}: {os.strerror(-rc)}")
        max_nr = -1
        for rule in profile.get("syscalls") or []:
            name_a = rule.get("action")
            act = _action(name_a, rule.get("errnoRet"), f"the rule for {rule.get('names')}")
            denies = _PERMISSIVE[name_a] < _PERMISSIVE[default_name]
            rules = _conditions(rule.get("args") or [], str(rule.get("names")))
            for name in rule.get("names") or []:
                nr = lib.seccomp_syscall_resolve_name(str(name).encode())
                if nr == _NR_SCMP_ERROR:
                    if denies:
                        raise ProfileError(f"unknown syscall {name!r} in a rule that denies it "
                                           f"(libseccomp does not know it: it would not be denied)")
                    continue  # not a syscall here, or newer than libseccomp: stays at the default (denied)
                max_nr = max(max_nr, nr)
                if act == default:
                    continue  # libseccomp refuses rules that repeat the default action; runc skips them too
                for conds in rules:
                    arr = (_ArgCmp * len(conds))(*conds) if conds else None
                    rc = lib.seccomp_rule_add_array(ctx, act, nr, len(conds), arr)
                    if rc < 0:
                        raise ProfileError(f"cannot add the seccomp rule for {name}: {os.strerror(-rc)}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise ProfileError(f"cannot export the seccomp filter: {os.strerror(-rc)}")
            size = os.lseek(fd, 0, os.SEEK_END)
            code = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    if (default & 0xFFFF0000) not in (ACTIONS["SCMP_ACT_ALLOW"], ACTIONS["SCMP_ACT_LOG"]) and max_nr >= 0:
        code = _enosys_stub(machine, max_nr) + code
    return code


#: compiled filters, by a hash of (profile, machine, the libseccomp file): compiling Docker's profile costs ~25 ms,
#: reading it back ~0.1 ms. Root-only; the directory is trusted only when it is ours and 0700.
CACHE_DIR = _run_dir() + "/seccomp"
_FORMAT = b"dockyard-seccomp-1"  # bump when compile_bpf's output changes for the same input
_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib")


def _cache_key(profile: dict[str, Any], machine: str) -> str:
    from dockyard import jsonc as json

    try:
        from _sha256 import sha256  # type: ignore[import-not-found]  # builtin: hashlib loads OpenSSL (~8 ms)
    except ImportError:
        from hashlib import sha256
    lib = ""
    for d in _LIB_DIRS:
        try:
            st = os.stat(os.path.join(d, LIBSECCOMP))
        except OSError:
            continue
        lib = f"{d}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        break
    h = sha256(_FORMAT)
    for part in (machine, lib, json.dumps(profile, sort_keys=True, separators=(",", ":"))):
        h.update(b"\0" + part.encode())
    return str(h.hexdigest())


def _trusted_dir(path: str) -> bool:
    try:
        os.makedirs(path, 0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


def compile_cached(profile: dict[str, Any], cache_dir: str = CACHE_DIR) -> bytes:
    """:func:`compile_bpf`, through a cache of compiled filters (a miss compiles and stores, atomically, 0600)."""
    machine = os.uname().machine
    if not _trusted_dir(cache_dir):
        return compile_bpf(profile, machine)
    path = os.path.join(cache_dir, _cache_key(profile, machine) + ".bpf")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        pass
    else:
        try:
            st = os.fstat(fd)
            code = os.read(fd, st.st_size + 1) if st.st_uid == os.geteuid() else b""
        finally:
            os.close(fd)
        if code and len(code) == st.st_size and len(code) % 8 == 0:
            return code
    code = compile_bpf(profile, machine)
    from dockyard.fsutil import atomic_write

    try:
        atomic_write(path, code, 0o600, durable=False)
    except OSError:
        pass
    return code


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _enosys_stub(machine: str, max_nr: int) -> bytes:
    """A prologue answering ENOSYS to native syscalls numbered above every syscall the profile names (they are
    newer than the profile or than libseccomp); anything else falls through to libseccomp's program."""
    if machine not in _NATIVE:
        return b""
    audit_arch = _NATIVE[machine][0]
    ld_w_abs, jeq, jgt, ret = 0x20, 0x15, 0x25, 0x06
    prog = [_ins(ld_w_abs, 4), _ins(jeq, audit_arch, jt=0, jf=4), _ins(ld_w_abs, 0)]
    if machine == "x86_64":  # the x32 ABI sets bit 30: leave those to libseccomp's program
        prog.append(_ins(jgt, 0x3FFFFFFF, jt=2, jf=0))
    else:
        prog.append(_ins(jeq, 0xFFFFFFFF, jt=2, jf=0))  # never true for a syscall number; keeps the layout
    prog.append(_ins(jgt, max_nr, jt=0, jf=1))
    prog.append(_ins(ret, ACTIONS["SCMP_ACT_ERRNO"] | errno.ENOSYS))
    return b"".join(prog)


def install_bpf(code: bytes, flags: list[str] | None = None) -> None:
    """Install a compiled filter on the calling thread (needs CAP_SYS_ADMIN or no_new_privs); raises OSError.
    Plain syscalls only: this runs in the container process, past pivot_root."""
    from dockyard.runtime import syscalls

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    if not code or len(code) % 8 or len(code) // 8 > 4096:
        raise OSError(errno.EINVAL, f"seccomp program of {len(code)} bytes")
    buf = ctypes.create_string_buffer(code, len(code))
    prog = SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    bits = 0
    for f in flags or []:
        bits |= FLAGS[f]
    if not bits:
        syscalls.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog))
        return
    machine = os.uname().machine
    if machine not in _NATIVE:
        raise OSError(errno.ENOTSUP, f"seccomp filter flags are not supported on {machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(ctypes.c_long(_NATIVE[machine][1]), ctypes.c_uint(_SECCOMP_SET_MODE_FILTER),
                    ctypes.c_uint(bits), ctypes.c_void_p(ctypes.addressof(prog))) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def install(profile: dict[str, Any]) -> None:
    """Compile and install ``profile`` on the calling thread (for a process that can still load libseccomp)."""
    install_bpf(compile_bpf(profile), profile.get("flags"))
