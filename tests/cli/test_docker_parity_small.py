"""Docker parity (issue 12), small differences: the engine's mount targets stay out of commit and RUN layers,
the Docker 28 CLI's argument-count messages and exit codes, the API's create warnings."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _top_layer_names(dy, ref: str, tmp_path: Path) -> list[str]:
    archive = tmp_path / "img.tar"
    dy("save", "-o", str(archive), ref, check=True)
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tf.extractfile(manifest[0]["Layers"][-1])
        with tarfile.open(fileobj=layer) as lt:  # type: ignore[arg-type]
            return sorted(lt.getnames())


def test_commit_and_run_layers_leave_out_hosts_hostname_and_resolv_conf(dy, busybox, tmp_path: Path):
    cid = dy("run", "-d", "--network", "none", "busybox", "sh", "-c", "echo x > /f; sleep 60",
             check=True).stdout.strip()
    dy("exec", cid, "cat", "/f", check=True)
    dy("commit", cid, "committed:1", check=True)
    assert _top_layer_names(dy, "committed:1", tmp_path) == ["f"]
    # a change in /etc is kept, with its directory, and the mount targets still left out
    dy("exec", cid, "sh", "-c", "echo y >> /etc/passwd", check=True)
    dy("commit", cid, "committed:2", check=True)
    assert _top_layer_names(dy, "committed:2", tmp_path) == ["etc", "etc/passwd", "f"]
    # the committed image still gets them at run time
    assert dy("run", "--rm", "committed:2", "cat", "/etc/hostname").stdout.strip()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /hi\n")
    dy("build", "-q", "-t", "built:1", str(ctx), check=True)
    assert _top_layer_names(dy, "built:1", tmp_path) == ["hi"]


def test_run_attach_with_detach_exits_1_as_docker_28(dy, busybox):
    p = dy("run", "-a", "stdout", "-d", "busybox", "true")
    assert p.returncode == 1, p
    assert p.stderr.startswith("conflicting options: cannot specify both --attach and --detach\n"), p.stderr
    assert dy("ps", "-aq").stdout == ""
