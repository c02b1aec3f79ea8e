"""Docker parity (issue 12), second part: warnings, diff, failed starts, exit codes, history, help, progress and
system dependencies, each as a Docker 28 user sees it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_publish_with_host_network_warns_that_ports_are_discarded(dy, busybox):
    warning = "WARNING: Published ports are discarded when using host network mode\n"
    for verb in ("create", "run"):
        extra = ["--rm"] if verb == "run" else []
        p = dy(verb, *extra, "--network", "host", "-p", "8080:80", "busybox", "true")
        assert p.returncode == 0, p.stderr
        assert p.stderr == warning, (verb, p.stderr)
    p = dy("run", "--rm", "--network", "host", "busybox", "true")
    assert p.returncode == 0 and p.stderr == ""


def test_diff_leaves_out_the_engines_own_mount_points(dy, busybox):
    cid = dy("run", "-d", "--network", "none", "busybox", "sleep", "60", check=True).stdout.strip()
    assert dy("diff", cid, check=True).stdout == ""
    dy("exec", cid, "sh", "-c", "echo x >> /etc/passwd; touch /new", check=True)
    assert dy("diff", cid, check=True).stdout == "C /etc\nC /etc/passwd\nA /new\n"
    # a volume's mount point is made in the container's layer and listed, as Docker lists it
    cid = dy("create", "--network", "none", "-v", "/data", "busybox", "true", check=True).stdout.strip()
    dy("start", "-a", cid, check=True)
    assert dy("diff", cid, check=True).stdout == "A /data\n"


def test_history_names_the_image_each_step_made(dy, busybox, tmp_path: Path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=1\nRUN echo hi > /x\nLABEL l=1\nRUN echo 2 > /y\n")
    final = dy("build", "-q", "-t", "h1", str(ctx), check=True).stdout.strip()
    rows = [ln.split("\t") for ln in dy("history", "--no-trunc", "--format", "{{.ID}}\t{{.CreatedBy}}", "h1",
                                        check=True).stdout.splitlines()]
    assert [r[0] for r in rows][0] == final and rows[0][1].startswith("RUN echo 2")
    assert rows[1][0] == "<missing>" and rows[1][1] == "LABEL l=1"
    mid = rows[2][0]
    assert rows[2][1].startswith("RUN echo hi") and mid.startswith("sha256:")
    # the image named on the row of "RUN echo hi" is the one that step made: its own last step is that RUN
    top = dy("history", "--no-trunc", "--format", "{{.ID}} {{.CreatedBy}}", mid, check=True).stdout.splitlines()[0]
    assert top.startswith(f"{mid} RUN echo hi")
    assert rows[3] == ["<missing>", "ENV A=1"]
    assert rows[4][0] == busybox


def test_a_container_whose_start_failed_stays_created_with_its_exit_code(dy, busybox):
    cid = dy("create", "--network", "none", "busybox", "no-such-command", check=True).stdout.strip()
    p = dy("start", cid)
    assert p.returncode == 1 and "executable file not found" in p.stderr
    state = json.loads(dy("inspect", cid, check=True).stdout)[0]["State"]
    assert (state["Status"], state["Running"], state["ExitCode"]) == ("created", False, 127), state
    assert "executable file not found" in state["Error"]
    ps = dy("ps", "-a", "--format", "{{.ID}} {{.Status}}", check=True).stdout
    assert ps == f"{cid[:12]} Created\n"
    p = dy("run", "--name", "r127", "--network", "none", "busybox", "/etc/passwd")
    assert p.returncode == 126
    assert dy("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "r127", check=True).stdout == "created 126\n"
    # it can be started again once it could run (here it still cannot: the same error, the same state)
    assert dy("start", "r127").returncode == 1


def test_exit_codes_as_the_docker_28_cli(dy, busybox):
    name = "taken"
    dy("create", "--name", name, "busybox", "true", check=True)
    cases = [
        (("create", "--pull", "never", "nosuchimage"), 1, "No such image"),
        (("create", "nosuchimage"), 1, "Unable to find image 'nosuchimage:latest' locally"),
        (("create", "--name", name, "busybox", "true"), 1, "is already in use"),
        (("exec", name, "true"), 1, "is not running"),
        (("exec", "nosuchcontainer", "true"), 1, "No such container"),
        (("run",), 1, "requires at least 1 argument"),
        (("create",), 1, "requires at least 1 argument"),
        (("tag", "busybox"), 1, "requires exactly 2 arguments"),
        (("run", "--rm", "--pull", "never", "nosuchimage"), 125, "No such image"),
        (("run", "--rm", "nosuchimage"), 125, "Unable to find image 'nosuchimage:latest' locally"),
        (("run", "--bogus", "busybox"), 125, "unknown flag"),
        (("create", "--bogus", "busybox"), 125, "unknown flag"),
        (("create", "-p", "nope", "busybox"), 125, "invalid containerPort"),
    ]
    for argv, code, text in cases:
        p = dy(*argv)
        assert (p.returncode, text in p.stderr) == (code, True), (argv, p.returncode, p.stderr)


def test_every_flag_in_help_has_a_description(dy):
    import re

    from dockyard.cli.main import MANAGEMENT, VERBS

    verbs = [[v] for v in VERBS if v != "completion"] + [[m, s] for m, subs in MANAGEMENT.items() for s in subs]
    line = re.compile(r"^  (?:-\w, |    )(--[\w-]+)(?: \w+)?\s{2,}(\S.*)$")
    for argv in verbs:
        p = dy(*argv, "--help")
        assert p.returncode == 0, (argv, p.stderr)
        opts = p.stdout.split("\nOptions:\n", 1)
        if len(opts) == 1:
            continue  # a verb without flags
        rows = [ln for ln in opts[1].splitlines() if ln.strip()]
        bad = [ln for ln in rows if not line.match(ln)]
        assert not bad, (argv, bad)
    out = dy("run", "--help", check=True).stdout
    assert re.search(r"\n  -e, --env list +Set environment variables\n", out)
    assert re.search(r'\n      --restart string +Restart policy to apply when a container exits \(default "no"\)\n', out)
    assert re.search(r"\n      --sig-proxy +Proxy received signals to the process \(default true\)\n", out)


def test_a_missing_system_dependency_is_one_line_naming_its_package(dy, root, busybox):
    import subprocess

    from tests.conftest import DOCKYARD

    # nft hidden: not on PATH, and its file in /usr/sbin covered (a private mount namespace, gone with the shell)
    script = ('mount --bind /dev/null "$(command -v nft || echo /usr/sbin/nft)" || exit 99; export PATH=/nonexistent; '
              '"$0" --root "$1" network create hidden-nft; echo "rc=$?"; "$0" --root "$1" info >/dev/null')
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, DOCKYARD, str(root)],
                       capture_output=True, text=True, timeout=60)
    want = "nft is not installed (needed for bridge networks and published ports): apt-get install nftables"
    assert p.stdout == "rc=1\n", p.stdout + p.stderr
    lines = p.stderr.splitlines()
    assert lines[0] == f"Error: {want}", p.stderr
    assert f"WARNING: {want}" in lines[1:], p.stderr  # info lists what is missing
    assert "hidden-nft" not in dy("network", "ls", check=True).stdout
    assert "nftables" not in dy("info", check=True).stderr  # here nft is installed
