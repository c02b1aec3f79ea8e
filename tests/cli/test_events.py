"""``dockyard events``: the persisted events log as ``docker events`` prints it (--since/--until, --filter,
--format), and following new events until interrupted."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD, Runner
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def _name() -> str:
    return "ev-" + uuid.uuid4().hex[:10]


def test_events_window_filters_and_format(dy: Runner, busybox: str) -> None:
    t0 = time.time() - 1
    n = _name()
    p = dy("run", "--name", n, "busybox", "sh", "-c", "exit 4")
    assert p.returncode == 4, p.stderr
    cid = dy("inspect", "-f", "{{.Id}}", n, check=True).stdout.strip()
    dy("rm", n, check=True)
    t1 = time.time() + 1
    wait_for(lambda: time.time() > t1, 5, what="the window to close")
    window = ("--since", f"{t0:.3f}", "--until", f"{t1:.3f}")

    p = dy("events", *window, "--format", "{{.Action}} {{.Actor.Attributes.name}}", timeout=20)
    assert p.returncode == 0, p.stderr
    assert [ln for ln in p.stdout.splitlines() if ln.endswith(f" {n}")] == [
        f"create {n}", f"start {n}", f"die {n}", f"destroy {n}"], p.stdout

    # the default line: RFC 3339 time with nanoseconds, type, action, ID, sorted attributes
    p = dy("events", *window, "--filter", "type=container", "--filter", "event=die", timeout=20)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{9}}(Z|[+-]\d\d:\d\d) container die {cid} "
                        rf"\((execDuration=\d+, )?exitCode=4, image=busybox, name={n}\)", lines[0]), lines[0]

    p = dy("events", *window, "--filter", f"container={n}", "--format", "json", timeout=20)
    assert p.returncode == 0, p.stderr
    import json

    first = json.loads(p.stdout.splitlines()[0])
    assert (first["status"], first["id"], first["Type"], first["Actor"]["Attributes"]["name"]) == (
        "create", cid, "container", n)

    # a window before anything happened is empty; --until alone ends at once
    p = dy("events", "--since", f"{t0 - 100:.3f}", "--until", f"{t0 - 50:.3f}", timeout=20)
    assert (p.returncode, p.stdout) == (0, ""), p.stderr


@pytest.mark.parametrize("args,err", [
    (["--filter", "nope=1"], "invalid filter 'nope'"),
    (["--filter", "type"], "bad format of filter (expected name=value)"),
    (["--since", "yesterday"], "failed to parse value as time or duration"),
    (["--format", "{{.Nope"], "template"),
    (["--since", "100", "--until", "50"], "`since` time (100) cannot be after `until` time (50)"),
])
def test_events_bad_flags_one_line(dy: Runner, args: list[str], err: str) -> None:
    p = dy("events", *([] if "--until" in args else ["--until", "1"]), *args, timeout=20)
    assert p.returncode != 0
    assert err in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_events_follow_until_interrupted(dy: Runner, busybox: str, root: Path) -> None:
    n = _name()
    f = subprocess.Popen([DOCKYARD, "--root", str(root), "events", "--since", f"{time.time() - 1:.3f}", "--filter",
                          f"container={n}", "--format", "{{.Type}} {{.Action}}"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        dy("run", "--rm", "--name", n, "busybox", "true", check=True)
        got: list[str] = []
        assert f.stdout is not None
        while len(got) < 4:
            got.append(f.stdout.readline().strip())
        assert got == ["container create", "container start", "container die", "container destroy"], got
        assert f.poll() is None  # still following
        f.send_signal(signal.SIGINT)
        assert f.wait(timeout=10) == 130
        assert "Traceback" not in (f.stderr.read() if f.stderr else "")
    finally:
        if f.poll() is None:
            f.kill()
        f.wait()

