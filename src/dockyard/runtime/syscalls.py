"""The one narrow module that talks to the kernel through ctypes.

Python 3.11's ``os`` lacks unshare, setns, mount, pivot_root, capset and friends. Every call the runtime makes that
changes namespaces, mounts, capabilities or process attributes goes through a function here, so mount and namespace
logic can be unit-tested against a recording fake with the same attribute names (see ``tests/unit``).

Each function raises ``OSError(errno, strerror)`` on failure, like the ``os`` module does.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# clone(2) / unshare(2) flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount(2) flags
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _check(ret: int, what: str = "") -> int:
    if ret == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), what or None)
    return ret


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)))


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)))


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)), target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), target)


def pivot_root(new_root: str, put_old: str) -> None:
    nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(38, "pivot_root: unsupported architecture")
    _check(_libc.syscall(ctypes.c_long(nr), _b(new_root), _b(put_old)), new_root)


def sethostname(name: str) -> None:
    b = name.encode()
    _check(_libc.sethostname(b, ctypes.c_size_t(len(b))))


def setdomainname(name: str) -> None:
    b = name.encode()
    _check(_libc.setdomainname(b, ctypes.c_size_t(len(b))))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)))


def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of the calling thread, as 64-bit masks."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(hdr), data))
    return tuple(data[0].__getattribute__(f) | (data[1].__getattribute__(f) << 32)  # type: ignore[return-value]
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(hdr), data))


def mknod(path: str, mode: int, device: int) -> None:
    os.mknod(path, mode, device)


def ioctl_lo_up() -> None:
    """Bring the loopback interface of the current network namespace up (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    import _socket
    import fcntl
    import struct

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM, 0)
    try:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s.fileno(), 0x8913, req))[1]  # SIOCGIFFLAGS
        if not flags & 1:  # IFF_UP
            fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sh22x", b"lo", flags | 1))  # SIOCSIFFLAGS
    finally:
        s.close()


# ----- bpf(2): cgroup device programs ---------------------------------------------------------------------------
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


def _bpf(cmd: int, attr: ctypes.Array) -> int:  # type: ignore[type-arg]
    nr = _SYS_BPF.get(os.uname().machine)
    if nr is None:
        raise OSError(38, "bpf: unsupported architecture")
    return _check(_libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr))))


def bpf_prog_load(prog_type: int, insns: bytes, license: str = "GPL", expected_attach_type: int = 0,
                  name: str = "") -> int:
    """Load a BPF program (``insns``: struct bpf_insn, 8 bytes each); returns its fd (close-on-exec). On a
    verifier refusal the OSError's message carries the verifier's log."""
    import struct

    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())

    def load(log: ctypes.Array | None) -> int:  # type: ignore[type-arg]
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=IIQQIIQII16sII", attr, 0, prog_type, len(insns) // 8, ctypes.addressof(code),
                         ctypes.addressof(lic), 1 if log else 0, len(log) if log else 0,
                         ctypes.addressof(log) if log else 0, 0, 0, name.encode()[:15], 0, expected_attach_type)
        return _bpf(BPF_PROG_LOAD, attr)

    try:
        return load(None)
    except OSError as e:
        if e.errno != 13 and e.errno != 22:  # EACCES/EINVAL: the verifier said no; get its log
            raise
    log = ctypes.create_string_buffer(65536)
    try:
        return load(log)
    except OSError as e:
        detail = log.value.decode(errors="replace").strip().splitlines()
        raise OSError(e.errno, f"{e.strerror}{': ' + detail[-1] if detail else ''}") from None


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """Attach ``prog_fd`` to a cgroup (``target_fd``: its directory opened O_RDONLY|O_DIRECTORY); it stays
    attached as long as the cgroup exists, after both fds are closed."""
    import struct

    attr = ctypes.create_string_buffer(128)
    struct.pack_into("=IIII", attr, 0, target_fd, prog_fd, attach_type, flags)
    _bpf(BPF_PROG_ATTACH, attr)
