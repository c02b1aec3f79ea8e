"""The other container verbs: pause/unpause, rename, restart, kill -s, top, stats, logs options, cp, diff,
commit, export, ps filters and formats, container prune."""

from __future__ import annotations

import io
import json
import tarfile
import time

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def sleeper(dy, busybox):
    cid = dy("run", "-d", "--name", "sleeper", "busybox", "sh", "-c",
             "trap 'echo got-usr1' USR1; while true; do sleep 0.1; done", check=True).stdout.strip()
    yield cid
    dy("rm", "-f", cid)


def test_pause_unpause(dy, sleeper):
    assert dy("pause", "sleeper").returncode == 0
    assert dy("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "sleeper").stdout.split() == ["paused",
                                                                                                 "true"]
    assert "(Paused)" in dy("ps").stdout
    p = dy("exec", "sleeper", "true")
    assert p.returncode != 0 and "is paused" in p.stderr
    assert dy("pause", "sleeper").returncode == 1  # already paused
    assert dy("unpause", "sleeper").returncode == 0
    assert dy("exec", "sleeper", "true").returncode == 0


def test_rename_and_kill_with_a_signal(dy, sleeper):
    assert dy("rename", "sleeper", "renamed").returncode == 0
    assert dy("inspect", "-f", "{{.Name}}", sleeper).stdout.strip() == "/renamed"
    assert dy("kill", "-s", "USR1", "renamed").returncode == 0
    wait_for(lambda: "got-usr1" in dy("logs", "renamed").stdout, what="trap output")
    assert dy("inspect", "-f", "{{.State.Running}}", "renamed").stdout.strip() == "true"
    assert dy("kill", "renamed").returncode == 0
    assert dy("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "renamed").stdout.split() == ["exited",
                                                                                                   "137"]
    p = dy("kill", "renamed")
    assert p.returncode == 1 and "is not running" in p.stderr
    dy("rename", "renamed", "sleeper")


def test_restart_gives_a_new_process(dy, sleeper):
    pid1 = dy("inspect", "-f", "{{.State.Pid}}", "sleeper").stdout.strip()
    assert dy("restart", "-t", "1", "sleeper").returncode == 0
    st = json.loads(dy("inspect", "sleeper").stdout)[0]["State"]
    assert st["Running"] and str(st["Pid"]) != pid1


def test_top_and_stats(dy, sleeper):
    top = dy("top", "sleeper").stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"]
    assert any("while true" in ln or "sh -c" in ln for ln in top[1:])
    st = dy("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", "sleeper").stdout.split()
    assert st[0] == "sleeper" and int(st[1]) >= 1 and st[2].endswith("B")


def test_logs_tail_timestamps_since_and_follow(dy, busybox):
    cid = dy("run", "-d", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 1; echo late",
             check=True).stdout.strip()
    wait_for(lambda: dy("logs", cid).stdout.count("line") == 5, what="five lines")
    assert dy("logs", "--tail", "2", cid).stdout == "line4\nline5\n"
    ts = dy("logs", "-t", "--tail", "1", cid).stdout.split()
    assert ts[0].endswith("Z") and "T" in ts[0] and ts[1] == "line5"
    assert dy("logs", "--since", "1h", cid).stdout.startswith("line1")
    assert dy("logs", "--since", str(int(time.time()) + 3600), cid).stdout == ""
    follow = dy("logs", "-f", cid, timeout=30).stdout  # returns once the container has exited
    assert follow.endswith("late\n")


def test_cp_both_ways_and_archives(dy, sleeper, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("from host\n")
    assert dy("cp", str(src), "sleeper:/tmp/").returncode == 0
    assert dy("exec", "sleeper", "cat", "/tmp/in.txt").stdout == "from host\n"
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_text("x")
    assert dy("cp", str(d), "sleeper:/tmp/").returncode == 0
    assert dy("exec", "sleeper", "cat", "/tmp/dir/sub/f").stdout == "x"
    out = tmp_path / "out"
    assert dy("cp", "sleeper:/etc/hostname", str(out)).returncode == 0
    assert out.read_text().strip() == sleeper[:12]
    # archives through stdin/stdout
    tar = dy("cp", "sleeper:/tmp/dir", "-", input=None)
    raw = tar.stdout.encode("latin-1") if isinstance(tar.stdout, str) else tar.stdout
    names = tarfile.open(fileobj=io.BytesIO(raw)).getnames()
    assert "dir/sub/f" in names
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("piped.txt")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"abc"))
    assert dy("cp", "-", "sleeper:/tmp", input=buf.getvalue()).returncode == 0
    assert dy("exec", "sleeper", "cat", "/tmp/piped.txt").stdout == "abc"
    p = dy("cp", "sleeper:/nope", str(tmp_path / "x"))
    assert p.returncode == 1 and "Could not find the file /nope" in p.stderr


def test_diff_commit_export(dy, busybox, tmp_path):
    cid = dy("run", "-d", "busybox", "sh", "-c", "echo new > /added; rm /etc/shadow; echo x >> /etc/group;"
             " sleep 60", check=True).stdout.strip()
    wait_for(lambda: "D /etc/shadow" in dy("diff", cid).stdout, what="diff")
    diff = dy("diff", cid).stdout.splitlines()
    assert "A /added" in diff and "C /etc/group" in diff and "D /etc/shadow" in diff
    iid = dy("commit", "-c", 'CMD ["cat", "/added"]', cid, "committed:1", check=True).stdout.strip()
    assert iid.startswith("sha256:")
    assert dy("run", "--rm", "committed:1").stdout == "new\n"
    assert dy("run", "--rm", "committed:1", "ls", "/etc/shadow").returncode != 0  # the deletion is in the layer
    hist = dy("history", "-q", "committed:1").stdout.split()
    assert len(hist) >= 2
    out = tmp_path / "export.tar"
    assert dy("export", "-o", str(out), cid).returncode == 0
    names = set(tarfile.open(out).getnames())
    assert "added" in names and "bin/busybox" in names and "etc/shadow" not in names
    dy("rm", "-f", cid, check=True)


def test_ps_filters_formats_and_prune(dy, busybox):
    a = dy("run", "-d", "--name", "run1", "-l", "tier=web", "busybox", "sleep", "60", check=True).stdout.strip()
    b = dy("run", "--name", "done1", "busybox", "sh", "-c", "exit 2").returncode
    assert b == 2
    assert dy("ps", "-q").stdout.split() == [a[:12]]
    assert set(dy("ps", "-aq").stdout.split()) == {a[:12], dy("inspect", "-f", "{{.Id}}", "done1").stdout[:12]}
    assert dy("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}").stdout == "done1\n"
    assert dy("ps", "-a", "--filter", "exited=2", "--format", "{{.Names}}").stdout == "done1\n"
    assert dy("ps", "--filter", "label=tier=web", "--format", "{{.Names}} {{.Status}}").stdout.startswith("run1 Up")
    assert dy("ps", "-a", "--filter", "name=run", "-q", "--no-trunc").stdout.strip() == a
    js = json.loads(dy("ps", "--format", "json").stdout.splitlines()[0])
    assert js["Names"] == "run1" and js["Image"] == "busybox"
    assert dy("ps", "-l", "--format", "{{.Names}}").stdout == "done1\n"
    p = dy("container", "prune", "-f")
    assert p.returncode == 0 and "Deleted Containers:" in p.stdout
    assert dy("ps", "-a", "--format", "{{.Names}}").stdout == "run1\n"
    dy("rm", "-f", a, check=True)


def test_ps_size_counts_the_writable_layer(dy, busybox):
    dy("run", "--name", "sized", "busybox", "sh", "-c", "head -c 12345 /dev/zero > /f", check=True)
    out = dy("ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}").stdout
    assert out.startswith("sized 12.3kB (virtual ")
    assert "SIZE" in dy("ps", "-a", "-s").stdout.splitlines()[0]
    info = json.loads(dy("inspect", "-s", "sized").stdout)[0]
    assert info["SizeRw"] == 12345 and info["SizeRootFs"] > 12345


def test_stats_streams_and_counts_network_bytes(dy, busybox, root):
    import subprocess

    from tests.conftest import DOCKYARD

    cid = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    p = subprocess.Popen([DOCKYARD, "--root", str(root), "stats", cid], stdout=subprocess.PIPE, text=True)
    try:
        lines = [p.stdout.readline() for _ in range(4)]  # two refreshes: header + row, twice
    finally:
        p.kill()
        p.wait()
    assert lines[0].startswith("CONTAINER ID") and lines[2].startswith("CONTAINER ID")
    assert lines[1].startswith(cid[:12]) and lines[3].startswith(cid[:12])
    gw = dy("inspect", "-f", "{{.NetworkSettings.Gateway}}", cid).stdout.strip()
    assert dy("exec", cid, "ping", "-c", "1", "-W", "2", gw).returncode == 0  # traffic to our own bridge
    rx, tx = dy("stats", "--no-stream", "--format", "{{.NetIO}}", cid).stdout.strip().split(" / ")
    assert rx != "0B" and tx != "0B"
    dy("rm", "-f", cid, check=True)
