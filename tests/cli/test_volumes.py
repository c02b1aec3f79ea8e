"""Volumes and mounts as a Docker user sees them: data that outlives containers, bind mounts, copy-up, mounts
cleaned up, bad input refused (issue 5)."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/mounts") as f:
        return [ln.split()[1] for ln in f if ln.split()[1].startswith(prefix)]


def volumes(dy) -> list[str]:
    return dy("volume", "ls", "-q", check=True).stdout.split()


@pytest.fixture
def seeded(dy, busybox) -> str:
    """An image whose /data holds files (owned by 1000:1000, mode 750, a symlink, a subdirectory)."""
    cid = dy("create", "busybox", "sh", "-c",
             "mkdir -p /data/sub && echo seed > /data/seed && ln -s seed /data/link && echo deep > /data/sub/f"
             " && chown -R 1000:1000 /data && chmod 750 /data && chmod 600 /data/seed", check=True).stdout.strip()
    dy("start", "-a", cid, check=True)
    dy("commit", cid, "seeded:1", check=True)
    dy("rm", cid, check=True)
    return "seeded:1"


def test_named_volume_outlives_its_container(dy, busybox, root):
    p = dy("run", "--name", "w", "-v", "keep:/data", "busybox", "sh", "-c", "echo hello > /data/f")
    assert p.returncode == 0, p.stderr
    assert volumes(dy) == ["keep"]  # created on first use
    dy("rm", "w", check=True)
    assert volumes(dy) == ["keep"]
    p = dy("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f")
    assert p.stdout == "hello\n", p.stderr
    assert (root / "volumes" / "keep" / "_data" / "f").read_text() == "hello\n"


def test_bind_mount_host_sees_files_and_v_creates_missing_dir(dy, busybox, tmp_path):
    host = tmp_path / "host" / "dir"  # does not exist yet: -v creates it (Docker's legacy behaviour)
    p = dy("run", "--rm", "-v", f"{host}:/mnt", "busybox", "sh", "-c", "echo from-container > /mnt/out")
    assert p.returncode == 0, p.stderr
    assert (host / "out").read_text() == "from-container\n"
    (host / "in").write_text("from-host\n")
    p = dy("run", "--rm", "--mount", f"type=bind,source={host},target=/m", "busybox", "cat", "/m/in", "/m/out")
    assert p.stdout == "from-host\nfrom-container\n", p.stderr


def test_mount_bind_refuses_a_missing_source(dy, busybox, tmp_path):
    missing = tmp_path / "nope"
    p = dy("run", "--rm", "--mount", f"type=bind,src={missing},dst=/x", "busybox", "true")
    assert p.returncode == 125
    assert p.stderr == f'Error: invalid mount config for type "bind": bind source path does not exist: {missing}\n'
    assert not missing.exists()
    assert dy("ps", "-aq").stdout == ""


def test_two_containers_share_a_volume_at_the_same_time(dy, busybox, root):
    dy("run", "-d", "--name", "one", "-v", "shared:/s", "busybox", "sh", "-c",
       "echo one > /s/a; while [ ! -f /s/b ]; do sleep 0.02; done; cat /s/b > /s/seen; exec sleep 60", check=True)
    p = dy("run", "--rm", "-v", "shared:/s", "busybox", "sh", "-c",
           "while [ ! -f /s/a ]; do sleep 0.02; done; cat /s/a; echo two > /s/b", timeout=30)
    assert p.stdout == "one\n", p.stderr
    seen = root / "volumes" / "shared" / "_data" / "seen"
    wait_for(lambda: seen.exists() and seen.read_text() == "two\n", what="the first container to see the write")
    assert dy("exec", "one", "cat", "/s/seen").stdout == "two\n"


def test_copy_up_fills_an_empty_volume_once(dy, seeded, root):
    p = dy("run", "--rm", "-v", "cv:/data", seeded, "sh", "-c",
           "cat /data/seed /data/sub/f; readlink /data/link; stat -c '%u:%g %a' /data /data/seed")
    assert p.stdout == "seed\ndeep\nseed\n1000:1000 750\n1000:1000 600\n", p.stderr
    data = root / "volumes" / "cv" / "_data"
    assert os.readlink(data / "link") == "seed"
    # not empty any more: the volume's own content wins over the image's from now on
    dy("run", "--rm", "-v", "cv:/data", seeded, "sh", "-c", "echo changed > /data/seed; rm /data/link", check=True)
    p = dy("run", "--rm", "-v", "cv:/data", seeded, "sh", "-c", "cat /data/seed; ls /data")
    assert p.stdout == "changed\nseed\nsub\n", p.stderr


def test_nocopy_and_volume_nocopy_leave_the_volume_empty(dy, seeded):
    p = dy("run", "--rm", "-v", "nc1:/data:nocopy", seeded, "ls", "-A", "/data")
    assert p.returncode == 0 and p.stdout == "", p.stderr
    p = dy("run", "--rm", "--mount", "type=volume,src=nc2,dst=/data,volume-nocopy", seeded, "ls", "-A", "/data")
    assert p.returncode == 0 and p.stdout == "", p.stderr


def test_image_volume_gets_an_anonymous_volume_removed_by_rm_v(dy, seeded, busybox):
    cid = dy("create", "busybox", "true", check=True).stdout.strip()
    dy("commit", "-c", "VOLUME /data", "-c", "VOLUME /cache", cid, "withvol:1", check=True)
    dy("rm", cid, check=True)
    # -v /logs: an anonymous volume too; named:/cache overrides the image's VOLUME /cache
    dy("run", "--name", "iv", "-v", "/logs", "-v", "named:/cache", "withvol:1", "sh", "-c",
       "touch /data/x /logs/y /cache/z", check=True)
    mounts = json.loads(dy("inspect", "-f", "{{json .Mounts}}", "iv", check=True).stdout)
    by_dest = {m["Destination"]: m for m in mounts}
    assert sorted(by_dest) == ["/cache", "/data", "/logs"]
    assert by_dest["/cache"]["Name"] == "named"
    anon = [by_dest["/data"]["Name"], by_dest["/logs"]["Name"]]
    assert all(len(n) == 64 for n in anon)
    assert sorted(volumes(dy)) == sorted(anon + ["named"])
    info = json.loads(dy("volume", "inspect", anon[0]).stdout)[0]
    assert info["Labels"] == {"com.docker.volume.anonymous": ""}
    dy("rm", "-v", "iv", check=True)
    assert volumes(dy) == ["named"]  # named volumes survive rm -v


def test_read_only_mounts_are_read_only(dy, busybox, tmp_path):
    host = tmp_path / "ro"
    host.mkdir()
    for args in (["-v", "rov:/d:ro"], ["--mount", "type=volume,src=rov,dst=/d,readonly"],
                 ["-v", f"{host}:/d:ro"], ["--mount", f"type=bind,src={host},dst=/d,ro=true"]):
        p = dy("run", "--rm", *args, "busybox", "sh", "-c", "echo x > /d/f")
        assert p.returncode != 0 and "Read-only file system" in p.stderr, (args, p.stderr)
    assert list(host.iterdir()) == []


def test_every_mount_is_gone_after_rm(dy, busybox, root, tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    dy("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=1m", "tv", check=True)
    dy("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={dev}", "bv", check=True)
    dy("run", "-d", "--name", "m", "-v", "tv:/t", "-v", "bv:/b", "-v", "plain:/p", "-v", f"{tmp_path}:/h",
       "--tmpfs", "/scratch", "--mount", "type=tmpfs,dst=/tm,tmpfs-size=1m", "busybox", "sh", "-c",
       "echo t > /t/f; echo b > /b/f; exec sleep 60", check=True)
    wait_for(lambda: (dev / "f").exists(), what="the container's write through the bind volume")
    mounted = mounts_under(root)
    assert str(root / "volumes" / "tv" / "_data") in mounted
    assert str(root / "volumes" / "bv" / "_data") in mounted
    p = dy("exec", "m", "sh", "-c", "grep -E ' /(t|tm|scratch) ' /proc/mounts | cut -d' ' -f1,2,3")
    assert sorted(p.stdout.split("\n")[:-1]) == ["tmpfs /scratch tmpfs", "tmpfs /t tmpfs", "tmpfs /tm tmpfs"]
    dy("rm", "-f", "m", check=True)
    assert mounts_under(root) == []
    assert sorted(volumes(dy)) == ["bv", "plain", "tv"]  # named volumes stay
    dy("volume", "rm", "tv", "bv", "plain", check=True)
    assert (dev / "f").read_text() == "b\n"  # removing a bind-type volume never deletes the host's files


def test_stopped_container_releases_its_tmpfs_volume(dy, busybox, root):
    dy("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tv2", check=True)
    p = dy("run", "--name", "s", "-v", "tv2:/t", "busybox", "sh", "-c", "echo x > /t/f; cat /t/f")
    assert p.stdout == "x\n", p.stderr
    assert mounts_under(root) == []  # exited: its tmpfs volume is unmounted (and its data gone, as in Docker)


@pytest.mark.parametrize("args, message", [
    (["-v", "relative/path:/x"],
     'Error: create relative/path: "relative/path" includes invalid characters for a local volume name, only '
     '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path\n'),
    (["--mount", "type=bind,target=/x"],
     'Error: invalid mount config for type "bind": field Source must not be empty\n'),
    (["--mount", "type=volume,source=v1"],
     'Error: invalid argument "type=volume,source=v1" for "--mount" flag: target is required\n'),
    (["--mount", "type=volume,dst=/x,colour=red"],
     "Error: invalid argument \"type=volume,dst=/x,colour=red\" for \"--mount\" flag: unexpected key 'colour' "
     "in 'colour=red'\n"),
    (["--mount", "type=bind,src=/tmp,dst=/x,volume-nocopy"],
     "Error: invalid argument \"type=bind,src=/tmp,dst=/x,volume-nocopy\" for \"--mount\" flag: cannot mix "
     "'volume-*' options with mount type 'bind'\n"),
    (["-v", "v1:relative"],
     "Error: invalid volume specification: 'v1:relative': invalid mount config for type \"volume\": invalid mount "
     "path: 'relative' mount path must be absolute\n"),
    (["-v", "v1:/x:bogus"], "Error: invalid mode: bogus\n"),
    (["-v", "v1:/x", "-v", "v2:/x"], "Error: Duplicate mount point: /x\n"),
    (["-v", "/:/"], "Error: invalid volume specification: '/:/': invalid mount config for type \"bind\": "
     "invalid specification: destination can't be '/'\n"),
    (["--volumes-from", "no-such-container"], "Error: No such container: no-such-container\n"),
])
def test_bad_mount_input_is_refused_and_changes_nothing(dy, busybox, tmp_path, args, message):
    p = subprocess_in(tmp_path, dy, "run", "--rm", *args, "busybox", "true")
    assert (p.returncode, p.stderr) == (125, message)
    assert dy("ps", "-aq").stdout == ""
    assert volumes(dy) == []
    assert list(tmp_path.iterdir()) == [tmp_path / "root"]  # no host directory made either


def subprocess_in(cwd: Path, dy, *args: str):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return dy(*args)
    finally:
        os.chdir(old)


def test_volume_verbs_bad_input_exit_1(dy, busybox):
    p = dy("volume", "rm", "missing")
    assert (p.returncode, p.stderr) == (1, "Error: get missing: no such volume\n")
    assert dy("volume", "rm", "-f", "missing").returncode == 0
    p = dy("volume", "inspect", "missing")
    assert (p.returncode, p.stdout, p.stderr) == (1, "[]\n", "Error: No such volume: missing\n")
    p = dy("volume", "create", "x")
    assert p.returncode == 1 and "volume name is too short" in p.stderr
    p = dy("volume", "create", "-d", "nfsplugin", "vx")
    assert (p.returncode, p.stderr) == (
        1, 'Error: create vx: error looking up volume plugin nfsplugin: plugin "nfsplugin" not found\n')
    p = dy("volume", "create", "-o", "device=/x", "vy")
    assert (p.returncode, p.stderr) == (1, 'Error: create vy: missing required option: "type"\n')
    assert volumes(dy) == []


def test_volume_rm_refused_while_a_container_uses_it(dy, busybox):
    cid = dy("create", "-v", "busy:/b", "busybox", "true", check=True).stdout.strip()  # created, never started
    p = dy("volume", "rm", "busy")
    assert (p.returncode, p.stderr) == (1, f"Error: remove busy: volume is in use - [{cid}]\n")
    dy("start", "-a", cid, check=True)  # exited: still in use
    assert dy("volume", "rm", "-f", "busy").returncode == 1
    dy("rm", cid, check=True)
    assert dy("volume", "rm", "busy").stdout == "busy\n"
    assert volumes(dy) == []


def test_volume_create_inspect_and_ls_filters(dy, busybox, root):
    p = dy("volume", "create", "--label", "tier=db", "--label", "keep", "dbdata", check=True)
    assert p.stdout == "dbdata\n"
    assert dy("volume", "create", "dbdata", check=True).stdout == "dbdata\n"  # idempotent, as in Docker
    anon = dy("volume", "create", check=True).stdout.strip()
    assert len(anon) == 64 and all(c in "0123456789abcdef" for c in anon)
    dy("create", "--name", "user", "-v", "used:/u", "busybox", "true", check=True)
    info = json.loads(dy("volume", "inspect", "dbdata", check=True).stdout)
    assert len(info) == 1
    v = info[0]
    assert list(v) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert (v["Name"], v["Driver"], v["Scope"], v["Labels"], v["Options"]) == (
        "dbdata", "local", "local", {"tier": "db", "keep": ""}, {})
    assert v["Mountpoint"] == str(root / "volumes" / "dbdata" / "_data")
    assert v["CreatedAt"].endswith("Z") and v["CreatedAt"][10] == "T"
    assert dy("volume", "inspect", "-f", "{{.Driver}} {{.Labels.tier}}", "dbdata").stdout == "local db\n"
    out = dy("volume", "ls", check=True).stdout.splitlines()
    assert out[0] == "DRIVER    VOLUME NAME"
    assert sorted(out[1:]) == sorted(f"local     {n}" for n in (anon, "dbdata", "used"))

    def ls(*f: str) -> list[str]:
        args = [a for x in f for a in ("--filter", x)]
        return sorted(dy("volume", "ls", "-q", *args, check=True).stdout.split())

    assert ls("dangling=true") == sorted([anon, "dbdata"])
    assert ls("dangling=false") == ["used"]
    assert ls("name=bdat") == ["dbdata"]  # not all-hex: an anonymous (64-hex) name cannot match
    assert ls("label=tier=db") == ["dbdata"] == ls("label=keep")
    assert ls("label=tier=web") == []
    assert ls("driver=local") == sorted([anon, "dbdata", "used"])
    assert ls("dangling=true", "label=tier") == ["dbdata"]
    assert dy("volume", "ls", "--format", "{{.Name}}:{{.Driver}}", "-f", "name=used").stdout == "used:local\n"
    p = dy("volume", "ls", "--filter", "colour=red")
    assert (p.returncode, p.stderr) == (1, "Error: invalid filter 'colour'\n")


def test_volume_prune(dy, busybox):
    anon = dy("volume", "create", check=True).stdout.strip()
    dy("volume", "create", "named", check=True)
    dy("create", "-v", "inuse:/x", "-v", "/anon-in-use", "busybox", "true", check=True)
    dy("run", "--rm", "-v", "named:/n", "busybox", "sh", "-c", "head -c 2000 /dev/zero > /n/blob", check=True)
    before = set(volumes(dy))
    p = dy("volume", "prune", "-f", check=True)
    assert p.stdout == f"Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 0B\n"
    assert set(volumes(dy)) == before - {anon}
    p = dy("volume", "prune", "-a", "-f", check=True)
    assert p.stdout == "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 2kB\n"
    assert "inuse" in volumes(dy) and len(volumes(dy)) == 2  # used ones stay, anonymous included
    p = dy("volume", "prune", input="n\n")
    assert p.stdout.startswith("WARNING! This will remove anonymous local volumes not used by at least one "
                               "container.\nAre you sure you want to continue? [y/N] ")
    assert len(volumes(dy)) == 2


def test_volume_export_import_round_trip(dy, busybox, tmp_path):
    dy("run", "--rm", "-v", "src:/v", "busybox", "sh", "-c",
       "mkdir /v/d && echo data > /v/d/f && ln -s d/f /v/l && chown -R 123:45 /v/d && chmod 711 /v", check=True)
    out = tmp_path / "v.tar"
    assert dy("volume", "export", "src", "-o", str(out), check=True).stdout == ""
    with tarfile.open(out) as tf:
        names = tf.getnames()
        assert names[0] == "." and {"d", "d/f", "l"} <= set(names)
        assert tf.getmember("d/f").uid == 123
    dy("volume", "import", "dst", str(out), check=True)
    p = dy("run", "--rm", "-v", "dst:/v", "busybox", "sh", "-c", "cat /v/l; stat -c '%u:%g' /v/d/f; stat -c %a /v")
    assert p.stdout == "data\n123:45\n711\n", p.stderr
    # into a non-empty volume: refused, nothing changed
    p = dy("volume", "import", "dst", str(out))
    assert (p.returncode, p.stderr) == (1, "Error: import dst: volume is not empty\n")
    # from stdin, into an existing empty volume
    dy("volume", "create", "empty", check=True)
    dy("volume", "import", "empty", input=out.read_bytes(), check=True)
    assert dy("run", "--rm", "-v", "empty:/v", "busybox", "cat", "/v/d/f").stdout == "data\n"
    # a broken archive creates nothing
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    p = dy("volume", "import", "never", str(bad))
    assert p.returncode == 1 and p.stderr.startswith("Error: ") and len(p.stderr.splitlines()) == 1
    assert "never" not in volumes(dy)


def test_volumes_from_and_cp_through_volumes(dy, busybox, tmp_path):
    dy("create", "--name", "data", "-v", "/shared", "-v", "vf:/named", "busybox", "true", check=True)
    dy("run", "--rm", "--volumes-from", "data", "busybox", "sh", "-c", "echo a > /shared/a; echo b > /named/b",
       check=True)
    p = dy("run", "--rm", "--volumes-from", "data:ro", "busybox", "sh", "-c",
           "cat /shared/a /named/b; touch /named/c")
    assert p.stdout == "a\nb\n" and "Read-only file system" in p.stderr
    # cp reads and writes through the (stopped) container's volumes
    dy("cp", "data:/named/b", str(tmp_path / "b"), check=True)
    assert (tmp_path / "b").read_text() == "b\n"
    (tmp_path / "up").write_text("up\n")
    dy("cp", str(tmp_path / "up"), "data:/shared/", check=True)
    assert dy("run", "--rm", "--volumes-from", "data", "busybox", "cat", "/shared/up").stdout == "up\n"
    mounts = json.loads(dy("inspect", "-f", "{{json .Mounts}}", "data", check=True).stdout)
    named = [m for m in mounts if m["Destination"] == "/named"][0]
    assert {k: named[k] for k in ("Type", "Name", "Driver", "RW")} == {
        "Type": "volume", "Name": "vf", "Driver": "local", "RW": True}


def test_tmpfs_mounts(dy, busybox):
    p = dy("run", "--rm", "--tmpfs", "/a:size=1m",
           "--mount", "type=tmpfs,destination=/b,tmpfs-size=2m,tmpfs-mode=1770", "busybox", "sh", "-c",
           "df -k /a /b | tail -2 | awk '{print $2}'; stat -c %a /b; echo x > /b/x && cat /b/x")
    assert p.stdout == "1024\n2048\n1770\nx\n", p.stderr


def test_run_rm_removes_anonymous_volumes_but_not_named_ones(dy, busybox):
    name = "keep-" + os.urandom(3).hex()
    p = dy("run", "--rm", "-v", "/anon", "-v", f"{name}:/named", "busybox", "sh", "-c",
           "echo a > /anon/f; echo n > /named/f")
    assert p.returncode == 0, p.stderr
    assert dy("volume", "ls", "-q").stdout.split() == [name]
