"""seccomp: Docker's profile format resolved to OCI (arch, caps, minKernel), --security-opt parsing, and the filter
libseccomp compiles from it, installed in a forked child of the test (no root needed: no_new_privs is set)."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform

import pytest

from dockyard.engine import security
from dockyard.errors import InvalidArgument
from dockyard.runtime import seccomp
from dockyard.runtime.defaults import DEFAULT_CAPS

X86 = platform.machine() == "x86_64"


def _names(oci, action="SCMP_ACT_ALLOW"):
    return {n for r in oci["syscalls"] if r["action"] == action and not r.get("args") for n in r["names"]}


# ----- resolution of Docker's format ---------------------------------------------------------------------------
def test_default_profile_is_dockers_allow_list():
    p = security.default_profile()
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    oci = security.resolve(p, list(DEFAULT_CAPS), machine="x86_64", kernel="6.1.0-18-amd64")
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and "archMap" not in oci
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = _names(oci)
    assert {"read", "write", "execve", "openat", "capset", "setuid"} <= allowed
    for denied in ("mount", "unshare", "setns", "keyctl", "add_key", "bpf", "reboot", "init_module",
                   "kexec_load", "open_by_handle_at", "io_uring_setup", "userfaultfd"):
        assert denied not in allowed, denied
    assert "ptrace" in allowed  # Docker allows it from kernel 4.8 on (minKernel)
    old = security.resolve(p, list(DEFAULT_CAPS), machine="x86_64", kernel="4.4.0-210-generic")
    assert "ptrace" not in _names(old)
    assert "arch_prctl" in allowed and "riscv_flush_icache" not in allowed and "set_tls" not in allowed
    clone = [r for r in oci["syscalls"] if r["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in oci["syscalls"]
    assert all("includes" not in r and "excludes" not in r for r in oci["syscalls"])


def test_capabilities_enable_their_syscalls():
    p = security.default_profile()
    admin = security.resolve(p, list(DEFAULT_CAPS) + ["CAP_SYS_ADMIN"], machine="x86_64", kernel="6.1")
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3"} <= _names(admin)
    assert not any(r["names"] == ["clone3"] and r["action"] == "SCMP_ACT_ERRNO" for r in admin["syscalls"])
    ptrace = security.resolve(p, list(DEFAULT_CAPS) + ["CAP_SYS_PTRACE"], machine="x86_64", kernel="6.1")
    assert {"ptrace", "process_vm_readv", "kcmp"} <= _names(ptrace) and "mount" not in _names(ptrace)


def test_min_kernel_and_arches():
    p = {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
         "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                      {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
                      {"name": "c", "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
                      {"names": ["d"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["arm64"]}}]}
    old = security.resolve(p, [], machine="aarch64", kernel="4.4.0-generic")
    assert _names(old) == {"b", "c"} and old["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    new = security.resolve(p, [], machine="x86_64", kernel="5.10.0-28-amd64")
    assert _names(new) == {"a", "d"} and "architectures" not in new


@pytest.mark.parametrize("text,msg", [
    ("{", "Decoding seccomp profile failed"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', "unknown defaultAction"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}', "unknown architecture"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]}',
     "unknown action"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]}', "unknown operator"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",'
     ' "includes": {"minKernel": "six"}}]}', "minKernel"),
])
def test_bad_profiles_are_refused(text, msg):
    with pytest.raises(InvalidArgument, match=msg):
        security.load_profile(text)


# ----- --security-opt ------------------------------------------------------------------------------------------
def test_security_opt_forms():
    o = security.parse(["no-new-privileges", "seccomp=unconfined", "label=disable", "apparmor=unconfined",
                        "systempaths=unconfined", "writable-cgroups=false"])
    assert o.no_new_privileges and o.seccomp == "unconfined" and o.unmask_systempaths
    assert o.writable_cgroups is False
    assert security.parse(["no-new-privileges:false", "seccomp=builtin"]).no_new_privileges is False
    assert security.parse(["seccomp=builtin"]).seccomp == ""
    for bad, msg in [("bogus", "invalid --security-opt 1"), ("foo=bar", "invalid --security-opt 2"),
                     ("no-new-privileges=maybe", "invalid --security-opt 2")]:
        with pytest.raises(InvalidArgument, match=msg):
            security.parse([bad])


@pytest.mark.skipif(security.apparmor_enabled(), reason="the host has AppArmor")
def test_apparmor_profile_refused_without_apparmor():
    with pytest.raises(InvalidArgument, match="AppArmor is not enabled on this host"):
        security.parse(["apparmor=docker-default"])


@pytest.mark.skipif(security.selinux_enabled(), reason="the host has SELinux")
def test_selinux_label_refused_without_selinux():
    with pytest.raises(InvalidArgument, match="SELinux is not enabled on this host"):
        security.parse(["label=type:svirt_apache_t"])


def test_privileged_is_unconfined_unless_a_profile_is_given():
    caps = list(DEFAULT_CAPS)
    assert security.seccomp_for(security.parse([]), caps, privileged=True) is None
    assert security.seccomp_for(security.parse(["seccomp=unconfined"]), caps, privileged=False) is None
    own = '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}'
    assert security.seccomp_for(security.parse(["seccomp=" + own]), caps, privileged=True)["syscalls"] == [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    assert security.seccomp_for(security.parse([]), caps, privileged=False)["defaultAction"] == "SCMP_ACT_ERRNO"


# ----- the compiled filter, installed in a child ---------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
NR = {"x86_64": {"unshare": 272, "keyctl": 250, "mount": 165, "clone3": 435, "getpid": 39, "future": 1000,
                 "x32_getpid": 0x40000000 | 39},
      "aarch64": {"unshare": 97, "keyctl": 219, "mount": 40, "clone3": 435, "getpid": 172, "future": 1000}}


def _in_filtered_child(profile, probe):
    """Fork; the child installs the compiled ``profile`` and writes probe()'s result as JSON to a pipe."""
    code = seccomp.compile_bpf(profile)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            _libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: installing then needs no capability
            seccomp.install_bpf(code, profile.get("flags"))
            os.write(w, json.dumps(probe()).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(out)


def _errno_of(nr, *args):
    ctypes.set_errno(0)
    rc = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return 0 if rc >= 0 else ctypes.get_errno()


@pytest.mark.skipif(platform.machine() not in NR, reason="syscall numbers of this machine not in the test")
def test_default_profile_filter_denies_and_allows():
    nr = NR[platform.machine()]
    oci = security.resolve(security.default_profile(), list(DEFAULT_CAPS))

    def probe():
        out = {k: _errno_of(nr[k], 0x10000000 if k == "unshare" else 0) for k in ("unshare", "clone3", "future")}
        out["keyctl"] = _errno_of(nr["keyctl"], 0, 0)
        out["mount"] = _errno_of(nr["mount"], 0, 0, 0)
        out["getpid"] = _errno_of(nr["getpid"])
        out["pid"] = os.getpid()
        out["read"] = len(open("/proc/self/status").read()) > 0
        return out

    got = _in_filtered_child(oci, probe)
    assert got["unshare"] == errno.EPERM and got["keyctl"] == errno.EPERM and got["mount"] == errno.EPERM
    assert got["clone3"] == errno.ENOSYS      # libcs fall back to clone, whose flags the filter reads
    assert got["future"] == errno.ENOSYS      # newer than the profile: ENOSYS (runc's stub), not EPERM
    assert got["getpid"] == 0 and got["pid"] > 0 and got["read"]


def test_custom_profile_denies_mkdir(tmp_path):
    profile = security.resolve(security.load_profile(json.dumps(
        {"defaultAction": "SCMP_ACT_ALLOW",
         "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES}]})),
        [])

    def probe():
        out = {}
        for name in ("a", "b"):
            try:
                os.mkdir(tmp_path / name)
                out[name] = 0
            except OSError as e:
                out[name] = e.errno
        (tmp_path / "file").write_text("x")  # other syscalls still work
        return out

    assert _in_filtered_child(profile, probe) == {"a": errno.EACCES, "b": errno.EACCES}
    assert not (tmp_path / "a").exists() and (tmp_path / "file").read_text() == "x"


def test_arguments_are_compared():
    # deny personality(0xffffffff) only (the query), other arguments pass
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM,
         "args": [{"index": 0, "value": 0xFFFFFFFF, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}

    def probe():
        ctypes.set_errno(0)
        q = _libc.personality(ctypes.c_ulong(0xFFFFFFFF))
        query = ctypes.get_errno() if q == -1 else 0
        return {"query": query, "linux": _libc.personality(ctypes.c_ulong(0))}  # PER_LINUX: allowed

    assert _in_filtered_child(profile, probe) == {"query": errno.EPERM, "linux": 0}


def test_unknown_syscall_fails_closed():
    # an allow rule naming an unknown syscall leaves it denied; a deny rule naming one refuses the profile
    allow = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["no_such_syscall", "read", "write", "exit", "exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"}]}
    assert seccomp.compile_bpf(allow)
    deny = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}]}
    with pytest.raises(seccomp.ProfileError, match="unknown syscall 'no_such_syscall'"):
        seccomp.compile_bpf(deny)
    with pytest.raises(InvalidArgument, match="unknown syscall"):
        security.check(["seccomp=" + json.dumps(deny)], list(DEFAULT_CAPS), privileged=False)


def test_compiled_filters_are_cached(tmp_path):
    oci = security.resolve(security.default_profile(), list(DEFAULT_CAPS))
    cache = tmp_path / "cache"
    code = seccomp.compile_cached(oci, str(cache))
    assert code == seccomp.compile_bpf(oci)
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700
    assert seccomp.compile_cached(oci, str(cache)) == code  # read back
    other = dict(oci, defaultErrnoRet=13)
    assert seccomp.compile_cached(other, str(cache)) != code and len(list(cache.iterdir())) == 2
    cache.chmod(0o755)  # a directory others may have written into is not trusted
    assert seccomp.compile_cached(oci, str(cache)) == code
