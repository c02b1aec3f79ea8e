"""Hypothesis profiles for the fuzz suite, and a hard per-example time limit.

Profiles (``HYPOTHESIS_PROFILE``, default ``ci``):

- ``ci``: a few hundred examples per target, a per-example deadline, no example database: the whole suite runs in
  well under a minute and does not write into the work tree;
- ``dev``: many more examples and the example database (``.hypothesis/``), for a long local hunt.

Hypothesis' ``deadline`` reports a slow example only after it returns; an example that never returns (a parser
loop) would hang the run. ``hard_limit`` turns that into a failure: SIGALRM raises ``Hang`` in the test.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=timedelta(milliseconds=500), database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.filter_too_much])
settings.register_profile(
    "dev", max_examples=20000, deadline=timedelta(seconds=2), print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.filter_too_much])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

HARD_LIMIT = 5.0
"""Seconds one example may take before it counts as a hang (far above any deadline; only loops reach it)."""


class Hang(Exception):
    """An example ran for longer than HARD_LIMIT seconds."""


@contextmanager
def hard_limit(seconds: float = HARD_LIMIT) -> Iterator[None]:
    """Raise Hang in the running test when the block takes longer than ``seconds`` (main thread only)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"example still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
