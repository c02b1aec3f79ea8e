"""`run`/`attach` --sig-proxy: signals sent to the attached CLI reach the container's init (default without a
tty), and --sig-proxy=false leaves the container alone. Also `run -a` and `--pull`, which were parsed and ignored."""

from __future__ import annotations

import signal
import subprocess
import threading
import uuid

import pytest

from tests.conftest import DOCKYARD
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

# pid 1 handles TERM, INT and USR1 itself (a shell loop with short sleeps runs its traps promptly)
SCRIPT = ('trap "echo got-term; exit 3" TERM; trap "echo got-int; exit 4" INT; trap "echo got-usr1" USR1; '
          'echo ready; while true; do echo tick; sleep 0.1; done')


class Client:
    """A dockyard CLI process whose output is collected by a thread (read with wait_for, never slept on)."""

    def __init__(self, root, *args: str) -> None:
        self.p = subprocess.Popen([DOCKYARD, "--root", str(root), *args], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out: list[str] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self) -> None:
        for line in self.p.stdout:  # type: ignore[union-attr]
            self.out.append(line)

    def text(self) -> str:
        return "".join(self.out)

    def wait_output(self, word: str, timeout: float = 20) -> None:
        wait_for(lambda: word in self.text() or self.p.poll() is not None, timeout, what=word)
        assert word in self.text(), self.text()

    def finish(self, timeout: float = 30) -> int:
        rc = self.p.wait(timeout)
        self.t.join(5)
        return rc

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)


def running(dy, name: str) -> bool:
    return dy("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"


def test_run_forwards_signals_to_the_container(dy, busybox, root):
    name = f"sp-{uuid.uuid4().hex[:8]}"
    c = Client(root, "run", "--name", name, "busybox", "sh", "-c", SCRIPT)
    try:
        c.wait_output("ready")
        c.p.send_signal(signal.SIGUSR1)  # not fatal: the container says so and runs on, the client stays
        c.wait_output("got-usr1")
        assert c.p.poll() is None and running(dy, name)
        c.p.send_signal(signal.SIGTERM)
        assert c.finish() == 3
        assert "got-term" in c.text()
    finally:
        c.kill()


def test_ctrl_c_goes_to_the_container(dy, busybox, root):
    c = Client(root, "run", "--rm", "busybox", "sh", "-c", SCRIPT)
    try:
        c.wait_output("ready")
        c.p.send_signal(signal.SIGINT)
        assert c.finish() == 4
        assert "got-int" in c.text()
    finally:
        c.kill()


def test_sig_proxy_false_leaves_the_container_running(dy, busybox, root):
    name = f"sp-{uuid.uuid4().hex[:8]}"
    c = Client(root, "run", "--sig-proxy=false", "--name", name, "busybox", "sh", "-c", SCRIPT)
    try:
        c.wait_output("ready")
        c.p.send_signal(signal.SIGTERM)
        assert c.finish() == -signal.SIGTERM  # the client ended, as Docker's without a proxy
        assert "got-term" not in c.text()
        assert running(dy, name)
    finally:
        c.kill()
        dy("rm", "-f", name)


def test_attach_forwards_signals_unless_told_not_to(dy, busybox, root):
    name = f"sp-{uuid.uuid4().hex[:8]}"
    assert dy("run", "-d", "--name", name, "busybox", "sh", "-c", SCRIPT).returncode == 0
    try:
        quiet = Client(root, "attach", "--sig-proxy=false", name)
        try:
            quiet.wait_output("tick")
            quiet.p.send_signal(signal.SIGTERM)
            assert quiet.finish() == -signal.SIGTERM
            assert running(dy, name)
        finally:
            quiet.kill()
        c = Client(root, "attach", name)
        try:
            c.wait_output("tick")
            c.p.send_signal(signal.SIGTERM)
            assert c.finish() == 3
            assert "got-term" in c.text()
        finally:
            c.kill()
    finally:
        dy("rm", "-f", name)


def test_run_attach_selects_streams(dy, busybox):
    p = dy("run", "--rm", "-a", "stdout", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert p.returncode == 0 and p.stdout == "out\n" and "err" not in p.stderr
    p = dy("run", "--rm", "-a", "STDERR", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "err\n"
    p = dy("run", "--rm", "-a", "stdbogus", "busybox", "true")
    assert p.returncode == 125 and "valid streams are STDIN, STDOUT and STDERR" in p.stderr


def test_pull_values_are_checked(dy, busybox):
    p = dy("run", "--rm", "--pull", "sometimes", "busybox", "true")
    assert p.returncode == 125 and "invalid pull option" in p.stderr
    p = dy("run", "--rm", "--pull=always", "busybox", "true")  # applied: docker.io, unreachable from the tests
    assert p.returncode == 125 and "Pulling from library/busybox" in p.stderr
    assert dy("run", "--rm", "--pull=never", "busybox", "true").returncode == 0
