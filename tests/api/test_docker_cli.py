"""The docker CLI against ``dockyard system service``: ps, logs, exec, cp, top, diff, export, stats."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import Service, name
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def test_ps_format_names_status(svc: Service) -> None:
    up, done = name(), name()
    assert svc.docker("run", "-d", "--name", up, "busybox", "sleep", "300").returncode == 0
    assert svc.docker("run", "--name", done, "busybox", "sh", "-c", "exit 4").returncode == 4
    p = svc.docker("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert p.returncode == 0, p.stderr
    lines = dict(ln.split(" ", 1) for ln in p.stdout.splitlines())
    assert re.fullmatch(r"Up (Less than a second|\d+ seconds?)", lines[up]), lines
    assert re.fullmatch(r"Exited \(4\) (Less than a second|\d+ seconds?) ago", lines[done]), lines
    p = svc.docker("ps", "--format", "{{.Names}}|{{.Command}}|{{.State}}|{{.Image}}", "--no-trunc")
    assert p.stdout.splitlines() == [f'{up}|"sleep 300"|running|busybox'], p.stderr
    assert svc.docker("rm", "-f", up, done).returncode == 0
