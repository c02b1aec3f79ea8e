"""``dockyard compose``: a Compose file brought up, changed and taken down through the engine (e2e)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_for


pytestmark = pytest.mark.e2e

APP = """
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo hello from $${GREETING} > /www/index.html; httpd -f -p 8080 -h /www"]
    environment:
      GREETING: ${GREETING:-nobody}
    ports:
      - "127.0.0.1:${WEB_PORT:?set WEB_PORT}:8080"
    volumes:
      - data:/www
    networks:
      back:
        aliases: [frontend]
    depends_on:
      db:
        condition: service_healthy
  db:
    image: busybox
    command: ["sh", "-c", "touch /tmp/ok; sleep 300"]
    environment:
      LEVEL: "1"
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ok"]
      interval: 200ms
      retries: 5
      start_period: 30s  # failures while the container starts (a loaded host) do not count; a success ends it
    networks:
      back:
        aliases: [database]
volumes:
  data:
networks:
  back:
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    d = tmp_path / f"app{free_port()}"
    d.mkdir()
    (d / "compose.yaml").write_text(APP)
    (d / ".env").write_text(f"WEB_PORT={free_port()}\nGREETING=dotenv\n")
    return d


def _get(url: str) -> bytes | None:
    try:
        return urllib.request.urlopen(url, timeout=5).read()
    except OSError:
        return None


def _ids(dy, app: Path) -> dict[str, str]:
    out = dy("compose", "--project-directory", str(app), "ps", "-q", check=True).stdout.split()
    return {json.loads(dy("inspect", i, check=True).stdout)[0]["Name"].lstrip("/"): i for i in out}


def test_up_recreate_and_down(dy, busybox, app: Path):
    proj = app.name
    port = int((app / ".env").read_text().split("WEB_PORT=")[1].split()[0])
    c = ("compose", "--project-directory", str(app))
    try:
        _up_recreate_and_down(dy, app, proj, port, c)
    finally:
        dy(*c, "down", "-v", timeout=120)


def _up_recreate_and_down(dy, app: Path, proj: str, port: int, c: tuple[str, ...]) -> None:
    dy(*c, "up", "-d", check=True, timeout=120)
    body = wait_for(lambda: _get(f"http://127.0.0.1:{port}/"), timeout=20, what="the web page")
    assert body == b"hello from dotenv\n"  # .env, ${VAR:-default} overridden, $$ kept for the shell
    ps = dy(*c, "ps", check=True).stdout
    assert f"{proj}-web-1" in ps and f"{proj}-db-1" in ps and "(healthy)" in ps
    # names and labels as Docker Compose
    web = json.loads(dy("inspect", f"{proj}-web-1", check=True).stdout)[0]
    labels = web["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == proj and labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "1" and labels["com.docker.compose.oneoff"] == "False"
    assert dy("network", "inspect", f"{proj}_back", check=True).returncode == 0
    assert dy("volume", "inspect", f"{proj}_data", check=True).returncode == 0
    # the alias of the custom network is reached by name
    p = dy(*c, "exec", "-T", "web", "ping", "-c1", "-W2", "database")
    assert p.returncode == 0, p.stderr
    # a second up recreates nothing
    before = _ids(dy, app)
    out = dy(*c, "up", "-d", check=True, timeout=120).stderr
    assert _ids(dy, app) == before and "Recreate" not in out
    # changing one service's environment recreates only it
    (app / "compose.yaml").write_text(APP.replace('LEVEL: "1"', 'LEVEL: "2"'))
    dy(*c, "up", "-d", check=True, timeout=120)
    after = _ids(dy, app)
    assert after[f"{proj}-web-1"] == before[f"{proj}-web-1"]
    assert after[f"{proj}-db-1"] != before[f"{proj}-db-1"]
    # down -v leaves no container, network or volume
    dy(*c, "down", "-v", check=True, timeout=120)
    assert dy("ps", "-aq", check=True).stdout.strip() == ""
    assert proj not in dy("network", "ls", check=True).stdout
    assert proj not in dy("volume", "ls", check=True).stdout


def test_invalid_file_names_field_and_line_and_creates_nothing(dy, busybox, tmp_path: Path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n    ports: \"80\"\n"
                                    "networks:\n  n1: {}\n")
    p = dy("compose", "--project-directory", str(d), "up", "-d")
    assert p.returncode != 0
    assert p.stderr.strip().splitlines() == ["Error: compose.yaml: services.web.ports: must be an array (line 4)"]
    assert dy("ps", "-aq", check=True).stdout.strip() == ""
    assert "bad_n1" not in dy("network", "ls", check=True).stdout
    (d / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n    restart_policy: always\n")
    p = dy("compose", "--project-directory", str(d), "config")
    assert "services.web.restart_policy: additional property is not allowed (line 4)" in p.stderr


def test_interpolation_env_file_profiles_and_merge(dy, tmp_path: Path):
    d = tmp_path / "interp"
    d.mkdir()
    (d / "compose.yaml").write_text(
        "services:\n  a:\n    image: ${IMG:-busybox}\n    command: echo $${HOME} ${WORD}\n"
        "    environment: [X=1]\n  b:\n    image: busybox\n    profiles: [extra]\n")
    (d / "override.yaml").write_text("services:\n  a:\n    environment:\n      Y: '2'\n")
    (d / ".env").write_text("WORD=from-dotenv\n")
    c = ("compose", "--project-directory", str(d), "-f", str(d / "compose.yaml"), "-f", str(d / "override.yaml"))
    cfg = json.loads(dy(*c, "config", "--format", "json", check=True).stdout)
    assert cfg["services"]["a"]["command"] == "echo ${HOME} from-dotenv"
    assert cfg["services"]["a"]["image"] == "busybox"
    assert cfg["services"]["a"]["environment"] == {"X": "1", "Y": "2"}
    assert list(cfg["services"]) == ["a"]
    assert dy(*c, "--profile", "extra", "config", "--services", check=True).stdout.split() == ["a", "b"]
    (d / "compose.yaml").write_text("services:\n  a:\n    image: ${NEED:?you must set NEED}\n")
    p = dy("compose", "--project-directory", str(d), "config")
    assert p.returncode != 0 and "required variable NEED is missing a value: you must set NEED" in p.stderr


def test_secrets_and_configs_from_files_mounted_read_only(dy, busybox, tmp_path: Path):
    d = tmp_path / f"sec{free_port()}"
    d.mkdir()
    (d / "db_pass.txt").write_text("s3cret\n")
    (d / "app.conf").write_text("level=3\n")
    (d / "compose.yaml").write_text(
        "services:\n  app:\n    image: busybox\n    command: [sleep, '300']\n    network_mode: none\n"
        "    secrets: [db_pass, {source: db_pass, target: other}]\n"
        "    configs: [app_conf, {source: app_conf, target: /etc/app.conf}]\n"
        "secrets:\n  db_pass:\n    file: ./db_pass.txt\n"
        "configs:\n  app_conf:\n    file: ./app.conf\n")
    c = ("compose", "--project-directory", str(d))
    try:
        dy(*c, "up", "-d", check=True, timeout=120)
        p = dy(*c, "exec", "-T", "app", "cat", "/run/secrets/db_pass", "/run/secrets/other", "/app_conf",
               "/etc/app.conf", check=True)
        assert p.stdout == "s3cret\ns3cret\nlevel=3\nlevel=3\n"
        p = dy(*c, "exec", "-T", "app", "sh", "-c", "echo x > /run/secrets/db_pass")
        assert p.returncode != 0 and "Read-only file system" in p.stderr
        assert (d / "db_pass.txt").read_text() == "s3cret\n"
    finally:
        dy(*c, "down", "-v", timeout=120)
    (d / "compose.yaml").write_text("services:\n  app:\n    image: busybox\n    secrets: [nope]\n")
    p = dy(*c, "up", "-d")
    assert p.returncode != 0
    assert p.stderr.strip() == "Error: services.app.secrets: secret 'nope' is not defined in the top-level secrets"
    assert dy("ps", "-aq", check=True).stdout.strip() == ""
