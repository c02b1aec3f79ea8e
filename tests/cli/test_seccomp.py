"""--security-opt: Docker's default seccomp profile, seccomp=FILE through each runtime, and every other security
option applied or refused (never parsed and ignored)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from dockyard.engine import security

pytestmark = pytest.mark.e2e

NO_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def _run(dy, script, *flags):
    return dy("run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c", script)


@pytest.fixture
def crun_ready():
    """crun 1.8 refuses hybrid cgroups while the cgroup2 mount holds a controller (hugetlb here): mount it as its
    own v1 hierarchy, as /work/shared/PEERS.md describes, for the test; unmounted at teardown."""
    if shutil.which("crun") is None:
        pytest.fail("crun is not installed (scripts/deps.sh installs it)")
    unified = "/sys/fs/cgroup/unified/cgroup.controllers"
    target = "/sys/fs/cgroup/hugetlb"
    mounted = made = False
    try:
        with open(unified) as f:
            busy = "hugetlb" in f.read().split()
    except OSError:
        busy = False
    if busy and not os.path.ismount(target):
        if not os.path.isdir(target):
            os.mkdir(target)
            made = True
        subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", target], check=True)
        mounted = True
    yield
    if mounted:
        subprocess.run(["umount", "-l", target], check=False)
    if made:
        try:
            os.rmdir(target)
        except OSError:
            pass


@pytest.fixture
def no_mkdir(tmp_path):
    path = tmp_path / "no-mkdir.json"
    path.write_text(json.dumps(NO_MKDIR))
    return str(path)


def test_default_profile_denies_namespaces_and_mounts_but_runs_programs(dy, busybox):
    p = _run(dy, "grep Seccomp: /proc/self/status; unshare -U true && echo USERNS; unshare -m true && echo MNTNS;"
                 " mount -t tmpfs none /mnt && echo MOUNTED;"
                 " mkdir -p /tmp/a/b && ln -s b /tmp/a/c && ls /tmp/a | sort | tr '\\n' ' '; echo;"
                 " echo x | sed s/x/y/; date +%Y >/dev/null && echo DATE; ps -o pid | wc -l; echo done")
    assert p.returncode == 0, p.stderr
    assert "Seccomp:\t2" in p.stdout
    for escaped in ("USERNS", "MNTNS", "MOUNTED"):
        assert escaped not in p.stdout
    assert "b c \ny\nDATE\n" in p.stdout and p.stdout.endswith("done\n")
    assert "Operation not permitted" in p.stderr


@pytest.mark.parametrize("runtime", ["dockyard", "runc", "crun"])
def test_profile_file_applies_in_every_runtime(dy, busybox, no_mkdir, runtime, request):
    if runtime == "crun":
        request.getfixturevalue("crun_ready")
    elif runtime == "runc" and shutil.which("runc") is None:
        pytest.fail("runc is not installed (scripts/deps.sh installs it)")
    p = _run(dy, "mkdir /tmp/x && echo MADE; touch /tmp/file && echo TOUCHED", "--runtime", runtime,
             "--security-opt", f"seccomp={no_mkdir}")
    assert "MADE" not in p.stdout and "TOUCHED" in p.stdout, p.stderr
    assert "Operation not permitted" in p.stderr


def test_profile_file_also_holds_for_exec(dy, busybox, no_mkdir):
    cid = dy("run", "-d", "--network", "none", "--security-opt", f"seccomp={no_mkdir}", "busybox", "sleep", "60",
             check=True).stdout.strip()
    try:
        p = dy("exec", cid, "sh", "-c", "mkdir /tmp/y && echo MADE; echo done")
        assert "MADE" not in p.stdout and "done" in p.stdout
        info = json.loads(dy("inspect", cid).stdout)[0]
        assert info["HostConfig"]["SecurityOpt"][0].startswith('seccomp={"defaultAction"')  # as Docker shows it
    finally:
        dy("rm", "-f", cid)


@pytest.mark.parametrize("content,message", [
    (None, "opening seccomp profile ({path}) failed: open {path}: no such file or directory"),
    ("{not json", "compacting json for seccomp profile ({path}) failed"),
    ('{"defaultAction": "SCMP_ACT_SOMETIMES"}', 'invalid seccomp profile: unknown defaultAction "SCMP_ACT_SOMETIMES"'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}',
     'invalid seccomp profile: unknown architecture "SCMP_ARCH_Z80"'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}',
     'invalid seccomp profile: unknown operator "SCMP_CMP_ABOUT" for mkdir'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir_sometimes"], "action": "SCMP_ACT_ERRNO"}]}',
     "invalid seccomp profile: unknown syscall 'mkdir_sometimes' in a rule that denies it"),
])
def test_bad_profiles_exit_125_and_create_nothing(dy, busybox, tmp_path, content, message):
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content)
    for verb in ("run", "create"):
        p = dy(verb, "--network", "none", "--security-opt", f"seccomp={path}", "busybox", "true")
        assert p.returncode == 125
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and message.format(path=path) in lines[0], p.stderr
    assert dy("ps", "-a", "-q").stdout.strip() == ""


def test_unconfined_and_builtin(dy, busybox):
    p = _run(dy, "grep Seccomp: /proc/self/status; unshare -U true && echo USERNS",
             "--security-opt", "seccomp=unconfined")
    assert "Seccomp:\t0" in p.stdout and "USERNS" in p.stdout
    p = _run(dy, "grep Seccomp: /proc/self/status; unshare -U true && echo USERNS",
             "--security-opt", "seccomp=builtin")
    assert "Seccomp:\t2" in p.stdout and "USERNS" not in p.stdout


@pytest.mark.skipif(security.apparmor_enabled(), reason="the host has AppArmor")
def test_apparmor_and_selinux_labels_are_refused_not_ignored(dy, busybox):
    for opt, message in [("apparmor=docker-default", "AppArmor is not enabled on this host"),
                         ("label=type:container_t", "SELinux is not enabled on this host"),
                         ("bogus=1", 'invalid --security-opt 2: "bogus=1"')]:
        p = dy("run", "--rm", "--network", "none", "--security-opt", opt, "busybox", "true")
        assert p.returncode == 125 and message in p.stderr, (opt, p.stderr)
    assert dy("ps", "-a", "-q").stdout.strip() == ""
    p = _run(dy, "echo ok", "--security-opt", "apparmor=unconfined", "--security-opt", "label=disable")
    assert p.returncode == 0 and p.stdout == "ok\n", p.stderr


def test_other_security_options_are_applied(dy, busybox):
    nnp = "grep NoNewPrivs: /proc/self/status"
    assert "NoNewPrivs:\t1" in _run(dy, nnp, "--security-opt", "no-new-privileges").stdout
    assert "NoNewPrivs:\t0" in _run(dy, nnp, "--security-opt", "no-new-privileges=false").stdout
    cg = "grep ' /sys/fs/cgroup ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1"
    assert _run(dy, cg).stdout == "ro\n"
    assert _run(dy, cg, "--security-opt", "writable-cgroups=true").stdout == "rw\n"
    masked = "head -c 16 /proc/timer_list | wc -c"  # masked by default: /dev/null bound over it
    assert _run(dy, masked).stdout.strip() == "0"
    assert _run(dy, masked, "--security-opt", "systempaths=unconfined").stdout.strip() == "16"
