"""stop, kill and rm -f of several containers act on them concurrently, as Docker does, and still answer in the
order the containers were named."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

N = 4
T = 2  # stop's timeout: PID 1 without a TERM handler ignores SIGTERM, so each stop waits it out


def _run(dy, n: int) -> list[str]:
    names = [f"par{i}" for i in range(n)]
    for name in names:
        dy("run", "-d", "--network", "none", "--name", name, "busybox", "sleep", "1000", check=True)
    return names


def test_stop_of_several_waits_their_timeouts_at_once(dy, busybox):
    names = _run(dy, N)
    try:
        t = time.monotonic()
        p = dy("stop", "-t", str(T), *names)
        took = time.monotonic() - t
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == names  # in the order given
        # one after the other would take N * T = 8 s
        assert took < (N - 1) * T, f"stop of {N} took {took:.1f} s"
        states = dy("inspect", "-f", "{{.State.Status}}", *names).stdout.split()
        assert states == ["exited"] * N
    finally:
        dy("rm", "-f", *names)


def test_kill_and_rm_f_of_several_with_a_missing_one(dy, busybox):
    names = _run(dy, N)
    try:
        p = dy("kill", names[0], "nosuch", *names[1:])
        assert p.returncode == 1
        assert p.stdout.split() == names
        assert "No such container: nosuch" in p.stderr
        assert dy("inspect", "-f", "{{.State.ExitCode}}", *names).stdout.split() == ["137"] * N
        p = dy("rm", "-f", *names, "nosuch", names[0])
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == names
        assert dy("ps", "-aq").stdout.strip() == ""
    finally:
        dy("rm", "-f", *names)
