"""Foreign binaries through qemu-user and the kernel's binfmt_misc.

Vocabulary: a *platform* is ``os/arch[/variant]`` as in OCI (``linux/arm64``); this machine runs its own
architecture natively (and 386 on amd64). Any other Linux architecture runs when binfmt_misc has a *registration*
for its ELF ``e_machine``: the kernel then starts the registered interpreter (``qemu-aarch64``) with the binary.

    ensure_platform("linux/arm64")   # nothing if native or already registered; else registers qemu-aarch64
    runnable_platforms()             # ["linux/amd64", "linux/386", "linux/arm64", ...] (native + registered)

A registration is host configuration, like a loaded kernel module: dockyard adds a missing one from the
``/usr/lib/binfmt.d/qemu-*.conf`` files of Debian's ``qemu-user-static`` (with the ``F`` flag, so the kernel opens
the interpreter once at registration and it works inside containers' mount namespaces, whose roots do not hold
it), never changes or removes an existing one, and leaves what it added in place.
"""

from __future__ import annotations

import errno
import os

from dockyard.errors import DockyardError

__all__ = ["BINFMT_DIR", "EmulationUnavailable", "ensure_platform", "runnable_platforms", "registered_machines",
           "native_arches", "QEMU_NAMES", "host_arch"]

BINFMT_DIR = "/proc/sys/fs/binfmt_misc"
CONF_DIRS = ("/usr/lib/binfmt.d", "/etc/binfmt.d")
PACKAGE = "qemu-user-static"

QEMU_NAMES = {"arm64": "aarch64", "arm": "arm", "riscv64": "riscv64", "s390x": "s390x", "ppc64le": "ppc64le",
              "mips64le": "mips64el", "386": "i386", "amd64": "x86_64", "loong64": "loongarch64"}
"""OCI architecture -> qemu's name for it (``qemu-<name>``, ``/usr/lib/binfmt.d/qemu-<name>.conf``)."""

# (ELF e_machine, ELF class 1=32/2=64, data 1=little/2=big) -> OCI architecture
_ELF_ARCH = {(0xb7, 2, 1): "arm64", (0x28, 1, 1): "arm", (0xf3, 2, 1): "riscv64", (0x16, 2, 2): "s390x",
             (0x15, 2, 1): "ppc64le", (0x08, 2, 1): "mips64le", (0x03, 1, 1): "386", (0x3e, 2, 1): "amd64",
             (0x102, 2, 1): "loong64"}


class EmulationUnavailable(DockyardError):
    """A foreign platform cannot run here (no registration and no qemu-user-static to register)."""


def host_arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "i386": "386", "armv7l": "arm",
            "armv6l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


def native_arches() -> list[str]:
    """Architectures this kernel runs without emulation."""
    a = host_arch()
    return [a, "386"] if a == "amd64" else (["arm64", "arm"] if a == "arm64" else [a])


def _parse_magic(hexline: str) -> bytes:
    return bytes.fromhex(hexline.strip())


def _arch_of_magic(magic: bytes, offset: int) -> str | None:
    """The OCI architecture an ELF magic (as binfmt_misc shows it, from ``offset``) matches, or None."""
    full = bytes(offset) + magic
    if len(full) < 20 or full[:4] != b"\x7fELF":
        return None
    cls, data = full[4], full[5]
    machine = int.from_bytes(full[18:20], "little" if data == 1 else "big")
    return _ELF_ARCH.get((machine, cls, data))


def _mounted() -> bool:
    return os.path.exists(os.path.join(BINFMT_DIR, "register"))


def _mount() -> None:
    """Mount binfmt_misc at its place when nothing is (as systemd's proc-sys-fs-binfmt_misc.mount does)."""
    if _mounted():
        return
    from dockyard.runtime.syscalls import mount

    try:
        mount("binfmt_misc", BINFMT_DIR, "binfmt_misc", 0, None)
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise EmulationUnavailable(f"cannot mount binfmt_misc at {BINFMT_DIR}: {e.strerror}") from None


def registered_machines() -> dict[str, str]:
    """Enabled binfmt_misc registrations that run ELF binaries: OCI architecture -> registration name."""
    out: dict[str, str] = {}
    try:
        names = sorted(os.listdir(BINFMT_DIR))
    except OSError:
        return out
    for name in names:
        if name in ("register", "status"):
            continue
        try:
            with open(os.path.join(BINFMT_DIR, name)) as f:
                text = f.read()
        except OSError:
            continue
        fields = {}
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            fields[k] = v
        if text.splitlines()[:1] != ["enabled"] or "magic" not in fields:
            continue
        try:
            arch = _arch_of_magic(_parse_magic(fields["magic"]), int(fields.get("offset", "0") or 0))
        except ValueError:
            continue
        if arch is not None:
            out.setdefault(arch, name)
    return out


def runnable_platforms() -> list[str]:
    """``linux/<arch>`` for the native architectures, then each registered one (``buildx ls``'s list)."""
    arches = native_arches()
    if _mounted():
        arches += [a for a in sorted(registered_machines()) if a not in arches]
    return [f"linux/{a}" for a in arches]


def _conf(qemu: str) -> str | None:
    for d in CONF_DIRS:
        p = os.path.join(d, f"qemu-{qemu}.conf")
        if os.path.isfile(p):
            return p
    return None


def _registration(conf_path: str) -> bytes:
    """The line of a binfmt.d file, with the F (fix binary) flag added when it lacks it."""
    with open(conf_path, "rb") as f:
        line = next((ln.strip() for ln in f if ln.strip() and not ln.startswith(b"#")), b"")
    parts = line.split(line[:1]) if line else []  # ":name:type:offset:magic:mask:interpreter:flags"
    if len(parts) != 8 or parts[2] not in (b"M", b"E"):
        raise EmulationUnavailable(f"{conf_path}: not a binfmt_misc registration")
    if b"F" not in parts[7]:
        parts[7] += b"F"
    interp = parts[6].decode()
    if not os.path.isfile(interp):
        raise EmulationUnavailable(f"{interp} (named by {conf_path}) is missing: reinstall {PACKAGE}")
    return line[:1].join(parts)


def ensure_platform(platform: str) -> None:
    """Make ``platform`` (``linux/<arch>[/variant]``) runnable here, or raise EmulationUnavailable naming it and
    the package to install. Native and already registered architectures are left as they are."""
    os_, _, rest = platform.partition("/")
    arch = rest.split("/")[0]
    if os_ != "linux":
        raise EmulationUnavailable(f"platform {platform}: only linux platforms can run here")
    if arch in native_arches():
        return
    _mount()
    if arch in registered_machines():
        return
    qemu = QEMU_NAMES.get(arch)
    conf = _conf(qemu) if qemu else None
    if conf is None:
        hint = (f"install {PACKAGE} (apt-get install {PACKAGE}) to run it through qemu" if qemu
                else "no emulator is known for it")
        raise EmulationUnavailable(f"platform {platform} cannot run on this {host_arch()} host: {hint}")
    line = _registration(conf)
    try:
        fd = os.open(os.path.join(BINFMT_DIR, "register"), os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno != errno.EEXIST:  # EEXIST: registered meanwhile by someone else under this name
            raise EmulationUnavailable(f"platform {platform}: registering {conf} with binfmt_misc failed: "
                                       f"{e.strerror}") from None
    if arch not in registered_machines():
        raise EmulationUnavailable(f"platform {platform}: a binfmt_misc entry named qemu-{qemu} exists but is "
                                   "disabled or does not match (left as it is)")
