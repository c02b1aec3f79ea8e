"""Health checks run by the engine (engine/health.py): the container's monitor forks a probe per interval.

Probes run from the C slim loop (the containers outlive the monitor's grace period) and, with
DOCKYARD_MONITOR_LOOP=python, from the Python loop."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def _inspect(dy, ref: str) -> dict:
    return json.loads(dy("inspect", ref, check=True).stdout)[0]


def _health(dy, ref: str) -> dict:
    return _inspect(dy, ref)["State"].get("Health") or {}


@pytest.mark.parametrize("loop", ["c", "python"])
def test_failing_probe_turns_unhealthy_within_its_retries(dy, busybox, root, loop):
    env = {"DOCKYARD_MONITOR_LOOP": "python"} if loop == "python" else {}
    dy("run", "-d", "--name", "sick", "--health-cmd", "echo probing; test -e /ok",
       "--health-interval", "200ms", "--health-retries", "2", "busybox", "sleep", "300", check=True, env=env)
    assert "(health: starting)" in dy("ps", check=True).stdout
    h = wait_for(lambda: (h := _health(dy, "sick")).get("Status") == "unhealthy" and h, timeout=20,
                 what="the container to turn unhealthy")
    assert h["FailingStreak"] >= 2
    assert h["Log"] and h["Log"][-1]["ExitCode"] == 1 and h["Log"][-1]["Output"] == "probing\n"
    assert len(h["Log"]) <= 5
    assert "(unhealthy)" in dy("ps", check=True).stdout
    assert dy("ps", "-q", "--filter", "health=unhealthy", check=True).stdout.strip()
    assert not dy("ps", "-q", "--filter", "health=healthy", check=True).stdout.strip()
    # the probe passes again: healthy, streak reset; the events log has both transitions
    dy("exec", "sick", "touch", "/ok", check=True)
    wait_for(lambda: _health(dy, "sick").get("Status") == "healthy", timeout=20, what="healthy again")
    assert _health(dy, "sick")["FailingStreak"] == 0
    assert "(healthy)" in dy("ps", check=True).stdout
    from dockyard.engine import events
    from dockyard.state.db import Store

    actions = [e.action for e in events.query(Store(str(root))) if e.action.startswith("health_status")]
    assert actions[:2] == ["health_status: unhealthy", "health_status: healthy"]
    assert _inspect(dy, "sick")["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "echo probing; test -e /ok"]


def test_health_on_failure_restart_restarts_the_container(dy, busybox):
    dy("run", "-d", "--name", "flaky", "--health-cmd", "false", "--health-interval", "200ms",
       "--health-retries", "1", "--health-on-failure", "restart", "busybox", "sleep", "300", check=True)
    wait_for(lambda: _inspect(dy, "flaky")["RestartCount"] >= 1, timeout=30, what="a restart")
    wait_for(lambda: _inspect(dy, "flaky")["State"]["Running"], timeout=20, what="running again")
    # a policy of "no" otherwise: the restart is the health check's
    assert _inspect(dy, "flaky")["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_no_healthcheck_disables_the_images_and_flags_are_checked(dy, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD false\n")
    dy("build", "-q", "-t", "hc", str(ctx), check=True)
    dy("run", "-d", "--name", "withhc", "hc", "sleep", "300", check=True)
    dy("run", "-d", "--name", "nohc", "--no-healthcheck", "hc", "sleep", "300", check=True)
    wait_for(lambda: _health(dy, "withhc").get("Status") == "unhealthy", timeout=20, what="image's HEALTHCHECK")
    assert "Health" not in _inspect(dy, "nohc")["State"]
    assert "health" not in dy("ps", "--filter", "name=nohc", check=True).stdout
    assert dy("ps", "-q", "--filter", "health=none", check=True).stdout.strip() == \
        _inspect(dy, "nohc")["Id"][:12]
    p = dy("run", "--no-healthcheck", "--health-cmd", "true", "busybox", "true")
    assert p.returncode == 125 and "--no-healthcheck conflicts with --health-* options" in p.stderr
    p = dy("run", "--health-on-failure", "explode", "busybox", "true")
    assert p.returncode == 125 and "--health-on-failure" in p.stderr
    p = dy("run", "--health-interval", "soon", "--health-cmd", "true", "busybox", "true")
    assert p.returncode == 125 and "invalid duration" in p.stderr


HTTPD_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    bind(s, (struct sockaddr *)&a, sizeof a);
    listen(s, 16);
    for (;;) {
        int c = accept(s, 0, 0);
        char buf[1024];
        int n = read(c, buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        const char *r = strncmp(buf, "GET /healthz ", 13) == 0 ? "HTTP/1.0 200 OK\r\n\r\nok"
                                                               : "HTTP/1.0 404 Not Found\r\n\r\nno";
        write(c, r, strlen(r));
        close(c);
    }
}
"""


@pytest.fixture
def scratch_httpd(dy, tmp_path: Path) -> str:
    """A FROM-scratch image holding only a static HTTP server on :8080 (no shell, no curl)."""
    cc = shutil.which("musl-gcc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    ctx = tmp_path / "httpd"
    ctx.mkdir()
    (ctx / "httpd.c").write_text(HTTPD_C)
    subprocess.run([cc, "-static", "-Os", "-o", str(ctx / "httpd"), str(ctx / "httpd.c")], check=True)
    (ctx / "Dockerfile").write_text('FROM scratch\nCOPY httpd /httpd\nCMD ["/httpd"]\n')
    dy("build", "-q", "-t", "scratch-httpd", str(ctx), check=True)
    return "scratch-httpd"


def test_http_and_tcp_probes_check_a_from_scratch_image(dy, scratch_httpd):
    dy("run", "-d", "--name", "good", "--health-cmd", "http://8080/healthz", "--health-interval", "200ms",
       scratch_httpd, check=True)
    dy("run", "-d", "--name", "bad", "--health-cmd", "http://8080/missing", "--health-interval", "200ms",
       "--health-retries", "1", scratch_httpd, check=True)
    dy("run", "-d", "--name", "tcp", "--health-cmd", "tcp://8080", "--health-interval", "200ms", scratch_httpd,
       check=True)
    dy("run", "-d", "--name", "closed", "--health-cmd", "tcp://9", "--health-interval", "200ms",
       "--health-retries", "1", scratch_httpd, check=True)
    for name, want in (("good", "healthy"), ("bad", "unhealthy"), ("tcp", "healthy"), ("closed", "unhealthy")):
        h = wait_for(lambda n=name, w=want: (h := _health(dy, n)).get("Status") == w and h, timeout=20,
                     what=f"{name} {want}")
        if name == "good":
            assert h["Log"][-1]["Output"].startswith("HTTP/1.0 200")
        if name == "bad":
            assert "404" in h["Log"][-1]["Output"]
    # a probe that looks like a network probe but is not one is refused
    p = dy("run", "--health-cmd", "http://99999/", "busybox-none", "true")
    assert p.returncode == 125 and "invalid health probe" in p.stderr
