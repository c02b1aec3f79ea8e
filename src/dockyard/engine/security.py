"""``--security-opt`` and seccomp profiles: Docker's forms, checked at create time and turned into OCI by specgen.

Security options, as Docker's daemon reads them (``key=value``; ``key:value`` is Docker's deprecated spelling):
- ``seccomp=unconfined`` (no filter), ``seccomp=builtin`` (the default), ``seccomp=<profile JSON>``. The CLI reads
  ``seccomp=FILE`` and sends the file's JSON, as Docker's CLI does, so the engine and the API see the same form.
- ``no-new-privileges[=BOOL]``; ``writable-cgroups[=BOOL]``; ``systempaths=unconfined`` (no masked or read-only
  /proc and /sys paths).
- ``apparmor=PROFILE``: only ``unconfined`` where AppArmor is not enabled (nothing would confine the container).
- ``label=...``: SELinux labels; only ``label=disable`` (nothing is labelled: dockyard applies no SELinux labels).
Anything else is refused with Docker's ``invalid --security-opt`` message; no option is accepted and ignored.

Docker's seccomp profile format (``seccomp_default.json`` is Docker's own default profile, Apache-2.0, see
``seccomp_default.json.LICENSE``) adds to the OCI ``linux.seccomp`` conditions that are resolved once, when the
OCI spec is generated: ``archMap`` (the native architecture and its sub-architectures, e.g. x86_64 -> x86, x32),
and per rule ``includes``/``excludes`` on ``arches`` (libseccomp names: amd64, x86, x32, arm64...), ``caps`` (the
container's bounding set: CAP_SYS_ADMIN enables the mount family, CAP_SYS_PTRACE ptrace...) and ``minKernel``.
Example: with the default profile a default container gets ``clone`` only without namespace flags and ``clone3``
answers ENOSYS; ``--cap-add SYS_ADMIN`` allows both.
"""

from __future__ import annotations

import os

from dockyard import jsonc as json
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "seccomp_default.json")

#: machine (uname -m) -> (libseccomp's name used in includes/excludes.arches, the OCI architecture)
NATIVE = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "i686": ("x86", "SCMP_ARCH_X86"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"), "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"), "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"), "loongarch64": ("loong64", "SCMP_ARCH_LOONGARCH64"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
}
_ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
            "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_ALLOW"}
_OPS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ"}
_ARCHES = {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
           "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
           "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
           "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64"}
_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"}
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class SecurityOpts:
    """The parsed ``--security-opt`` list. ``seccomp``: "" (the default profile), "unconfined", or profile JSON."""

    def __init__(self) -> None:
        self.seccomp = ""
        self.no_new_privileges = False
        self.writable_cgroups: bool | None = None
        self.unmask_systempaths = False


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def _bool(opt: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgument(f"invalid --security-opt 2: {json.dumps(opt)}")


def parse(opts: list[str]) -> SecurityOpts:
    """Docker's ``--security-opt`` values -> SecurityOpts; raises InvalidArgument for what is not applied."""
    out = SecurityOpts()
    for opt in opts:
        if opt == "no-new-privileges":
            out.no_new_privileges = True
            continue
        if opt == "writable-cgroups":
            out.writable_cgroups = True
            continue
        if opt == "disable":
            continue  # label=disable: nothing is labelled
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        if not sep:
            raise InvalidArgument(f"invalid --security-opt 1: {json.dumps(opt)}")
        key, _, value = opt.partition(sep)
        if key == "seccomp":
            if not value:
                raise InvalidArgument("seccomp: an empty profile; use seccomp=unconfined for no filter")
            out.seccomp = "" if value == "builtin" else value
        elif key == "no-new-privileges":
            out.no_new_privileges = _bool(opt, value)
        elif key == "writable-cgroups":
            out.writable_cgroups = _bool(opt, value)
        elif key == "systempaths" and value == "unconfined":
            out.unmask_systempaths = True
        elif key == "apparmor":
            if value != "unconfined":
                why = ("dockyard does not load or apply AppArmor profiles" if apparmor_enabled()
                       else "AppArmor is not enabled on this host")
                raise InvalidArgument(f"--security-opt apparmor={value}: {why} (only apparmor=unconfined is accepted)")
        elif key == "label":
            if value != "disable":
                why = ("dockyard does not apply SELinux labels" if selinux_enabled()
                       else "SELinux is not enabled on this host")
                raise InvalidArgument(f"--security-opt label={value}: {why} (only label=disable is accepted)")
        else:
            raise InvalidArgument(f"invalid --security-opt 2: {json.dumps(opt)}")
    return out


# ----- Docker's seccomp profile format -------------------------------------------------------------------------
def load_profile(text: str) -> dict[str, Any]:
    """A Docker seccomp profile from its JSON text, checked (actions, operators, architectures, conditions)."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: not a JSON object")
    _check(profile)
    return profile


def _fail(msg: str) -> InvalidArgument:
    return InvalidArgument(f"invalid seccomp profile: {msg}")


def _strings(v: Any, what: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _fail(f"{what} must be a list of strings")
    return v


def _kernel(v: Any) -> tuple[int, int]:
    try:
        major, minor = str(v).split(".", 1)
        return int(major), int(minor)
    except ValueError:
        raise _fail(f"minKernel {json.dumps(v)}: not of the form X.Y") from None


def _check(p: dict[str, Any]) -> None:
    act = p.get("defaultAction")
    if act not in _ACTIONS:
        raise _fail(f"unknown defaultAction {json.dumps(act)}")
    if p.get("architectures") and p.get("archMap"):
        raise _fail("both 'architectures' and 'archMap' are specified, use either one")
    for a in _strings(p.get("architectures"), "architectures"):
        if a not in _ARCHES:
            raise _fail(f"unknown architecture {json.dumps(a)}")
    for m in p.get("archMap") or []:
        if not isinstance(m, dict):
            raise _fail("archMap entries must be objects")
        for a in [m.get("architecture")] + _strings(m.get("subArchitectures"), "subArchitectures"):
            if a not in _ARCHES:
                raise _fail(f"unknown architecture {json.dumps(a)}")
    for f in _strings(p.get("flags"), "flags"):
        if f not in _FLAGS:
            raise _fail(f"unknown flag {json.dumps(f)}")
    if p.get("listenerPath"):
        raise _fail("seccomp notify (listenerPath) is not supported")
    rules = p.get("syscalls") or []
    if not isinstance(rules, list):
        raise _fail("syscalls must be a list")
    for r in rules:
        if not isinstance(r, dict):
            raise _fail("syscalls entries must be objects")
        if r.get("name") and r.get("names"):
            raise _fail("both 'name' and 'names' are specified, use either one")
        names = [r["name"]] if r.get("name") else _strings(r.get("names"), "names")
        if not names:
            raise _fail("a syscall rule without names")
        if r.get("action") not in _ACTIONS:
            raise _fail(f"unknown action {json.dumps(r.get('action'))} for {names[0]}")
        if r.get("action") == "SCMP_ACT_NOTIFY":
            raise _fail("SCMP_ACT_NOTIFY is not supported")
        for a in r.get("args") or []:
            if not isinstance(a, dict) or a.get("op") not in _OPS:
                raise _fail(f"unknown operator {json.dumps(a.get('op') if isinstance(a, dict) else a)} "
                            f"for {names[0]}")
            if not isinstance(a.get("index", 0), int) or not 0 <= a.get("index", 0) <= 5:
                raise _fail(f"argument index {json.dumps(a.get('index'))} out of range for {names[0]}")
            for k in ("value", "valueTwo"):
                if not isinstance(a.get(k, 0), int) or not 0 <= a.get(k, 0) < 2**64:
                    raise _fail(f"argument {k} {json.dumps(a.get(k))} for {names[0]}: not a 64-bit unsigned number")
        for cond in ("includes", "excludes"):
            c = r.get(cond) or {}
            if not isinstance(c, dict):
                raise _fail(f"{cond} must be an object")
            _strings(c.get("arches"), f"{cond}.arches")
            _strings(c.get("caps"), f"{cond}.caps")
            if c.get("minKernel") is not None:
                _kernel(c["minKernel"])


_default: dict[str, Any] | None = None


def default_profile() -> dict[str, Any]:
    global _default
    if _default is None:
        with open(DEFAULT_PROFILE, encoding="utf-8") as f:
            _default = json.load(f)
    return _default


def _kernel_at_least(v: Any, release: str) -> bool:
    want = _kernel(v)
    try:
        have = tuple(int(x) for x in release.split("-", 1)[0].split(".")[:2])
    except ValueError:
        raise InvalidArgument(f"cannot parse the kernel version {release!r}") from None
    return have >= want


def resolve(profile: dict[str, Any], caps: list[str], machine: str | None = None,
            kernel: str | None = None) -> dict[str, Any] | None:
    """A Docker profile -> the OCI ``linux.seccomp`` of a container with bounding set ``caps`` on ``machine``
    (uname -m) running ``kernel`` (uname -r). None when the profile is empty (Docker: seccomp disabled)."""
    machine = machine or os.uname().machine
    kernel = kernel or os.uname().release
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    native, oci_arch = NATIVE.get(machine, (machine, ""))
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    for m in profile.get("archMap") or []:
        if m.get("architecture") == oci_arch:
            arches = [oci_arch] + list(m.get("subArchitectures") or [])
            break
    if arches:
        out["architectures"] = arches
    for k in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(k):
            out[k] = profile[k]
    rules = []
    for r in profile.get("syscalls") or []:
        exc = r.get("excludes") or {}
        if native in (exc.get("arches") or []):
            continue
        if any(c in caps for c in exc.get("caps") or []):
            continue
        if exc.get("minKernel") is not None and _kernel_at_least(exc["minKernel"], kernel):
            continue
        inc = r.get("includes") or {}
        if inc.get("arches") and native not in inc["arches"]:
            continue
        if not all(c in caps for c in inc.get("caps") or []):
            continue
        if inc.get("minKernel") is not None and not _kernel_at_least(inc["minKernel"], kernel):
            continue
        rule: dict[str, Any] = {"names": [r["name"]] if r.get("name") else list(r["names"]), "action": r["action"]}
        if r.get("errnoRet") is not None:
            rule["errnoRet"] = r["errnoRet"]
        if r.get("args"):
            rule["args"] = [{"index": a.get("index", 0), "value": a.get("value", 0),
                             "valueTwo": a.get("valueTwo", 0), "op": a["op"]} for a in r["args"]]
        rules.append(rule)
    out["syscalls"] = rules
    return out


def seccomp_for(opts: SecurityOpts, caps: list[str], privileged: bool) -> dict[str, Any] | None:
    """The OCI ``linux.seccomp`` of a container, as Docker decides it: none when unconfined, or when privileged
    without a profile of its own; the given profile; else Docker's default profile."""
    if opts.seccomp == "unconfined" or (privileged and not opts.seccomp):
        return None
    profile = load_profile(opts.seccomp) if opts.seccomp else default_profile()
    return resolve(profile, caps)


def check(security_opt: list[str], caps: list[str], privileged: bool, runtime: str = "dockyard") -> None:
    """Create-time check (before anything exists): the options parse, a given profile is well formed and, for a
    profile of the user's own, libseccomp can compile it (a deny rule naming an unknown syscall is refused)."""
    opts = parse(security_opt)
    if not opts.seccomp or opts.seccomp == "unconfined":
        return
    oci = seccomp_for(opts, caps, privileged)
    if oci is None:
        return
    from dockyard.runtime import seccomp as rt_seccomp

    try:
        rt_seccomp.compile_bpf(oci)
    except rt_seccomp.ProfileError as e:
        raise InvalidArgument(f"invalid seccomp profile: {e}") from None
