"""The embedded DNS server of user-defined networks (network.dns): names and aliases, isolation between networks,
forwarding to the upstream resolver (a fake one on 127.0.0.1), and its life (restart after kill -9, gone with the
network). DNS traffic goes only to the test's bridges and to loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import cleanup_root

pytestmark = pytest.mark.e2e

EXTERNAL = "ext.dockyard.test"
EXTERNAL_IP = "10.123.45.67"


class FakeUpstream:
    """A UDP DNS responder on 127.0.0.1: A for EXTERNAL, NXDOMAIN otherwise; remembers the names asked."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.asked: list[str] = []
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped:
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                continue
            qid, flags = struct.unpack_from("!HH", data)
            i, labels = 12, []
            while data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode())
                i += data[i] + 1
            qtype = struct.unpack_from("!H", data, i + 1)[0]
            name = ".".join(labels).lower()
            self.asked.append(name)
            answers = []
            if name == EXTERNAL and qtype == 1:
                answers.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(EXTERNAL_IP))
            rcode = 0 if name == EXTERNAL else 3
            reply = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0) + data[12:i + 5]
            self.sock.sendto(reply + b"".join(answers), addr)

    def close(self) -> None:
        self.stopped = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def upstream():  # type: ignore[no-untyped-def]
    u = FakeUpstream()
    yield u
    u.close()


@pytest.fixture
def dns(root: Path, dy, busybox, upstream: FakeUpstream):  # type: ignore[no-untyped-def]
    """``dy`` whose commands send forwarded queries to the fake upstream; cleans containers and networks up."""
    env = {"DOCKYARD_DNS_UPSTREAM": f"127.0.0.1:{upstream.port}"}

    def run(*args: str, **kw):  # type: ignore[no-untyped-def]
        return dy(*args, env=env, **kw)

    yield run
    cleanup_root(root)
    dy("network", "prune", "-f")


def uid() -> str:
    return uuid.uuid4().hex[:8]


def net_info(dns, name: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(network ID, gateway)."""
    n = json.loads(dns("network", "inspect", name, check=True).stdout)[0]
    return n["Id"], n["IPAM"]["Config"][0]["Gateway"]


def ip_of(dns, container: str, network: str) -> str:  # type: ignore[no-untyped-def]
    nets = json.loads(dns("inspect", "-f", "{{json .NetworkSettings.Networks}}", container, check=True).stdout)
    return str(nets[network]["IPAddress"])


def server_pids(net_id: str) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                cmd = Path(f"/proc/{p}/cmdline").read_bytes()
            except OSError:
                continue
            if b"dockyard.network.dns" in cmd and net_id.encode() in cmd:
                out.append(int(p))
    return out


def wait_for(fn, deadline: float = 10) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while not fn():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def test_names_aliases_and_forwarding(dns, upstream: FakeUpstream) -> None:
    name, a1 = f"dns-{uid()}", f"a1-{uid()}"
    dns("network", "create", name, check=True)
    _, gw = net_info(dns, name)
    dns("run", "-d", "--name", a1, "--network", name, "--network-alias", "db", "busybox", "sleep", "60", check=True)
    ip = ip_of(dns, a1, name)
    out = dns("run", "--rm", "--network", name, "busybox", "sh", "-c",
              f"cat /etc/resolv.conf; nslookup {a1}; nslookup DB; nslookup {EXTERNAL}", check=True).stdout
    assert f"nameserver {gw}\n" in out and "options ndots:0" in out
    assert out.count(f"Address: {ip}\n") == 2, out
    assert f"Address: {EXTERNAL_IP}" in out, out
    assert EXTERNAL in upstream.asked
    assert a1 not in upstream.asked and "db" not in upstream.asked  # answered locally
    # the default bridge keeps the host's resolvers
    out = dns("run", "--rm", "busybox", "cat", "/etc/resolv.conf", check=True).stdout
    assert f"nameserver {gw}" not in out


def test_another_network_cannot_resolve_or_query(dns) -> None:
    n1, n2, a1 = f"dns-{uid()}", f"dns-{uid()}", f"a1-{uid()}"
    dns("network", "create", n1, check=True)
    dns("network", "create", n2, check=True)
    _, gw1 = net_info(dns, n1)
    dns("run", "-d", "--name", a1, "--network", n1, "busybox", "sleep", "60", check=True)
    ip = ip_of(dns, a1, n1)
    p = dns("run", "--rm", "--network", n2, "busybox", "nslookup", a1)
    assert ip not in p.stdout and p.returncode != 0
    p = dns("run", "--rm", "--network", n2, "busybox", "nslookup", "-timeout=1", "-retry=1", a1, gw1)
    assert ip not in p.stdout and p.returncode != 0


def test_server_restarts_after_kill_and_leaves_with_the_network(dns) -> None:
    name, c1 = f"dns-{uid()}", f"c1-{uid()}"
    dns("network", "create", name, check=True)
    net_id, _ = net_info(dns, name)
    cid = dns("run", "-d", "--name", c1, "--network", name, "busybox", "sleep", "60", check=True).stdout.strip()
    ip = ip_of(dns, c1, name)
    assert wait_for(lambda: len(server_pids(net_id)) == 1)
    (old,) = server_pids(net_id)
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: not server_pids(net_id))
    assert dns("inspect", "-f", "{{.State.Running}}", cid, check=True).stdout.strip() == "true"
    out = dns("run", "--rm", "--network", name, "busybox", "nslookup", c1, check=True).stdout
    assert f"Address: {ip}\n" in out
    pids = server_pids(net_id)
    assert len(pids) == 1 and pids != [old]
    dns("rm", "-f", cid, check=True)
    dns("network", "rm", name, check=True)
    assert wait_for(lambda: not server_pids(net_id), 5)
