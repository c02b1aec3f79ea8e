"""docker-compose 1.29 (Debian's, docker-py 5 era API calls) against ``dockyard system service``: up -d, ps,
logs, down -v of a two-service project with a named volume and a custom network (an alias reached by name)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.api.conftest import Service, name
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

COMPOSE = """\
version: "3.8"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello > /data/index.html; echo web up; exec httpd -f -p 8080 -h /data"]
    stop_signal: SIGKILL
    volumes:
      - data:/data
    networks:
      - back
  worker:
    image: busybox
    command: ["sh", "-c", "echo worker up; while true; do wget -q -O- http://front:8080/ && echo reached; sleep 0.3; done"]
    stop_signal: SIGKILL
    depends_on:
      - web
    networks:
      back:
        aliases: [wk]
volumes:
  data:
networks:
  back:
"""


def _compose(svc: Service, proj: str, cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker-compose", "-p", proj, *args], cwd=cwd, capture_output=True, text=True,
                          env={**svc.env, "COMPOSE_INTERACTIVE_NO_CLI": "1"}, timeout=timeout)


def test_compose_v1_up_ps_logs_down(svc: Service, tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose 1.x (Debian package docker-compose)")
    proj = "cv" + uuid.uuid4().hex[:8]
    d = tmp_path / "proj"
    d.mkdir()
    # the worker reaches web through web's network alias 'front' (given in the create's NetworkingConfig)
    (d / "docker-compose.yml").write_text(COMPOSE.replace("      - back\n  worker", "      back:\n"
                                                          "        aliases: [front]\n  worker"))
    try:
        p = _compose(svc, proj, d, "up", "-d")
        assert p.returncode == 0, p.stdout + p.stderr
        p = _compose(svc, proj, d, "ps")
        assert p.returncode == 0, p.stderr
        rows = {ln.split()[0]: ln for ln in p.stdout.splitlines()[2:] if ln.strip()}
        assert set(rows) == {f"{proj}_web_1", f"{proj}_worker_1"}, p.stdout
        assert all(" Up " in ln or ln.rstrip().endswith("Up") for ln in rows.values()), p.stdout

        def logs() -> str:
            return _compose(svc, proj, d, "logs", "--no-color").stdout

        wait_for(lambda: "reached" in logs(), 30, what="the worker to reach web by its alias")
        out = logs()
        assert "web up" in out and "worker up" in out, out
        p = svc.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", f"{proj}_worker_1")
        assert f'"{proj}_back"' in p.stdout and '"wk"' in p.stdout, p.stdout
        assert svc.docker("volume", "inspect", f"{proj}_data").returncode == 0
        p = svc.docker("ps", "-a", "--filter", f"label=com.docker.compose.project={proj}", "--format",
                       "{{.Names}}")
        assert sorted(p.stdout.split()) == [f"{proj}_web_1", f"{proj}_worker_1"], p.stdout
    finally:
        p = _compose(svc, proj, d, "down", "-v")
    assert p.returncode == 0, p.stdout + p.stderr
    assert svc.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={proj}").stdout == ""
    assert svc.docker("volume", "inspect", f"{proj}_data").returncode != 0
    assert svc.docker("network", "inspect", f"{proj}_back").returncode != 0


def test_created_container_reconnected_to_its_own_network(svc: Service) -> None:
    """Compose 1.x sets a created container's aliases by disconnecting and connecting each of its networks (as
    dockerd allows for a container that is not running); the container then runs on it with those aliases."""
    net, c = name(), name()
    assert svc.docker("network", "create", net).returncode == 0
    try:
        p = svc.docker("create", "--name", c, "--network", net, "--network-alias", "old", "busybox", "sleep", "60")
        assert p.returncode == 0, p.stderr
        cid = p.stdout.strip()
        p = svc.docker("network", "disconnect", net, c)
        assert p.returncode == 0, p.stderr
        p = svc.docker("network", "connect", "--alias", "new", net, c)
        assert p.returncode == 0, p.stderr
        assert svc.docker("start", c).returncode == 0
        hosts = svc.docker("exec", c, "cat", "/etc/hosts").stdout
        assert " new" in hosts and " old" not in hosts, hosts
        # below API 1.45 dockerd lists the short ID among a user-defined network's aliases (Compose 1.x reads it)
        old = svc.http("GET", f"/v1.44/containers/{c}/json")[1]["NetworkSettings"]["Networks"][net]["Aliases"]
        new = svc.http("GET", f"/v1.45/containers/{c}/json")[1]["NetworkSettings"]["Networks"][net]["Aliases"]
        assert (old, new) == (["new", cid[:12]], ["new"]), (old, new)
        # a running container keeps its own network
        p = svc.docker("network", "disconnect", net, c)
        assert p.returncode != 0 and "cannot be disconnected" in p.stderr, p.stderr
    finally:
        svc.docker("rm", "-f", c)
        svc.docker("network", "rm", net)


def test_same_file_same_objects_through_docker_compose_and_dockyard_compose(svc: Service, tmp_path: Path) -> None:
    """The same file brought up by docker-compose 1.29 through the service and by `dockyard compose` on the same
    root gives the same networks, volumes and compose labels; container names follow each tool's scheme
    (Compose 1.x: PROJECT_SERVICE_N, Compose v2 and dockyard: PROJECT-SERVICE-N)."""
    from tests.conftest import DOCKYARD

    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose 1.x (Debian package docker-compose)")
    d = tmp_path / "proj"
    d.mkdir()
    (d / "docker-compose.yml").write_text(COMPOSE)
    v1, dy = "cv" + uuid.uuid4().hex[:8], "cd" + uuid.uuid4().hex[:8]

    def dy_compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKYARD, "--root", str(svc.root), "compose", "-p", dy, *args], cwd=d,
                              capture_output=True, text=True, timeout=120)

    def objects(proj: str) -> dict[str, object]:
        ids = svc.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={proj}").stdout.split()
        out: dict[str, object] = {}
        for cid in ids:
            p = svc.docker("inspect", "-f", "{{json .Config.Labels}}|{{json .NetworkSettings.Networks}}|"
                           "{{range .Mounts}}{{.Name}}{{end}}", cid)
            labels_json, nets_json, vols = p.stdout.strip().split("|")
            import json

            labels = {k: v for k, v in json.loads(labels_json).items()
                      if k in ("com.docker.compose.project", "com.docker.compose.service",
                               "com.docker.compose.container-number", "com.docker.compose.oneoff")}
            service = labels["com.docker.compose.service"]
            labels["com.docker.compose.project"] = labels["com.docker.compose.project"].replace(proj, "P")
            out[service] = (labels, sorted(n.replace(proj, "P") for n in json.loads(nets_json)),
                            vols.replace(proj, "P"))
        return out

    try:
        p = _compose(svc, v1, d, "up", "-d")
        assert p.returncode == 0, p.stdout + p.stderr
        p = dy_compose("up", "-d")
        assert p.returncode == 0, p.stdout + p.stderr
        a, b = objects(v1), objects(dy)
        assert set(a) == {"web", "worker"} and a == b, (a, b)
        assert a["web"][1] == ["P_back"] and a["web"][2] == "P_data" and a["worker"][0]["com.docker.compose.container-number"] == "1", a
        names = sorted(svc.docker("ps", "-a", "--format", "{{.Names}}").stdout.split())
        assert {f"{v1}_web_1", f"{v1}_worker_1", f"{dy}-web-1", f"{dy}-worker-1"} <= set(names), names
    finally:
        _compose(svc, v1, d, "down", "-v")
        dy_compose("down", "-v")
