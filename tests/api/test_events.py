"""Events: written by the engine on every state change, persisted in the store, served by GET /events."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.api.conftest import Service, name
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def test_events_since_until_and_across_a_restart(svc: Service) -> None:
    t0 = time.time() - 1
    n = name()
    p = svc.docker("run", "--rm", "--name", n, "busybox", "sh", "-c", "exit 3")
    assert p.returncode == 3, p.stderr
    v = name()
    assert svc.docker("volume", "create", v).returncode == 0
    assert svc.docker("volume", "rm", v).returncode == 0
    t1 = time.time() + 1
    fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}"

    def seen() -> list[str]:
        p = svc.docker("events", "--since", f"{t0:.3f}", "--until", f"{t1:.3f}", "--format", fmt)
        assert p.returncode == 0, p.stderr
        return [ln.replace(" <no value>", "").strip() for ln in p.stdout.splitlines()]

    wait_for(lambda: time.time() > t1, 5, what="the window to close")
    lines = seen()
    mine = [ln for ln in lines if f" {n}" in ln]
    assert mine == [f"container create {n}", f"container start {n}", f"container die {n} 3",
                    f"container destroy {n}"], lines
    p = svc.docker("events", "--since", f"{t0:.3f}", "--until", f"{t1:.3f}", "--filter", "type=volume",
                   "--format", "{{.Action}} {{.Actor.ID}}")
    assert p.stdout.splitlines() == [f"create {v}", f"destroy {v}"], p.stdout
    svc.stop()
    svc.sock.unlink(missing_ok=True)
    svc.start()
    assert seen() == lines  # persisted in the store: a new service serves the same log


def test_events_follow(svc: Service) -> None:
    n = name()
    start = time.time()
    f = subprocess.Popen(["docker", "events", "--since", f"{start - 1:.3f}", "--filter", f"container={n}",
                          "--format", "{{.Action}}"], stdout=subprocess.PIPE, text=True, env=svc.env)
    try:
        assert svc.docker("run", "--name", n, "busybox", "true").returncode == 0
        assert svc.docker("rm", n).returncode == 0
        got: list[str] = []
        assert f.stdout is not None
        while len(got) < 4 and time.time() - start < 20:
            got.append(f.stdout.readline().strip())
        assert got == ["create", "start", "die", "destroy"], got
    finally:
        f.kill()
        f.wait()
