"""`run -it busybox sh` is a real interactive shell, driven through a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import pexpect
import pytest

from tests.conftest import DOCKYARD
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def _prompt(child):
    """Wait for busybox's prompt; its line editor asks the terminal for the cursor position (ESC[6n), which a
    real terminal answers: answer it too, or the shell waits for the reply before reading the next line."""
    child.expect(r"# ")
    try:
        child.expect(r"\x1b\[6n", timeout=1)
        child.send("\x1b[1;1R")
    except pexpect.TIMEOUT:
        pass


def _spawn(root, *args):
    child = pexpect.spawn(DOCKYARD, ["--root", str(root), *args], timeout=15, encoding="utf-8",
                          dimensions=(30, 100))
    return child


def test_interactive_shell_raw_mode_resize_ctrl_c_and_ctrl_d(root, busybox):
    child = _spawn(root, "run", "-it", "--rm", "busybox", "sh")
    try:
        _prompt(child)
        child.sendline("tty; ls -l /dev/console | grep -c 136")
        child.expect("/dev/pts/0")
        child.expect("1")  # /dev/console is the container's pty (major 136)
        _prompt(child)
        child.sendline("stty size")
        child.expect("30 100")
        child.setwinsize(40, 120)  # SIGWINCH reaches the container's terminal
        _prompt(child)
        child.sendline("stty size")
        child.expect("40 120")
        # a child shell in the foreground: SIGINT ends it whether it has exec'd sleep yet or not
        child.sendline("sh -c 'echo sl$((1+1))ep; exec sleep 30'")
        child.expect("sl2ep")
        child.sendintr()  # Ctrl-C interrupts the foreground process in the container, not dockyard
        _prompt(child)
        child.sendline("echo alive-$((6*7))")
        child.expect("alive-42")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5


def test_ctrl_d_exits_and_ctrl_p_ctrl_q_detaches(root, busybox, dy):
    child = _spawn(root, "run", "-it", "--rm", "busybox", "sh")
    _prompt(child)
    child.sendeof()  # Ctrl-D
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    child = _spawn(root, "run", "-it", "--name", "det", "busybox", "sh")
    _prompt(child)
    child.send("\x10\x11")  # Ctrl-P Ctrl-Q
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert dy("inspect", "-f", "{{.State.Running}}", "det").stdout.strip() == "true"
    # and attach brings the shell back
    child = _spawn(root, "attach", "det")
    child.sendline("echo back-$((1+1))")
    child.expect("back-2")
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    wait_for(lambda: dy("inspect", "-f", "{{.State.Status}}", "det").stdout.strip() == "exited")
    dy("rm", "det", check=True)


def test_exec_it(root, busybox, dy):
    cid = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    child = _spawn(root, "exec", "-it", cid, "sh")
    _prompt(child)
    child.sendline("tty")  # a terminal of the container's own /dev/pts, as with docker
    child.expect("/dev/pts/0")
    child.sendline("exit 4")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4
    dy("rm", "-f", cid, check=True)
