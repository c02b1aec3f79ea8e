"""Paths inside a container resolved inside its root: hostile images and containers must not make the engine read
or write host files through symlinks (/etc/passwd lookups, cp, commit, export, mount destinations)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def hostdir():
    """A unique directory on the host that nothing from a container may touch."""
    d = Path(f"/tmp/dy-host-{uuid.uuid4().hex[:12]}")
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _image(dy, busybox_tar: Path, tmp_path: Path, name: str, links: dict[str, str]) -> str:
    """busybox with some paths replaced by symlinks (``links``: path in the image -> link target)."""
    out = tmp_path / f"{name}.tar"
    with tarfile.open(busybox_tar) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for m in src:
            if m.name.strip("/") in links:
                continue
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
        for path, target in links.items():
            ti = tarfile.TarInfo(path)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            dst.addfile(ti)
    dy("import", "--change", 'CMD ["sh"]', str(out), f"{name}:latest", check=True)
    return f"{name}:latest"


# -- finding 8: /etc/passwd and /etc/group are read inside the image, never through a host path -------------------

def test_user_lookup_does_not_read_a_host_passwd(dy, busybox_tar, tmp_path, hostdir):
    (hostdir / "passwd").write_text("hostonly:x:4242:4343:host:/host-home:/bin/sh\nroot:x:0:0:r:/host-root:/bin/sh\n")
    (hostdir / "group").write_text("hostgrp:x:4444:\n")
    img = _image(dy, busybox_tar, tmp_path, "evilpasswd",
                 {"etc/passwd": str(hostdir / "passwd"), "etc/group": str(hostdir / "group")})
    p = dy("run", "--rm", "-u", "hostonly", img, "id")
    assert p.returncode == 125, p.stdout
    assert "unable to find user hostonly: no matching entries in passwd file" in p.stderr
    p = dy("run", "--rm", "-u", "root", img, "id")  # the image has no passwd of its own: as Docker, an error
    assert p.returncode == 125 and "unable to find user root" in p.stderr
    p = dy("run", "--rm", "-u", "0", img, "sh", "-c", "echo $HOME")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "/"
    p = dy("run", "--rm", "-u", "0:hostgrp", img, "id")
    assert p.returncode == 125 and "unable to find group hostgrp" in p.stderr


def test_passwd_linked_to_dev_zero_fails_promptly(dy, busybox_tar, tmp_path):
    img = _image(dy, busybox_tar, tmp_path, "zeropasswd", {"etc/passwd": "/dev/zero", "etc/group": "/dev/zero"})
    t = time.monotonic()
    p = dy("run", "--rm", "-u", "nobody", img, "id", timeout=30)
    assert time.monotonic() - t < 15
    assert p.returncode == 125
    assert "unable to find user nobody" in p.stderr
    p = dy("run", "--rm", img, "echo", "ok", timeout=30)  # the default user needs no lookup: runs as 0
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


# -- finding 9: cp resolves every destination component inside the container -----------------------------------

@pytest.fixture
def sleeper(dy, busybox):
    cid = dy("run", "-d", "busybox", "sleep", "300", check=True).stdout.strip()
    yield cid
    dy("rm", "-f", cid)


def test_cp_dir_into_a_symlink_to_a_host_dir_stays_inside(dy, sleeper, tmp_path, hostdir):
    src = tmp_path / "payload"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("payload\n")
    (src / "top").write_text("top\n")
    # /x -> a host directory that exists on the host; inside the container it does not (yet)
    dy("exec", sleeper, "ln", "-s", str(hostdir), "/x", check=True)
    assert dy("cp", str(src), f"{sleeper}:/x/").returncode == 0
    assert list(hostdir.iterdir()) == []
    assert dy("exec", sleeper, "cat", f"{hostdir}/sub/f").stdout == "payload\n"
    # the same when the link's target exists inside the container, and through a symlinked parent
    dy("exec", sleeper, "sh", "-c", f"mkdir -p /y && ln -s {hostdir.parent} /y/up", check=True)
    assert dy("cp", str(src), f"{sleeper}:/y/up/{hostdir.name}/again").returncode == 0
    assert list(hostdir.iterdir()) == []
    assert dy("exec", sleeper, "cat", f"{hostdir}/again/top").stdout == "top\n"
    # a link nested in an existing destination directory: the copy replaces it, never writes through it
    dy("exec", sleeper, "sh", "-c", f"mkdir -p /dst && ln -s {hostdir} /dst/sub", check=True)
    assert dy("cp", f"{src}/.", f"{sleeper}:/dst").returncode == 0
    assert list(hostdir.iterdir()) == []
    assert dy("exec", sleeper, "cat", "/dst/sub/f").stdout == "payload\n"
    # a single file through the link, and an archive through stdin
    assert dy("cp", str(src / "top"), f"{sleeper}:/x/file").returncode == 0
    buf = tmp_path / "a.tar"
    with tarfile.open(buf, "w") as tf:
        tf.add(src / "top", arcname="piped")
    assert dy("cp", "-", f"{sleeper}:/x", input=buf.read_bytes()).returncode == 0
    assert list(hostdir.iterdir()) == []
    assert dy("exec", sleeper, "ls", str(hostdir)).stdout.split() == ["again", "file", "piped", "sub", "top"]


def test_cp_out_of_a_container_does_not_follow_its_links(dy, sleeper, tmp_path, hostdir):
    (hostdir / "secret").write_text("host secret\n")
    dy("exec", sleeper, "sh", "-c", f"mkdir -p /d && ln -s {hostdir} /d/link && echo in > /d/f", check=True)
    out = tmp_path / "out"
    assert dy("cp", f"{sleeper}:/d", str(out)).returncode == 0
    assert (out / "f").read_text() == "in\n"
    assert os.readlink(out / "link") == str(hostdir)
    p = dy("cp", f"{sleeper}:/d/link/", "-", input=b"")  # bytes in, bytes out
    assert b"host secret" not in p.stdout


# -- finding 9: commit (and export, diff) never follow a container's symlinks out -------------------------------

_SWAPPER = ("mkdir -p /race; i=0; while [ $i -lt 300 ]; do echo $i > /race/a$i; i=$((i+1)); done; "
            "while true; do mkdir /race/d.new; echo inside > /race/d.new/f; rm -rf /race/d; mv /race/d.new /race/d; "
            "rm -rf /race/d; ln -s {host} /race/d; done")


def test_commit_of_a_racing_container_never_takes_host_files(dy, busybox, hostdir):
    for i in range(50):
        (hostdir / f"HOSTMARKER{i}").write_text("host\n")
    cid = dy("run", "-d", "busybox", "sh", "-c", _SWAPPER.format(host=hostdir), check=True).stdout.strip()
    try:
        wait_for(lambda: dy("exec", cid, "test", "-e", "/race/a299").returncode == 0, what="the swapper")
        images = []
        for n in range(20):
            p = dy("commit", "--pause=false", cid, f"race:{n}")
            assert p.returncode == 0, p.stderr
            images.append(f"race:{n}")
        dy("rm", "-f", cid)
        for img in images:
            p = dy("run", "--rm", "--network", "none", img, "sh", "-c", "ls /race/d/ 2>/dev/null; true")
            assert p.returncode == 0, p.stderr
            assert "HOSTMARKER" not in p.stdout, f"{img} holds host files"
    finally:
        dy("rm", "-f", cid)


def test_export_and_diff_of_a_racing_container_never_take_host_files(dy, busybox, hostdir, tmp_path):
    for i in range(50):
        (hostdir / f"HOSTMARKER{i}").write_text("host\n")
    cid = dy("run", "-d", "busybox", "sh", "-c", _SWAPPER.format(host=hostdir), check=True).stdout.strip()
    try:
        wait_for(lambda: dy("exec", cid, "test", "-e", "/race/a299").returncode == 0, what="the swapper")
        for n in range(10):
            out = tmp_path / f"e{n}.tar"
            assert dy("export", "-o", str(out), cid).returncode == 0
            with tarfile.open(out) as tf:
                assert not [m for m in tf.getnames() if "HOSTMARKER" in m]
            out.unlink()
            p = dy("diff", cid)
            assert p.returncode == 0 and "HOSTMARKER" not in p.stdout
    finally:
        dy("rm", "-f", cid)


def test_commit_pauses_the_container_by_default(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sh", "-c", "dd if=/dev/zero of=/big bs=1M count=300 2>/dev/null; "
             "touch /ready; sleep 300", check=True).stdout.strip()
    try:
        wait_for(lambda: dy("exec", cid, "test", "-e", "/ready").returncode == 0, timeout=60, what="the big file")
        from tests.conftest import DOCKYARD

        proc = subprocess.Popen([DOCKYARD, "--root", str(root), "commit", cid, "paused:1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            states: list[str] = []

            def paused_or_done() -> bool:
                states.append(dy("inspect", "-f", "{{.State.Status}}", cid).stdout.strip())
                return states[-1] == "paused" or proc.poll() is not None

            wait_for(paused_or_done, timeout=60, interval=0.01, what="the commit")
            seen = "paused" in states
            assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert seen is True and proc.returncode == 0
        assert dy("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "running"
        p = dy("commit", "--pause=false", cid, "paused:2")
        assert p.returncode == 0, p.stderr
        assert dy("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "running"
        p = dy("commit", "--pause=maybe", cid)
        assert p.returncode != 0 and "invalid argument" in p.stderr
    finally:
        dy("rm", "-f", cid)


# -- mount destinations are resolved inside the root and mounted through an fd -------------------------------------

def test_mount_destination_symlink_to_a_host_dir_mounts_inside(dy, busybox_tar, tmp_path, hostdir):
    img = _image(dy, busybox_tar, tmp_path, "linkdata", {"data": str(hostdir), "etc/conf": str(hostdir / "f")})
    p = dy("run", "--rm", "-v", "vol:/data", img, "sh", "-c", f"echo v > /data/x; ls {hostdir}; cat /data/x")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["x", "v"]  # the volume sits at <root>/<hostdir> inside the container
    bind = tmp_path / "bindsrc"
    bind.mkdir()
    (bind / "file").write_text("bound\n")
    p = dy("run", "--rm", "-v", f"{bind / 'file'}:/etc/conf", "--tmpfs", "/data", img, "sh", "-c",
           f"cat /etc/conf; touch /data/t; ls {hostdir}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["bound", "f", "t"]  # /etc/conf -> <hostdir>/f lands in the tmpfs at /data
    assert list(hostdir.iterdir()) == []
