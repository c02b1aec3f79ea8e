"""Values a user gives that end up in a container's /etc files: validated, so that none can add a line."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("flags", [
    ["--add-host", "good:10.0.0.1\n6.6.6.6 bank.example"],
    ["--add-host", "bank.example 6.6.6.6:10.0.0.1"],
    ["--add-host", "noaddress"],
    ["--dns", "1.1.1.1\nnameserver 6.6.6.6"],
    ["--dns", "resolver.example"],
    ["--hostname", "a\n6.6.6.6 bank.example"],
    ["--hostname", "under_score"],
    ["--domainname", "x y"],
])
def test_injected_lines_are_refused(dy, busybox, flags):
    p = dy("run", "--rm", "--network", "none", *flags, "busybox", "cat", "/etc/hosts", "/etc/resolv.conf")
    assert p.returncode == 125, p.stdout
    assert p.stderr.startswith("Error: ") and p.stderr.count("\n") == 1, p.stderr
    assert "bank.example" not in p.stdout and "6.6.6.6" not in p.stdout
    assert dy("ps", "-aq").stdout == ""  # nothing was created


def test_valid_values_reach_the_files(dy, busybox):
    p = dy("run", "--rm", "--network", "none", "--add-host", "db:10.0.0.7", "--add-host", "v6=[::1]",
           "--dns", "192.0.2.53", "--hostname", "web-1", "busybox",
           "sh", "-c", "cat /etc/hosts /etc/resolv.conf; hostname")
    assert p.returncode == 0, p.stderr
    assert "10.0.0.7\tdb\n" in p.stdout and "::1\tv6\n" in p.stdout
    assert "nameserver 192.0.2.53\n" in p.stdout
    assert p.stdout.rstrip().endswith("web-1")
