"""Images, build, volumes, networks and system df through the service, driven by the docker CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import Service, name

pytestmark = pytest.mark.e2e


def test_images_tag_rmi_save_load(svc: Service) -> None:
    p = svc.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert (p.returncode, p.stdout) == (0, "busybox:latest\n"), p.stderr
    tag = "local/" + name() + ":v1"
    assert svc.docker("tag", "busybox", tag).returncode == 0
    p = svc.docker("image", "inspect", "--format", "{{.Id}} {{json .RepoTags}}", tag)
    assert p.returncode == 0 and tag in json.loads(p.stdout.split(" ", 1)[1]), p.stderr
    assert svc.docker("history", "-q", tag).returncode == 0
    s = subprocess.run(f"docker save {tag} | docker load", shell=True, capture_output=True, text=True,
                       env=svc.env, timeout=120)
    assert s.returncode == 0 and f"Loaded image: {tag}" in s.stdout, (s.stdout, s.stderr)
    p = svc.docker("rmi", tag)
    assert p.returncode == 0 and f"Untagged: {tag}" in p.stdout, p.stderr
    p = svc.docker("rmi", "nosuch:image")
    assert p.returncode == 1 and "No such image" in p.stderr, p.stderr


def test_build(svc: Service, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("built\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo running-step && "
                                    "cat /hello.txt > /copy.txt\nCMD [\"cat\", \"/copy.txt\"]\n")
    tag = name() + ":b"
    env = {**svc.env, "DOCKER_BUILDKIT": "0"}
    p = subprocess.run(["docker", "build", "-t", tag, str(ctx)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "running-step" in p.stdout and f"Successfully tagged {tag}" in p.stdout, p.stdout
    p = svc.docker("run", "--rm", tag)
    assert (p.returncode, p.stdout) == (0, "built\n"), p.stderr
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 9\n")
    p = subprocess.run(["docker", "build", str(ctx)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode != 0 and "exit" in p.stderr.lower(), (p.stdout, p.stderr)
    assert svc.docker("rmi", tag).returncode == 0


def test_volumes(svc: Service) -> None:
    v = name()
    p = svc.docker("volume", "create", "--label", "k=v", v)
    assert (p.returncode, p.stdout) == (0, v + "\n"), p.stderr
    p = svc.docker("volume", "ls", "--filter", "label=k=v", "--format", "{{.Name}} {{.Driver}}")
    assert p.stdout == f"{v} local\n", p.stderr
    p = svc.docker("volume", "inspect", "--format", "{{.Name}} {{.Labels.k}}", v)
    assert p.stdout == f"{v} v\n", p.stderr
    n = name()
    p = svc.docker("run", "--name", n, "-v", f"{v}:/data", "busybox", "sh", "-c", "echo x > /data/f")
    assert p.returncode == 0, p.stderr
    p = svc.docker("volume", "rm", v)
    assert p.returncode == 1 and "in use" in p.stderr, p.stderr
    assert svc.docker("rm", n).returncode == 0
    assert svc.docker("volume", "rm", v).returncode == 0
    assert svc.docker("volume", "inspect", v).returncode == 1


def test_networks_and_df(svc: Service) -> None:
    net = name()
    p = svc.docker("network", "create", "--subnet", "10.251.7.0/24", net)
    assert p.returncode == 0, p.stderr
    try:
        p = svc.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}")
        assert f"{net} bridge" in p.stdout.splitlines() and "bridge bridge" in p.stdout.splitlines(), p.stdout
        p = svc.docker("network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", net)
        assert p.stdout == "10.251.7.0/24\n", p.stderr
        c = name()
        assert svc.docker("run", "-d", "--name", c, "--network", "none", "busybox", "sleep", "300").returncode == 0
        p = svc.docker("network", "connect", net, c)
        assert p.returncode != 0  # a container on network none cannot join another (as Docker)
        c2 = name()
        assert svc.docker("run", "-d", "--name", c2, "busybox", "sleep", "300").returncode == 0
        p = svc.docker("network", "connect", "--alias", "web", net, c2)
        assert p.returncode == 0, p.stderr
        p = svc.docker("exec", c2, "ip", "-4", "-o", "addr")
        assert "10.251.7." in p.stdout, p.stdout
        assert svc.docker("network", "disconnect", net, c2).returncode == 0
        assert "10.251.7." not in svc.docker("exec", c2, "ip", "-4", "-o", "addr").stdout
        p = svc.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}")
        assert p.returncode == 0, p.stderr
        rows = dict(ln.rsplit(" ", 1) for ln in p.stdout.splitlines())
        assert rows["Images"] == "1" and rows["Containers"] == "2", rows
        assert svc.docker("rm", "-f", c, c2).returncode == 0
    finally:
        assert svc.docker("network", "rm", net).returncode == 0
    assert svc.docker("network", "inspect", net).returncode == 1
