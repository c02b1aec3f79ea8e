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
