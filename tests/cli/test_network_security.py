"""The host side of dockyard networking under attack (issue 9): the host's loopback services, firewall injection
through image metadata, host interfaces named as bridges, unpublished ports seen from outside, and rules lost to a
ruleset flush. Traffic goes only to loopback, to the test's own bridges and to namespaces the test creates; every
interface, namespace and table a test makes is removed at teardown."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cleanup_root
from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.e2e


def uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def net(root: Path, dy, busybox):  # type: ignore[no-untyped-def]
    """The busybox image plus cleanup of the test's containers and networks, even on failure."""
    yield dy
    cleanup_root(root)
    dy("network", "prune", "-f")


@pytest.fixture
def www(tmp_path: Path) -> Path:
    d = tmp_path / "www"
    d.mkdir()
    (d / "index.html").write_text("hello from dockyard\n")
    return d


def tables() -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return sorted(out.splitlines())


def bridge_of(dy, network: str = "bridge") -> str:  # type: ignore[no-untyped-def]
    info = json.loads(dy("network", "inspect", network, check=True).stdout)[0]
    return str(info["Options"]["com.docker.network.bridge.name"])


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def http_from(ns: str | None, host: str, port: int, timeout: float = 2) -> str:
    """GET / from the host or from network namespace ``ns``; "" when nothing answers."""
    code = (f"import socket; s=socket.create_connection(('{host}', {port}), timeout={timeout}); "
            "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); d=b''\nwhile True:\n c=s.recv(4096)\n if not c: break\n d+=c\n"
            "print(d.decode(errors='replace'))")
    cmd = ["python3", "-c", code]
    p = subprocess.run((["ip", "netns", "exec", ns] if ns else []) + cmd, capture_output=True, text=True,
                       timeout=timeout + 10)
    return p.stdout if p.returncode == 0 else ""


# ---- finding 4: the host's 127.0.0.1 services ----------------------------------------------------------------------
def test_container_cannot_reach_a_host_service_bound_to_loopback(net) -> None:
    """Even a container with NET_ADMIN that routes 127.0.0.0/8 to its gateway (the bridge has route_localnet=1 so
    that published ports answer on 127.0.0.1) gets nothing from a host service bound only to 127.0.0.1."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        srv.setblocking(False)
        port = srv.getsockname()[1]
        script = ('gw=$(ip route | awk "/default/{print \\$3}"); ip addr del 127.0.0.1/8 dev lo; '
                  f'ip route add 127.0.0.0/8 via $gw; ip route get 127.0.0.1; nc -w 2 127.0.0.1 {port} </dev/null; '
                  'echo "nc=$?"')
        p = net("run", "--rm", "--cap-add", "NET_ADMIN", "--sysctl", "net.ipv4.conf.all.route_localnet=1",
                "busybox", "sh", "-c", script, timeout=60)
        assert "via" in p.stdout, p.stdout + p.stderr  # the attack was set up: 127.0.0.1 goes to the gateway
        assert "nc=0" not in p.stdout, p.stdout + p.stderr
        with pytest.raises(BlockingIOError):
            srv.accept()[0].close()  # no connection reached the host's loopback-only service


# ---- finding 5: firewall injection through an image's ExposedPorts -------------------------------------------------
# closes the map element that dockyard <= 0.1 spliced this key's protocol into, then adds a table of its own (empty:
# harmless should it land) and comments out the rest of the line
EVIL = "80/tcp . 1 : 10.0.0.1 . 1 } ; add table ip %s ; #"


def _image_with_exposed(dy, tmp_path: Path, key: str, tag: str) -> None:  # type: ignore[no-untyped-def]
    """busybox re-packed as a docker-save archive whose config has ExposedPorts {key: {}}, loaded as ``tag``."""
    saved = tmp_path / "bb.tar"
    dy("save", "-o", str(saved), "busybox", check=True)
    with tarfile.open(saved) as tf:
        files = {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]
    [m] = json.loads(files["manifest.json"])
    cfg = json.loads(files[m["Config"]])
    cfg["config"]["ExposedPorts"] = {key: {}}
    data = json.dumps(cfg).encode()
    cfg_name = hashlib.sha256(data).hexdigest() + ".json"
    out = {cfg_name: data, **{name: files[name] for name in m["Layers"]},
           "manifest.json": json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": m["Layers"]}]).encode()}
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        for name, body in out.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body))
    dy("load", "-i", str(archive), check=True)


@pytest.fixture
def evil_table() -> Iterator[str]:
    """A unique table name for the attack; deleted at the very end (set up before ``net``, so after its cleanup:
    a vulnerable dockyard would splice the key again when removing the container)."""
    name = f"evil{uid()}"
    yield name
    subprocess.run(["nft", "delete", "table", "ip", name], capture_output=True)


def test_exposed_ports_cannot_inject_firewall_rules(evil_table: str, net, tmp_path: Path) -> None:
    tag = evil_table
    _image_with_exposed(net, tmp_path, EVIL % tag, f"{tag}:1")
    p = net("run", "-d", "-P", f"{tag}:1", "sleep", "30")
    assert f"table ip {tag}" not in tables()
    assert p.returncode == 125, p.stdout + p.stderr
    assert p.stderr.startswith("Error: invalid exposed port in image config") and p.stderr.count("\n") == 1, p.stderr


@pytest.mark.parametrize("key", ["0/tcp", "65536/tcp", "80/icmp", "80-70/tcp", "8O/tcp", "80/tcp/udp"])
def test_malformed_exposed_ports_are_refused(net, tmp_path: Path, key: str) -> None:
    tag = f"bad{uid()}"
    _image_with_exposed(net, tmp_path, key, f"{tag}:1")
    p = net("run", "--rm", "-P", f"{tag}:1", "true")
    assert p.returncode == 125 and p.stderr.startswith("Error: invalid exposed port in image config"), p.stderr
    assert net("ps", "-q", check=True).stdout == ""


def test_exposed_range_is_published(net, tmp_path: Path, www: Path) -> None:
    tag = f"rng{uid()}"
    _image_with_exposed(net, tmp_path, "8000-8001/tcp", f"{tag}:1")
    cid = net("run", "-d", "-P", "-v", f"{www}:/www", f"{tag}:1", "httpd", "-f", "-p", "8001", "-h", "/www",
              check=True).stdout.strip()
    lines = net("port", cid, check=True).stdout.splitlines()
    assert [ln.split(" -> ")[0] for ln in lines] == ["8000/tcp", "8001/tcp"]
    port = int(lines[1].rsplit(":", 1)[1])
    assert wait_for(lambda: "hello from dockyard" in http_from(None, "127.0.0.1", port), what="published port")


# ---- finding 7: host interfaces named as the bridge -----------------------------------------------------------------
@pytest.fixture
def host_link() -> Iterator[callable]:  # type: ignore[valid-type]
    made: list[str] = []

    def make(kind: str) -> str:
        name = f"dyt{kind[0]}{uid()}"
        peer = ["peer", "name", name + "p"] if kind == "veth" else []  # deleting one end deletes both
        subprocess.run(["ip", "link", "add", name, "type", kind, *peer], check=True)
        made.append(name)
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "link", "del", name], capture_output=True)


def test_an_existing_interface_that_is_not_a_bridge_is_refused(net, host_link) -> None:  # type: ignore[no-untyped-def]
    dummy = host_link("veth")  # (this kernel has no dummy driver)
    name = f"n{uid()}"
    p = net("network", "create", "-o", f"com.docker.network.bridge.name={dummy}", name)
    assert p.returncode != 0 and p.stderr.count("\n") == 1, p.stderr
    assert f"cannot use {dummy} as the network's bridge" in p.stderr and "not a bridge" in p.stderr
    assert link_exists(dummy)
    assert net("network", "inspect", name).returncode != 0
    addrs = subprocess.run(["ip", "-o", "addr", "show", "dev", dummy], capture_output=True, text=True).stdout
    assert "inet " not in addrs  # not configured either


def test_an_existing_bridge_is_used_and_never_deleted(net, host_link) -> None:  # type: ignore[no-untyped-def]
    br = host_link("bridge")
    name = f"n{uid()}"
    net("network", "create", "--subnet", "10.215.9.0/24", "-o", f"com.docker.network.bridge.name={br}", name,
        check=True)
    out = net("run", "--rm", "--network", name, "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
              check=True).stdout
    assert "10.215.9.2/24" in out
    net("network", "rm", name, check=True)
    assert link_exists(br)
    assert Path(f"/proc/sys/net/ipv4/conf/{br}/route_localnet").read_text().strip() == "0"
    assert f"dockyard-{br}" not in "\n".join(tables())


@pytest.mark.parametrize("bad", ["../all", "a" * 16, "br;x", "br 1", "-br", ".."])
def test_bridge_names_are_checked(net, bad: str) -> None:
    p = net("network", "create", "-o", f"com.docker.network.bridge.name={bad}", f"n{uid()}")
    assert p.returncode != 0 and p.stderr.startswith("Error: ") and p.stderr.count("\n") == 1, p.stderr
    assert "bridge name" in p.stderr


# ---- finding 13b: unpublished ports from the LAN -------------------------------------------------------------------
@pytest.fixture
def lan(net) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A namespace standing for a LAN host: a veth pair to the host (10.216.N.1 host side), routing the default
    bridge's subnet through the host, as a neighbour with a static route would."""
    n = int(uid()[:2], 16)
    ns, veth = f"dyt{uid()}", f"dyt{uid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
        subprocess.run(["ip", "addr", "add", f"10.216.{n}.1/30", "dev", veth], check=True)
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"10.216.{n}.2/30", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", f"10.216.{n}.1"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield ns, f"10.216.{n}.1"
    finally:
        subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_unpublished_ports_do_not_answer_the_lan(net, lan, www: Path) -> None:
    ns, host_addr = lan
    port = free_port()
    cid = net("run", "-d", "-p", f"{port}:8000", "-v", f"{www}:/www", "busybox", "httpd", "-f", "-p", "8000",
              "-h", "/www", check=True).stdout.strip()
    net("exec", cid, "sh", "-c", "httpd -p 9000 -h /www", check=True)  # a second, unpublished, port
    ip = net("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid, check=True).stdout.strip()
    # the published port answers the LAN through the host's address (DNAT)
    assert wait_for(lambda: "hello from dockyard" in http_from(ns, host_addr, port), what="published port")
    # the container answers the host on both ports (so the one below is really listening)
    assert wait_for(lambda: "hello from dockyard" in http_from(None, ip, 9000), what="port 9000 on the host")
    # but a packet routed in from the LAN to a port that is not published gets nothing
    assert http_from(ns, ip, 9000, timeout=2) == ""
    assert http_from(ns, ip, 8000, timeout=2) == ""


# ---- finding 13c: rules lost to a flush are re-made -----------------------------------------------------------------
def test_a_deleted_table_is_remade_when_a_container_starts(net, www: Path) -> None:
    port1, port2 = free_port(), free_port()
    net("run", "-d", "-p", f"{port1}:8000", "-v", f"{www}:/www", "busybox", "httpd", "-f", "-p", "8000", "-h",
        "/www", check=True)
    assert wait_for(lambda: "hello from dockyard" in http_from(None, "127.0.0.1", port1), what="first port")
    table = f"dockyard-{bridge_of(net)}"
    subprocess.run(["nft", "delete", "table", "ip", table], check=True)  # this root's table only
    assert http_from(None, "127.0.0.1", port1, timeout=1) == ""
    net("run", "-d", "-p", f"{port2}:8000", "-v", f"{www}:/www", "busybox", "httpd", "-f", "-p", "8000", "-h",
        "/www", check=True)
    assert wait_for(lambda: "hello from dockyard" in http_from(None, "127.0.0.1", port2), what="second port")
    # the running container's port is back too (the maps are re-filled from the store)
    assert "hello from dockyard" in http_from(None, "127.0.0.1", port1)
    assert f"table ip {table}" in tables()


# ---- other values that reach the host's network configuration -------------------------------------------------------
def test_mac_address_and_alias_values_are_checked(net) -> None:
    p = net("run", "--rm", "--mac-address", "zz", "busybox", "true")
    assert p.returncode == 125 and p.stderr == "Error: invalid MAC address: 'zz'\n", p.stderr
    p = net("run", "--rm", "--mac-address", "03:42:ac:11:00:09", "busybox", "true")  # multicast
    assert p.returncode == 125 and p.stderr.startswith("Error: invalid MAC address"), p.stderr
    name = f"n{uid()}"
    net("network", "create", name, check=True)
    p = net("run", "--rm", "--network", name, "--network-alias", "a\n1.2.3.4 evil", "busybox", "true")
    assert p.returncode == 125 and p.stderr == "Error: invalid network alias: 'a\\n1.2.3.4 evil'\n", p.stderr
    assert net("ps", "-aq", check=True).stdout == ""
