"""Networking end to end: the default bridge, published ports, custom networks (discovery, isolation, internal),
host/none/container modes, connect/disconnect, and the network verbs. Traffic goes only to loopback, to the
test's own bridges and to a network namespace the test creates."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import cleanup_root
from tests.helpers import free_port

pytestmark = pytest.mark.e2e


def http_get(url: str, timeout: float = 2) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def poll(fn, deadline: float = 10):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while True:
        try:
            return fn()
        except Exception:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def host_state(root: Path, cids: list[str] = ()) -> tuple[list[str], list[str]]:  # type: ignore[assignment]
    """This root's firewall tables and links (its bridges, its containers' veths), as the kernel lists them.

    Other dockyard roots (tests running in parallel) own other bridges and veths: they are not compared."""
    import sqlite3
    import zlib

    bridges = {f"dyd{zlib.crc32(str(root).encode()):08x}"}
    db = root / "dockyard.db"
    if db.exists():
        with sqlite3.connect(db) as c:
            bridges |= {r[0] for r in c.execute("SELECT bridge FROM networks")}
    rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    tables = sorted("table" + t for t in rules.split("\ntable")[0:] if any(f"dockyard-{b} " in t for b in bridges))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    names = [ln.split(":")[1].strip().split("@")[0] for ln in links.splitlines()]
    mine = sorted(n for n in names if n in bridges or any(n.startswith("v" + c[:7]) for c in cids))
    return tables, mine


def settles_to(expected, root: Path, cids: list[str]) -> bool:  # type: ignore[no-untyped-def]
    """The host state reaches ``expected`` (a veth is deleted by the monitor after it reports the exit, or by the
    kernel with the container's namespace: shortly after the command returns)."""
    end = time.monotonic() + 30  # generous: a loaded 2-core host delays the monitors' teardown
    while host_state(root, cids) != expected:
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def net(root: Path, dy, busybox):  # type: ignore[no-untyped-def]
    """The busybox image plus cleanup of containers and networks the test made, even on failure."""
    yield dy
    cleanup_root(root)
    dy("network", "prune", "-f")


@pytest.fixture
def www(tmp_path: Path) -> Path:
    d = tmp_path / "www"
    d.mkdir()
    (d / "index.html").write_text("hello from dockyard\n")
    return d


def ip_on(net, container: str, network: str) -> str:  # type: ignore[no-untyped-def]
    nets = json.loads(net("inspect", "-f", "{{json .NetworkSettings.Networks}}", container, check=True).stdout)
    return str(nets[network]["IPAddress"])


def uid() -> str:
    return uuid.uuid4().hex[:8]


def test_published_port_answers_on_loopback_and_host_address(net, www: Path) -> None:
    port = free_port()
    p = net("run", "-d", "-p", f"{port}:8000", "-v", f"{www}:/www", "busybox", "httpd", "-f", "-p", "8000", "-h",
            "/www", check=True)
    cid = p.stdout.strip()
    assert poll(lambda: http_get(f"http://127.0.0.1:{port}/")) == "hello from dockyard\n"
    host_ip = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                             text=True).stdout.split()
    addrs = [w.split("/")[0] for w in host_ip if "/" in w and w[0].isdigit()]
    for a in addrs[:2]:
        assert http_get(f"http://{a}:{port}/") == "hello from dockyard\n"
    assert net("port", cid, check=True).stdout == f"8000/tcp -> 0.0.0.0:{port}\n"
    assert f"0.0.0.0:{port}->8000/tcp" in net("ps", check=True).stdout
    ports = json.loads(net("inspect", "-f", "{{json .NetworkSettings.Ports}}", cid, check=True).stdout)
    assert ports == {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    # another container reaches it through the gateway address too
    gw = net("inspect", "-f", "{{.NetworkSettings.Gateway}}", cid, check=True).stdout.strip()
    out = net("run", "--rm", "busybox", "sh", "-c", f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {gw} {port}',
              check=True).stdout
    assert "hello from dockyard" in out


def test_without_publish_nothing_answers(net, www: Path) -> None:
    port = free_port()
    net("run", "-d", "-v", f"{www}:/www", "busybox", "httpd", "-f", "-p", str(port), "-h", "/www", check=True)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        http_get(f"http://127.0.0.1:{port}/", timeout=1)


def test_random_host_port_and_publish_all(net, busybox_tar: Path, www: Path) -> None:
    net("import", "--change", 'CMD ["sh"]', "--change", "EXPOSE 8000", str(busybox_tar), "webbox", check=True)
    cid = net("run", "-d", "-P", "-v", f"{www}:/www", "webbox", "httpd", "-f", "-p", "8000", "-h", "/www",
              check=True).stdout.strip()
    line = net("port", cid, "8000", check=True).stdout.strip()
    assert line.startswith("0.0.0.0:")
    port = int(line.rsplit(":", 1)[1])
    assert poll(lambda: http_get(f"http://127.0.0.1:{port}/")) == "hello from dockyard\n"
    cid2 = net("run", "-d", "-p", "127.0.0.1::8000", "-v", f"{www}:/www", "busybox", "httpd", "-f", "-p", "8000",
               "-h", "/www", check=True).stdout.strip()
    line = net("port", cid2, check=True).stdout.strip()
    assert line.startswith("8000/tcp -> 127.0.0.1:")
    port2 = int(line.rsplit(":", 1)[1])
    assert poll(lambda: http_get(f"http://127.0.0.1:{port2}/")) == "hello from dockyard\n"


def test_port_in_use_fails_and_leaves_nothing(net, root: Path) -> None:
    before = host_state(root)
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        p = net("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "30")
        assert p.returncode == 125
        assert p.stderr == f"Error: Bind for 0.0.0.0:{port} failed: port is already allocated\n"
    assert net("ps", "-aq", check=True).stdout == ""
    # the same port taken by another container
    port = free_port()
    net("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "30", check=True)
    p = net("run", "-d", "-p", f"{port}:81", "busybox", "sleep", "30")
    assert p.returncode == 125 and f"Bind for 0.0.0.0:{port} failed: port is already allocated" in p.stderr
    assert len(net("ps", "-aq", check=True).stdout.split()) == 1
    cids = net("ps", "-aq", "--no-trunc").stdout.split()
    net("rm", "-f", *cids, check=True)
    assert settles_to(before, root, cids)


def test_default_bridge_addresses_route_and_etc_files(net) -> None:
    out = net("run", "--rm", "--dns", "192.0.2.53", "-h", "web1", "busybox", "sh", "-c",
              "ip -4 -o addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf", check=True).stdout
    assert "eth0    inet 172." in out or "eth0    inet 192.168." in out
    assert "default via " in out
    ip = out.split("inet ", 1)[1].split("/")[0]
    assert f"{ip}\tweb1\n" in out
    assert "nameserver 192.0.2.53\n" in out
    # no discovery on the default bridge, as Docker
    net("run", "-d", "--name", "peer", "busybox", "sleep", "30", check=True)
    assert net("run", "--rm", "busybox", "ping", "-c1", "-W1", "peer").returncode != 0


def test_custom_network_discovery_and_isolation(net) -> None:
    name = f"secure-network-{uid()}"
    net("network", "create", name, check=True)
    other = f"other-{uid()}"
    net("network", "create", other, check=True)
    net("run", "-d", "--name", "a1", "--network", name, "--network-alias", "db", "busybox", "sleep", "60", check=True)
    net("run", "-d", "--name", "a2", "--network", name, "busybox", "sleep", "60", check=True)
    assert net("exec", "a2", "ping", "-c1", "-W2", "a1").returncode == 0
    assert net("exec", "a1", "ping", "-c1", "-W2", "a2").returncode == 0
    assert net("exec", "a2", "ping", "-c1", "-W2", "db").returncode == 0
    a1_ip = ip_on(net, "a1", name)
    assert a1_ip
    # a third container on the default bridge cannot reach them, nor can they reach it
    net("run", "-d", "--name", "b1", "busybox", "sleep", "60", check=True)
    b1_ip = net("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "b1", check=True).stdout.strip()
    assert net("exec", "b1", "ping", "-c1", "-W1", a1_ip).returncode != 0
    assert net("exec", "a1", "ping", "-c1", "-W1", b1_ip).returncode != 0
    assert net("exec", "b1", "ping", "-c1", "-W1", "a1").returncode != 0
    # another custom network: isolated both ways; connecting joins
    net("run", "-d", "--name", "o1", "--network", other, "busybox", "sleep", "60", check=True)
    o1_ip = ip_on(net, "o1", other)
    assert net("exec", "o1", "ping", "-c1", "-W1", a1_ip).returncode != 0
    assert net("exec", "a1", "ping", "-c1", "-W1", o1_ip).returncode != 0
    net("network", "connect", "--alias", "bridgehead", name, "o1", check=True)
    assert net("exec", "o1", "ping", "-c1", "-W2", "a1").returncode == 0
    assert net("exec", "a1", "ping", "-c1", "-W2", "bridgehead").returncode == 0
    assert net("exec", "o1", "ip", "-o", "link", "show", "eth1").returncode == 0
    info = json.loads(net("network", "inspect", name, check=True).stdout)[0]
    assert sorted(v["Name"] for v in info["Containers"].values()) == ["a1", "a2", "o1"]
    # rm refused while attached
    p = net("network", "rm", name)
    assert p.returncode == 1 and "has active endpoints" in p.stderr
    net("network", "disconnect", name, "o1", check=True)
    assert net("exec", "o1", "ip", "-o", "link", "show", "eth1").returncode != 0
    assert net("exec", "a1", "ping", "-c1", "-W1", "bridgehead").returncode != 0
    net("rm", "-f", "a1", "a2", "o1", "b1", check=True)
    assert net("network", "rm", name, other, check=True).stdout == f"{name}\n{other}\n"


def test_internal_network_has_no_outbound_route(net) -> None:
    name = f"int-{uid()}"
    net("network", "create", "--internal", "--subnet", "10.213.7.0/24", name, check=True)
    out = net("run", "--rm", "--network", name, "busybox", "ip", "route", check=True).stdout
    assert "default" not in out and "10.213.7.0/24 dev eth0" in out
    host = subprocess.run(["ip", "-4", "-o", "route", "get", "1.1.1.1"], capture_output=True, text=True).stdout
    src = host.split(" src ")[1].split()[0] if " src " in host else "192.0.2.2"
    assert net("run", "--rm", "--network", name, "busybox", "ping", "-c1", "-W1", src).returncode != 0
    info = json.loads(net("network", "inspect", name, check=True).stdout)[0]
    assert info["Internal"] is True and info["IPAM"]["Config"] == [{"Subnet": "10.213.7.0/24",
                                                                     "Gateway": "10.213.7.1"}]


@pytest.fixture
def outside():  # type: ignore[no-untyped-def]
    """A network namespace standing for 'the outside', behind a veth pair: 10.214.N.1 (host) - 10.214.N.2."""
    n = int(uid()[:2], 16)
    ns, veth = f"dyt{uid()}", f"dyt{uid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", f"10.214.{n}.1/30", "dev", veth], check=True)
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"10.214.{n}.2/30", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield ns, f"10.214.{n}.2", f"10.214.{n}.1"
    finally:
        subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_outbound_nat_reaches_outside(net, outside) -> None:
    ns, server, host_side = outside
    port = free_port()
    code = ("import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            f"s.bind(('{server}', {port})); s.listen(); s.settimeout(20); c, a = s.accept(); "
            "c.sendall(('peer=' + a[0] + chr(10)).encode()); c.close()")
    srv = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", code])
    try:
        out = poll(lambda: _nc(net, server, port))
        assert out == f"peer={host_side}\n"  # masqueraded to the host's address on that link
    finally:
        srv.kill()
        srv.wait()


def _nc(net, host: str, port: int) -> str:  # type: ignore[no-untyped-def]
    p = net("run", "--rm", "busybox", "nc", "-w", "3", host, str(port))
    if not p.stdout:
        raise AssertionError(p.stderr)
    return str(p.stdout)


def test_host_and_none_and_container_modes(net) -> None:
    host_links = {ln.split(":")[1].strip().split("@")[0] for ln in subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()}
    out = net("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link", check=True).stdout
    inside = {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()}
    assert host_links <= inside | {n for n in host_links if n.startswith(("v", "dy"))}  # racing veths aside
    assert "eth0" in inside or len(inside) > 1
    out = net("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link", check=True).stdout
    assert [ln.split(":")[1].strip() for ln in out.splitlines()] == ["lo"]
    net("run", "-d", "--name", "owner", "busybox", "sleep", "60", check=True)
    ip = net("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "owner", check=True).stdout.strip()
    out = net("run", "--rm", "--network", "container:owner", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
              check=True).stdout
    assert f"inet {ip}/" in out
    p = net("run", "--rm", "--network", "nosuchnet", "busybox", "true")
    assert p.returncode == 125 and p.stderr == "Error: network nosuchnet not found\n"
    assert net("ps", "-aq", "--filter", "status=created", check=True).stdout == ""


def test_ip_and_alias_rules(net) -> None:
    name = f"fixed-{uid()}"
    net("network", "create", "--subnet", "10.215.0.0/24", "--ip-range", "10.215.0.128/25", name, check=True)
    out = net("run", "--rm", "--network", name, "--ip", "10.215.0.50", "busybox", "ip", "-4", "-o", "addr", "show",
              "eth0", check=True).stdout
    assert "inet 10.215.0.50/24" in out
    out = net("run", "--rm", "--network", name, "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
              check=True).stdout
    assert "inet 10.215.0.128/24" in out  # from the ip-range
    p = net("run", "--rm", "--ip", "172.17.0.50", "busybox", "true")
    assert p.returncode == 125 and "user specified IP address is supported on user defined networks only" in p.stderr
    p = net("run", "--rm", "--network-alias", "x", "busybox", "true")
    assert p.returncode == 125 and "network-scoped alias is supported only" in p.stderr
    p = net("run", "--rm", "--network", name, "--ip", "10.216.0.5", "busybox", "true")
    assert p.returncode == 125


def test_network_verbs(net) -> None:
    name = f"verbs-{uid()}"
    nid = net("network", "create", "--label", "team=a", "-o", f"com.docker.network.bridge.name=dyv{uid()[:6]}",
              name, check=True).stdout.strip()
    assert len(nid) == 64
    p = net("network", "create", name)
    assert p.returncode == 1 and p.stderr == f"Error: network with name {name} already exists\n"
    ls = net("network", "ls", check=True).stdout.splitlines()
    assert ls[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert {ln.split()[1] for ln in ls[1:]} >= {"bridge", "host", "none", name}
    assert net("network", "ls", "-q", "--filter", f"name={name}", check=True).stdout == nid[:12] + "\n"
    assert net("network", "ls", "--filter", "label=team=a", "--format", "{{.Name}}", check=True).stdout == \
        name + "\n"
    assert net("network", "ls", "--filter", "type=custom", "--format", "{{.Name}}", check=True).stdout == \
        name + "\n"
    info = json.loads(net("network", "inspect", name, check=True).stdout)[0]
    assert info["Id"] == nid and info["Driver"] == "bridge" and info["Labels"] == {"team": "a"}
    assert info["Options"]["com.docker.network.bridge.name"].startswith("dyv")
    assert subprocess.run(["ip", "link", "show", info["Options"]["com.docker.network.bridge.name"]],
                          capture_output=True).returncode == 0
    assert net("network", "inspect", "-f", "{{.Name}}", nid[:12], check=True).stdout == name + "\n"
    p = net("network", "rm", "bridge")
    assert p.returncode == 1 and "pre-defined network" in p.stderr
    p = net("network", "create", "--subnet", "10.217.0.0/33", f"bad-{uid()}")
    assert p.returncode == 1 and "invalid subnet" in p.stderr
    out = net("network", "prune", "-f", check=True).stdout
    assert out == f"Deleted Networks:\n{name}\n"
    assert subprocess.run(["ip", "link", "show", info["Options"]["com.docker.network.bridge.name"]],
                          capture_output=True).returncode != 0
    p = net("network", "inspect", name)
    assert p.returncode == 1 and p.stderr == f"Error: network {name} not found\n"


def test_restart_keeps_networking(net, www: Path) -> None:
    port = free_port()
    net("run", "-d", "--name", "r1", "-p", f"{port}:8000", "-v", f"{www}:/www", "busybox", "httpd", "-f", "-p",
        "8000", "-h", "/www", check=True)
    assert poll(lambda: http_get(f"http://127.0.0.1:{port}/")) == "hello from dockyard\n"
    net("stop", "-t", "1", "r1", check=True)
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{port}/", timeout=1)
    net("start", "r1", check=True)
    assert poll(lambda: http_get(f"http://127.0.0.1:{port}/")) == "hello from dockyard\n"


def test_run_rm_cycles_leave_host_unchanged(net, root: Path, tmp_path: Path) -> None:
    empty = host_state(root)
    # a long-running container keeps the root's bridge and its firewall table: cycles must leave them as they were
    keeper = net("run", "-d", "busybox", "sleep", "300", check=True).stdout.strip()
    before = host_state(root, [keeper])
    assert len(before[0]) == 1 and len(before[1]) == 2  # the table; the bridge and the keeper's veth
    port = free_port()
    cids = [keeper]
    for i in range(100):
        args = ["-p", f"{port}:80"] if i % 10 == 0 else []
        cidfile = tmp_path / f"cid{i}"
        net("run", "--rm", "--cidfile", str(cidfile), *args, "busybox", "true", check=True)
        cids.append(cidfile.read_text())
    assert settles_to(before, root, cids)
    cid = net("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "30", check=True).stdout.strip()
    during = host_state(root, cids + [cid])
    assert len(during[1]) == 3 and f"tcp . {port} : " in during[0][0]
    net("rm", "-f", cid, check=True)
    assert settles_to(before, root, cids + [cid])
    net("rm", "-f", keeper, check=True)
    assert settles_to(empty, root, cids + [cid])
