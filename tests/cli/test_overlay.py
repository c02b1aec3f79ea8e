"""Overlay networks across hosts (``network create -d overlay``), with the cluster's state in a real etcd.

Three "hosts" are network namespaces on this machine, each with a veth on a shared test bridge (10.213.N.0/24,
unique names per run), its own state root and its own advertise address; one etcd listens on the bridge's address
in the root namespace. Every dockyard command of a host runs inside its namespace (``nsenter --net``), so the
containers' namespaces are children of it. Commands enter only the host's network namespace (``nsenter --net``):
``ip netns exec`` would also give them a mount namespace of their own with a fresh /sys (no cgroup hierarchy), and
a container's mounts would be invisible to the next command. Everything (namespaces, bridge, etcd, roots) is removed at teardown.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD, cleanup_root
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("etcd"), reason="needs root and etcd")]


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {p.stderr}")
    return p


class Host:
    def __init__(self, ns: str, addr: str, root: Path, store: str) -> None:
        self.ns, self.addr, self.root, self.store = ns, addr, root, store

    def dy(self, *args: str, timeout: float = 60, flags: bool = True) -> subprocess.CompletedProcess:
        cl = ["--cluster-store", self.store, "--cluster-advertise", self.addr] if flags else []
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.ns}", DOCKYARD, "--root", str(self.root), *cl,
                               *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "DOCKYARD_OVERLAY_TTL": "4"})

    def ok(self, *args: str) -> str:
        p = self.dy(*args)
        assert p.returncode == 0, f"{self.ns}: dockyard {' '.join(args)}: {p.stderr}"
        return p.stdout

    def links(self) -> str:
        return sh("ip", "netns", "exec", self.ns, "ip", "-o", "link").stdout

    def tables(self) -> str:
        return sh("ip", "netns", "exec", self.ns, "nft", "list", "tables").stdout


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory: pytest.TempPathFactory, busybox_tar: Path):
    """The three hosts and etcd, made once for the module (each test leaves no container or overlay behind:
    ``cluster`` below makes sure of it)."""
    tmp_path = tmp_path_factory.mktemp("overlay")
    tag = f"{os.getpid() % 10000:04d}{random.randrange(100):02d}"
    net = random.randrange(100, 250)
    br = f"ovt{tag}"
    base = f"10.213.{net}"
    made: list[str] = []
    etcd = None
    hosts: list[Host] = []
    try:
        sh("ip", "link", "add", br, "type", "bridge")
        made.append("br")
        sh("ip", "addr", "add", f"{base}.1/24", "dev", br)
        sh("ip", "link", "set", br, "up")
        port = random.randrange(20000, 30000)
        store = f"etcd://{base}.1:{port}"
        etcd = subprocess.Popen(["etcd", "--data-dir", str(tmp_path / "etcd"), "--name", f"t{tag}",
                                 "--listen-client-urls", f"http://{base}.1:{port}",
                                 "--advertise-client-urls", f"http://{base}.1:{port}",
                                 "--listen-peer-urls", f"http://127.0.0.1:{port + 1}",
                                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{port + 1}",
                                 "--initial-cluster", f"t{tag}=http://127.0.0.1:{port + 1}"],
                                stdout=subprocess.DEVNULL, stderr=open(tmp_path / "etcd.log", "w"))
        for i in (1, 2, 3):
            ns, addr = f"ovh{tag}{i}", f"{base}.{10 + i}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "link", "add", f"ov{tag}{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", f"ov{tag}{i}", "master", br, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            root = tmp_path / f"root{i}"
            root.mkdir()
            h = Host(ns, addr, root, store)
            sh(DOCKYARD, "--root", str(root), "import", "--change", 'CMD ["sh"]', str(busybox_tar), "busybox:latest")
            hosts.append(h)
        from dockyard.network.etcd import Etcd

        kv = Etcd(store)

        def up() -> bool:
            try:
                kv.count_prefix("/")
                return True
            except Exception:  # noqa: BLE001
                return False
        wait_for(up, timeout=20, what="etcd answering")
        yield hosts, kv, br, etcd
    finally:
        for h in hosts:
            subprocess.run(["nsenter", f"--net=/run/netns/{h.ns}", DOCKYARD, "--root", str(h.root), "rm", "-f", *[
                ln for ln in subprocess.run(["nsenter", f"--net=/run/netns/{h.ns}", DOCKYARD, "--root", str(h.root), "ps",
                                             "-aq"], capture_output=True, text=True).stdout.split()]],
                           capture_output=True, timeout=120)
            cleanup_root(h.root)
        for h in hosts:  # the watchers and DNS servers of the hosts (they leave by themselves; make sure)
            for pidfile in h.root.glob("networks/*/*.pid"):
                try:
                    os.kill(int(pidfile.read_text().split()[0]), 15)
                except (OSError, ValueError, IndexError):
                    pass
        for item in reversed(made):
            if item == "br":
                subprocess.run(["ip", "link", "del", br], capture_output=True)
            else:
                subprocess.run(["ip", "netns", "del", item], capture_output=True)
        if etcd is not None:
            etcd.terminate()
            etcd.wait(timeout=20)


@pytest.fixture
def cluster(cluster_env):
    """The module's cluster; at teardown, even on failure, every container of every host and every overlay are
    removed, so that the next test starts from an empty cluster."""
    yield cluster_env
    hosts, kv = cluster_env[0], cluster_env[1]
    for h in hosts:
        ids = h.dy("ps", "-aq").stdout.split()
        if ids:
            h.dy("rm", "-f", *ids, timeout=120)
    for h in hosts:
        for name in h.dy("network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}}").stdout.split():
            h.dy("network", "rm", name)
    for h in hosts:  # mirrors of removed overlays leave on the next read
        h.dy("network", "ls")
    wait_for(lambda: kv.count_prefix("/dockyard/") == 0, timeout=30, what="no etcd record left")


def _ping(h: Host, cname: str, target: str, count: int = 1) -> bool:
    return h.dy("exec", cname, "ping", "-c", str(count), "-W", "1", target, timeout=30).returncode == 0


def test_overlay_across_three_hosts(cluster) -> None:
    hosts, kv, br, _etcd = cluster
    h1, h2, h3 = hosts
    nid = h1.ok("network", "create", "-d", "overlay", "--attachable", "--subnet", "10.99.7.0/24", "ov1").strip()
    # seen on host 3 (ls and inspect read the cluster)
    assert "ov1 overlay global" in h3.ok("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
    info = json.loads(h3.ok("network", "inspect", "ov1"))[0]
    assert (info["Id"], info["Driver"], info["Scope"], info["Attachable"]) == (nid, "overlay", "global", True)
    assert info["IPAM"]["Config"] == [{"Subnet": "10.99.7.0/24", "Gateway": "10.99.7.1"}]
    # the same name from another host is refused
    p = h2.dy("network", "create", "-d", "overlay", "ov1")
    assert p.returncode != 0 and "already exists" in p.stderr

    h1.ok("run", "-d", "--name", "c1", "--network", "ov1", "--network-alias", "one", "busybox", "sleep", "300")
    h2.ok("run", "-d", "--name", "c2", "--network", "ov1", "busybox", "sleep", "300")
    h3.ok("run", "-d", "--name", "c3", "--network", "ov1", "busybox", "sleep", "300")
    ips = {h.ns: json.loads(h.ok("inspect", c))[0]["NetworkSettings"]["Networks"]["ov1"]["IPAddress"]
           for h, c in ((h1, "c1"), (h2, "c2"), (h3, "c3"))}
    assert len(set(ips.values())) == 3, ips  # no address handed out twice across hosts
    ip1, ip2 = ips[h1.ns], ips[h2.ns]
    # by IP, by name and alias (the embedded DNS answers names of containers on other hosts)
    wait_for(lambda: _ping(h1, "c1", ip2), timeout=20, what="c1 -> c2 by IP")
    wait_for(lambda: _ping(h2, "c2", "c1"), timeout=20, what="c2 -> c1 by name")
    assert _ping(h2, "c2", "one")
    out = h2.ok("exec", "c2", "nslookup", "c1")
    assert ip1 in out
    wait_for(lambda: _ping(h3, "c3", "c1") and _ping(h3, "c3", "c2"), timeout=20, what="host 3 reaches both")
    # MTU: underlay 1500 - 50
    assert "mtu 1450" in h1.ok("exec", "c1", "ip", "link", "show", "eth0")
    # TCP across hosts
    h2.ok("exec", "-d", "c2", "sh", "-c", "mkdir -p /w && echo hello-overlay > /w/index.html && "
          "httpd -f -p 8080 -h /w")
    wait_for(lambda: "hello-overlay" in h1.dy("exec", "c1", "wget", "-q", "-O", "-", "http://c2:8080/").stdout,
             timeout=20, what="wget c2 from c1")

    # a second overlay is isolated from the first
    h2.ok("network", "create", "-d", "overlay", "--attachable", "ov2")
    h2.ok("run", "-d", "--name", "d2", "--network", "ov2", "busybox", "sleep", "300")
    assert not _ping(h2, "d2", ip1)
    assert not _ping(h2, "d2", "c1")
    assert not _ping(h1, "c1", json.loads(h2.ok("inspect", "d2"))[0]["NetworkSettings"]["Networks"]["ov2"]
                     ["IPAddress"])

    # rm is refused while any host has a container on it
    p = h3.dy("network", "rm", "ov1")
    assert p.returncode != 0 and "active endpoints" in p.stderr

    # host 1 is cut off (longer than the lease) and comes back: the cluster converges
    veth1 = f"ov{br[3:]}1"
    sh("ip", "link", "set", veth1, "down")
    try:
        wait_for(lambda: kv.count_prefix(f"/dockyard/overlay/ep/{nid}/") == 2, timeout=30,
                 what="host 1's records expire with its lease")
        h2.ok("run", "-d", "--name", "c4", "--network", "ov1", "busybox", "sleep", "300")
    finally:
        sh("ip", "link", "set", veth1, "up")
    wait_for(lambda: kv.count_prefix(f"/dockyard/overlay/ep/{nid}/") == 4, timeout=30,
             what="host 1 registers again")
    wait_for(lambda: _ping(h1, "c1", "c4") and _ping(h3, "c3", "c1"), timeout=30, what="converged")

    # etcd down: running containers keep talking, a new attachment fails with one line naming the store
    # (done last but one; the store comes back for the clean-up below)
    # everything removed: no vxlan device, bridge, firewall table or etcd record left
    for h, names in ((h1, ["c1"]), (h2, ["c2", "c4", "d2"]), (h3, ["c3"])):
        h.ok("rm", "-f", *names)
    h1.ok("network", "rm", "ov1")
    h3.ok("network", "rm", "ov2")
    for h in hosts:
        wait_for(lambda h=h: "vxlan" not in sh("ip", "netns", "exec", h.ns, "ip", "-d", "-o", "link").stdout
                 and " ov-" not in h.links() and not _sandbox_mounts(h), timeout=20, what=f"{h.ns} devices gone")
        assert "dockyard-ov-" not in h.tables()
        wait_for(lambda h=h: not any(os.path.exists(p) and _locked(p) for p in
                                     h.root.glob("networks/*/overlay.lock")), timeout=20, what="watchers gone")
        assert "ov1" not in h.ok("network", "ls")
    wait_for(lambda: kv.count_prefix("/dockyard/") == 0, timeout=20, what="no etcd record left")


def _locked(path: Path) -> bool:
    from dockyard.network.daemon import lock_held

    return lock_held(str(path))


def test_overlay_without_etcd(cluster) -> None:
    """With the cluster store down, running containers keep talking; a new attachment fails with one line."""
    hosts, kv, _br, etcd = cluster
    h1, h2, _h3 = hosts
    h1.ok("network", "create", "-d", "overlay", "--attachable", "ovx")
    h1.ok("run", "-d", "--name", "a", "--network", "ovx", "busybox", "sleep", "300")
    h2.ok("run", "-d", "--name", "b", "--network", "ovx", "busybox", "sleep", "300")
    wait_for(lambda: _ping(h1, "a", "b"), timeout=20, what="a -> b")
    etcd_pid = etcd.pid
    os.kill(etcd_pid, 19)  # SIGSTOP: unreachable (connections hang, then time out)
    try:
        t = time.monotonic()
        assert _ping(h1, "a", "b", 3)
        p = h1.dy("run", "--rm", "--network", "ovx", "busybox", "true")
        assert p.returncode != 0
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and hosts[0].store in lines[0] and "unreachable" in lines[0], p.stderr
        assert time.monotonic() - t < 30
    finally:
        os.kill(etcd_pid, 18)
    h1.ok("rm", "-f", "a")
    h2.ok("rm", "-f", "b")
    h2.ok("network", "rm", "ovx")
    wait_for(lambda: kv.count_prefix("/dockyard/") == 0, timeout=20, what="no etcd record left")


def _ip(h: Host, cname: str, net: str) -> str:
    return json.loads(h.ok("inspect", cname))[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def _get(h: Host, url: str) -> str:
    """An HTTP GET from the host's own namespace (not from a container)."""
    return subprocess.run(["nsenter", f"--net=/run/netns/{h.ns}", "curl", "-s", "-m", "3", url],
                          capture_output=True, text=True, timeout=20).stdout


def test_overlay_publish_on_own_host(cluster) -> None:
    """-p on an overlay container publishes on the host it runs on, and only there."""
    hosts, _kv, _br, _etcd = cluster
    h1, h2, _h3 = hosts
    h1.ok("network", "create", "-d", "overlay", "--attachable", "ovp")
    h2.ok("run", "-d", "--name", "web", "-p", "18080:8080", "--network", "ovp", "busybox", "sh", "-c",
          "mkdir -p /w && echo published-overlay > /w/index.html && httpd -f -p 8080 -h /w")
    url = f"http://{h2.addr}:18080/"
    wait_for(lambda: "published-overlay" in _get(h2, url), timeout=20, what="published port on its own host")
    assert "published-overlay" in _get(h1, url)  # reached from another host through the underlay
    assert "published-overlay" not in _get(h2, f"http://{h1.addr}:18080/")  # not published on host 1
    assert json.loads(h2.ok("inspect", "web"))[0]["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"] == "18080"


def test_overlay_internal_has_no_outbound_route(cluster) -> None:
    """--internal: containers on different hosts reach each other, nothing outside the overlay."""
    hosts, _kv, br, _etcd = cluster
    h1, h2, _h3 = hosts
    h1.ok("network", "create", "-d", "overlay", "--internal", "--attachable", "ovi")
    assert json.loads(h2.ok("network", "inspect", "ovi"))[0]["Internal"] is True
    h1.ok("run", "-d", "--name", "i1", "--network", "ovi", "busybox", "sleep", "300")
    h2.ok("run", "-d", "--name", "i2", "--network", "ovi", "busybox", "sleep", "300")
    wait_for(lambda: _ping(h1, "i1", "i2"), timeout=20, what="i1 -> i2 across hosts")
    routes = h1.ok("exec", "i1", "ip", "route")
    assert "default" not in routes, routes
    underlay = h1.addr.rpartition(".")[0]
    p = h1.dy("exec", "i1", "ping", "-c", "1", "-W", "1", f"{underlay}.1")  # the etcd host, outside the overlay
    assert p.returncode != 0 and "unreachable" in (p.stdout + p.stderr).lower(), p.stdout + p.stderr
    assert not _ping(h1, "i1", h2.addr)  # nor another host's underlay address


def test_overlay_connect_disconnect_running(cluster) -> None:
    """network connect/disconnect of a running container: reached across hosts by name, then gone everywhere."""
    hosts, kv, _br, _etcd = cluster
    h1, h2, _h3 = hosts
    nid = h1.ok("network", "create", "-d", "overlay", "--attachable", "ovc").strip()
    h2.ok("run", "-d", "--name", "peer", "--network", "ovc", "busybox", "sleep", "300")
    h1.ok("run", "-d", "--name", "late", "busybox", "sleep", "300")  # on the host's default bridge
    h1.ok("network", "connect", "--alias", "latecomer", "ovc", "late")
    ip = _ip(h1, "late", "ovc")
    assert "mtu 1450" in h1.ok("exec", "late", "ip", "link", "show", "eth1")
    peer_ip = _ip(h2, "peer", "ovc")  # (late started on the default bridge: no embedded DNS, as in Docker)
    wait_for(lambda: _ping(h1, "late", peer_ip), timeout=20, what="connected container reaches across hosts")
    wait_for(lambda: _ping(h2, "peer", "latecomer"), timeout=20, what="connected container reached by alias")
    assert kv.count_prefix(f"/dockyard/overlay/ep/{nid}/") == 2
    h1.ok("network", "disconnect", "ovc", "late")
    assert "ovc" not in json.loads(h1.ok("inspect", "late"))[0]["NetworkSettings"]["Networks"]
    assert kv.count_prefix(f"/dockyard/overlay/ep/{nid}/") == 1
    assert kv.get(f"/dockyard/overlay/ip/{nid}/{ip}") is None
    wait_for(lambda: not _ping(h2, "peer", ip), timeout=20, what="disconnected container unreachable")
    assert h2.dy("exec", "peer", "nslookup", "latecomer").returncode != 0
    # connected again: works again (its kernel side on host 1 was torn down and is made anew)
    h1.ok("network", "connect", "ovc", "late")
    wait_for(lambda: _ping(h2, "peer", "late") and _ping(h1, "late", peer_ip), timeout=20, what="reconnected")


def test_overlay_not_attachable_refused(cluster) -> None:
    """An overlay made without --attachable cannot be joined by run or network connect: one line, no record."""
    hosts, kv, _br, _etcd = cluster
    h1, h2, _h3 = hosts
    nid = h1.ok("network", "create", "-d", "overlay", "ovn").strip()
    assert json.loads(h2.ok("network", "inspect", "ovn"))[0]["Attachable"] is False
    p = h2.dy("run", "--rm", "--network", "ovn", "busybox", "true")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0 and len(lines) == 1 and "not manually attachable" in lines[0], p.stderr
    h2.ok("run", "-d", "--name", "x", "busybox", "sleep", "300")
    p = h2.dy("network", "connect", "ovn", "x")
    assert p.returncode != 0 and "not manually attachable" in p.stderr, p.stderr
    assert kv.count_prefix(f"/dockyard/overlay/ep/{nid}/") == 0
    assert kv.count_prefix(f"/dockyard/overlay/ip/{nid}/") == 0
    assert "vxlan" not in sh("ip", "netns", "exec", h2.ns, "ip", "-d", "-o", "link").stdout


def test_overlay_cluster_from_daemon_json(cluster) -> None:
    """cluster-store and cluster-advertise read from <root>/daemon.json when no flag or variable is given."""
    hosts, _kv, _br, _etcd = cluster
    h1, h2, _h3 = hosts
    p = h2.dy("network", "create", "-d", "overlay", "ovd", flags=False)
    assert p.returncode != 0 and "cluster store" in p.stderr
    cfg = h2.root / "daemon.json"
    cfg.write_text(json.dumps({"cluster-store": h2.store, "cluster-advertise": h2.addr}))
    try:
        h1.ok("network", "create", "-d", "overlay", "--attachable", "ovd")
        p = h2.dy("network", "ls", "--format", "{{.Name}} {{.Driver}}", flags=False)
        assert p.returncode == 0 and "ovd overlay" in p.stdout, p.stderr
        p = h2.dy("run", "-d", "--name", "dj", "--network", "ovd", "busybox", "sleep", "300", flags=False)
        assert p.returncode == 0, p.stderr
        h1.ok("run", "-d", "--name", "dk", "--network", "ovd", "busybox", "sleep", "300")
        wait_for(lambda: h2.dy("exec", "dj", "ping", "-c", "1", "-W", "1", "dk", flags=False).returncode == 0,
                 timeout=20, what="daemon.json host reaches the other by name")
        rec = json.loads(h1.ok("network", "inspect", "ovd"))[0]
        assert rec["Scope"] == "global"
        cfg.write_text(json.dumps({"cluster-store": 5}))
        p = h2.dy("network", "ls", flags=False)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode != 0 and len(lines) == 1 and "daemon.json" in lines[0], p.stderr
    finally:
        cfg.unlink()


def test_overlay_concurrent_overlapping_creates(cluster) -> None:
    """Two hosts create overlays with overlapping but different subnets at the same moment: exactly one wins."""
    hosts, kv, _br, _etcd = cluster
    h1, h2, _h3 = hosts
    for round_ in range(4):
        def create(h: Host, name: str, subnet: str) -> subprocess.Popen:
            return subprocess.Popen(["nsenter", f"--net=/run/netns/{h.ns}", DOCKYARD, "--root", str(h.root),
                                     "--cluster-store", h.store, "--cluster-advertise", h.addr, "network", "create",
                                     "-d", "overlay", "--subnet", subnet, name],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        a = create(h1, f"race{round_}a", f"10.77.{round_}.0/24")
        b = create(h2, f"race{round_}b", f"10.77.{round_}.0/23" if round_ % 2 == 0 else f"10.77.{round_ - 1}.0/23")
        ra, rb = a.communicate(timeout=60), b.communicate(timeout=60)
        codes = sorted([a.returncode, b.returncode])
        assert codes[0] == 0 and codes[1] != 0, (ra, rb)
        loser = ra if a.returncode else rb
        assert "overlaps" in loser[1], loser
        assert kv.count_prefix("/dockyard/overlay/net/") == 1
        h1.ok("network", "rm", f"race{round_}a" if a.returncode == 0 else f"race{round_}b")
        assert kv.count_prefix("/dockyard/overlay/net/") == 0


def test_overlay_create_race_forced(cluster) -> None:
    """Both creates read the cluster's networks before either claims (a barrier after the read, real etcd): the
    overlapping-yet-different subnets are still caught, one create wins and the other says the pool overlaps."""
    import threading
    from types import SimpleNamespace

    from dockyard.errors import Conflict
    from dockyard.network import overlay
    from dockyard.network.etcd import Etcd

    hosts, kv, _br, _etcd = cluster
    barrier = threading.Barrier(2, timeout=20)
    waited: set[int] = set()

    class ReadThenWait(Etcd):
        def range_prefix(self, prefix: str):  # type: ignore[override]
            out = super().range_prefix(prefix)
            if prefix.endswith("/net/") and threading.get_ident() not in waited:
                waited.add(threading.get_ident())
                barrier.wait()
            return out

    results: dict[str, str] = {}

    def create(name: str, subnet: str) -> None:
        try:
            results[name] = "ok " + overlay.create(str(hosts[0].root), name, subnet, "", False, False, {}, {})
        except Conflict as e:
            results[name] = "conflict " + str(e)

    orig = overlay.cluster
    overlay.cluster = lambda root: SimpleNamespace(kv=ReadThenWait(hosts[0].store), url=hosts[0].store,  # type: ignore
                                                   advertise=hosts[0].addr)
    try:
        ts = [threading.Thread(target=create, args=a) for a in (("wide", "10.78.0.0/16"), ("narrow", "10.78.5.0/24"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
    finally:
        overlay.cluster = orig
    assert sorted(v.split()[0] for v in results.values()) == ["conflict", "ok"], results
    assert any("overlaps" in v for v in results.values()), results
    assert kv.count_prefix("/dockyard/overlay/net/") == 1


def _etcd_requests(store: str, methods: str = "Range|Txn|Put|DeleteRange|LeaseGrant|LeaseRevoke",
                   metric: str = "grpc_server_handled_total") -> int:
    """How many requests of ``methods`` the test's etcd has handled (its /metrics, as an operator sees them; by
    default the KV and lease grant/revoke requests: not the lease keep-alives, which the hosts' watchers send on
    their own clock)."""
    import re
    import urllib.request

    hostport = store.split("://", 1)[1]
    text = urllib.request.urlopen(f"http://{hostport}/metrics", timeout=10).read().decode()
    pat = re.compile(rf'^{metric}\{{[^}}]*grpc_method="({methods})"[^}}]*\}} (\d+)', re.M)
    return sum(int(m.group(2)) for m in pat.finditer(text))


def test_overlay_attach_round_trips(cluster) -> None:
    """An attach to an overlay this host is on already costs one read and one transaction in etcd, its release
    one transaction: 3 requests for ``run --rm`` (were 9 calls, each on a new connection: +311 ms over a bridge on
    the bench, docs/decisions.md)."""
    hosts, kv, _br, _etcd = cluster
    h1, h2, _h3 = hosts
    watches = _etcd_requests(h1.store, "Watch", "grpc_server_started_total")
    h1.ok("network", "create", "-d", "overlay", "--attachable", "ovr")
    h1.ok("run", "-d", "--name", "keep", "--network", "ovr", "busybox", "sleep", "300")
    h2.ok("run", "-d", "--name", "peer", "--network", "ovr", "busybox", "sleep", "300")
    wait_for(lambda: _ping(h1, "keep", "peer"), timeout=20, what="keep -> peer")
    # both hosts' watchers have registered and follow their watch (from then on: keep-alives only)
    wait_for(lambda: _etcd_requests(h1.store, "Watch", "grpc_server_started_total") >= watches + 2, timeout=30,
             what="the watchers watching")
    before = _etcd_requests(h1.store)
    p = h1.dy("run", "--rm", "--network", "ovr", "busybox", "ping", "-c", "1", "-W", "2", "peer")
    assert p.returncode == 0, p.stderr
    assert _etcd_requests(h1.store) - before <= 3
    assert kv.count_prefix("/dockyard/overlay/ep/") == 2  # the --rm container's record went with it
    h1.ok("rm", "-f", "keep")
    h2.ok("rm", "-f", "peer")
    h1.ok("network", "rm", "ovr")


def test_etcd_client_keeps_its_connection(cluster) -> None:
    """The etcd client sends its calls on one kept-alive connection (each call made and closed a connection:
    a TIME_WAIT socket per call), and replaces a kept connection that was dropped (ss -K) without an error."""
    from dockyard.network.etcd import Etcd

    hosts = cluster[0]
    port = int(hosts[0].store.rsplit(":", 1)[1])

    def time_wait() -> int:  # client sockets to etcd's port closed by this side (state 06) in this namespace
        rows = [ln.split() for ln in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        return sum(1 for r in rows if r[3] == "06" and int(r[2].split(":")[1], 16) == port)

    kv = Etcd(hosts[0].store)
    before = time_wait()
    for i in range(20):
        assert kv.get(f"/dockyard-test/{i}") is None
    assert time_wait() - before <= 1
    assert kv.conn is not None
    sport = kv.conn.sock.getsockname()[1]
    sh("ss", "-K", "-t", "sport", "=", f":{sport}")
    kv.put("/dockyard-test/x", "1")
    assert kv.get("/dockyard-test/x") == (b"1", 0)
    assert kv.delete("/dockyard-test/", prefix=True) == 1
    kv.close()


def test_overlay_teardown_left_to_the_watcher(cluster) -> None:
    """The last local container's exit leaves the overlay's sandbox (bridge, VXLAN device, gateway veth) and
    firewall table to the network's watcher (they cost ~85 ms of the exit of a ``run --rm``, which waited for
    them), and the watcher removes them when it leaves, a few seconds later."""
    hosts, _kv, _br, _etcd = cluster
    h1 = hosts[0]
    nid = h1.ok("network", "create", "-d", "overlay", "--attachable", "ovq").strip()
    gw = "ov-" + nid[:12]
    assert h1.dy("run", "--rm", "--network", "ovq", "busybox", "true").returncode == 0
    assert gw in h1.links()  # the run returned before its teardown (the watcher waits 3 s for a next container)
    assert _sandbox_mounts(h1)
    wait_for(lambda: gw not in h1.links() and not _sandbox_mounts(h1)
             and "dockyard-ov-" + nid[:12] not in h1.tables(), timeout=20, what="the watcher's teardown")
    wait_for(lambda: not _locked(h1.root / "networks" / nid / "overlay.lock"), timeout=20, what="watcher gone")
    h1.ok("network", "rm", "ovq")


def test_etcd_client_after_fork(cluster) -> None:
    """A process that forks with a kept connection (the CLI reads the cluster, then forks a monitor that attaches):
    parent and child each get their own answers, none of the other's (they shared one socket)."""
    from dockyard.network.etcd import Etcd

    hosts = cluster[0]
    kv = Etcd(hosts[0].store)
    kv.put("/dockyard-test/parent", "P" * 3000)
    kv.put("/dockyard-test/child", "C" * 3000)
    assert kv.get("/dockyard-test/parent") is not None  # the connection is open now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            code = 0 if all(kv.get("/dockyard-test/child") == (b"C" * 3000, 0) for _ in range(200)) else 1
        finally:
            os._exit(code)
    try:
        ok = all(kv.get("/dockyard-test/parent") == (b"P" * 3000, 0) for _ in range(200))
    finally:
        _, status = os.waitpid(pid, 0)
    assert ok and os.waitstatus_to_exitcode(status) == 0
    assert kv.delete("/dockyard-test/", prefix=True) == 2
    kv.close()


def _counted(h: Host, table: str) -> int:
    """Packets counted by the counters of the test's tables (bridge and ip families) in the host's namespace."""
    n = 0
    for family in ("bridge", "ip"):
        out = json.loads(sh("ip", "netns", "exec", h.ns, "nft", "-j", "list", "table", family, table).stdout)
        for item in out["nftables"]:
            for expr in (item.get("rule") or {}).get("expr", []):
                if "counter" in expr:
                    n += int(expr["counter"]["packets"])
    return n


def _sandbox_mounts(h: Host) -> list[str]:
    with open("/proc/mounts") as f:
        return [m for m in (ln.split()[1] for ln in f) if m.startswith(str(h.root) + "/")]


def test_overlay_sandbox_keeps_bridged_frames_off_the_host_firewall(cluster) -> None:
    """An overlay's bridge and VXLAN device live in a network namespace of their own on each host (its sandbox,
    mounted at networks/<id>/netns): frames between the overlay's containers, on one host or across hosts, never
    run the host namespace's netfilter (with br_netfilter loaded they ran the host's nft chains and conntrack on
    the bridge ``ov-<id>``: 17 % of a transfer's CPU, docs/decisions.md), while the gateway, the embedded DNS and
    the VXLAN socket stay in the host namespace. A sandbox left by a killed watcher is reused, a namespace file
    left unmounted (a reboot) is made anew, and nothing is left after removal."""
    hosts, kv, _br, _etcd = cluster
    h1, h2, _h3 = hosts
    nid = h1.ok("network", "create", "-d", "overlay", "--attachable", "--subnet", "10.99.41.0/24", "ovs").strip()
    table = f"dytest{os.getpid()}"
    rules = "".join(f"table {fam} {table} {{\n chain counted {{\n type filter hook forward priority -300;\n"
                    " ip saddr 10.99.41.0/24 counter\n ip daddr 10.99.41.0/24 counter\n }\n}\n"
                    for fam in ("bridge", "ip"))
    subprocess.run(["ip", "netns", "exec", h1.ns, "nft", "-f", "-"], input=rules, text=True, check=True)
    try:
        h1.ok("run", "-d", "--name", "s1", "--network", "ovs", "busybox", "sleep", "300")
        h1.ok("run", "-d", "--name", "s2", "--network", "ovs", "busybox", "sleep", "300")
        h2.ok("run", "-d", "--name", "s3", "--network", "ovs", "busybox", "sleep", "300")
        wait_for(lambda: _ping(h1, "s1", "s3"), timeout=20, what="s1 -> s3 across hosts by name")
        assert _ping(h1, "s1", _ip(h1, "s2", "ovs"), 3)  # on one host
        assert _ping(h1, "s1", _ip(h2, "s3", "ovs"), 3)  # across hosts
        assert _ping(h1, "s2", "10.99.41.1")  # the gateway, in the host namespace
        assert _counted(h1, table) == 0
        # what an admin sees: in the host namespace the gateway veth, no VXLAN device; in the sandbox the rest
        sandbox = h1.root / "networks" / nid / "netns"
        host_links = sh("ip", "netns", "exec", h1.ns, "ip", "-d", "-o", "link").stdout
        assert "vxlan" not in host_links and f"ov-{nid[:12]}@" in host_links and "veth" in host_links
        inner = subprocess.run(["nsenter", f"--net={sandbox}", "ip", "-d", "-o", "link"], capture_output=True,
                               text=True, check=True).stdout
        assert f"vx-{nid[:12]}" in inner and "vxlan id" in inner and "br0" in inner
        nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
        if nf.exists():
            got = subprocess.run(["nsenter", f"--net={sandbox}", "cat", str(nf)], capture_output=True, text=True)
            assert got.stdout.strip() == "0"
        # the watcher killed (no teardown): its sandbox is reused by the next container, and a new watcher runs
        os.kill(int((h1.root / "networks" / nid / "overlay.pid").read_text().split()[0]), 9)
        wait_for(lambda: not _locked(h1.root / "networks" / nid / "overlay.lock"), timeout=10, what="watcher dead")
        p = h1.dy("run", "--rm", "--network", "ovs", "busybox", "ping", "-c", "1", "-W", "2", "s3")
        assert p.returncode == 0, p.stderr
        h1.ok("rm", "-f", "s1", "s2")
        wait_for(lambda: not sandbox.exists() and not _sandbox_mounts(h1), timeout=20, what="sandbox removed")
        # a namespace file that is not mounted (a reboot, a crash between making and mounting it): made anew
        sandbox.write_text("")
        p = h1.dy("run", "--rm", "--network", "ovs", "busybox", "ping", "-c", "1", "-W", "2", "s3")
        assert p.returncode == 0, p.stderr
        assert _counted(h1, table) == 0
    finally:
        for fam in ("bridge", "ip"):
            sh("ip", "netns", "exec", h1.ns, "nft", "delete", "table", fam, table, check=False)
    h2.ok("rm", "-f", "s3")
    wait_for(lambda: kv.count_prefix(f"/dockyard/overlay/ep/{nid}/") == 0, timeout=20, what="no record left")
    h1.ok("network", "rm", "ovs")
    for h in hosts:
        h.ok("network", "ls")
        wait_for(lambda h=h: not _sandbox_mounts(h) and not (h.root / "networks" / nid / "netns").exists()
                 and f"ov-{nid[:12]}" not in h.links(), timeout=20, what=f"{h.ns}: nothing of the overlay left")


def test_overlay_older_layout_adopted(cluster) -> None:
    """A host whose overlay was set up by an older dockyard (the bridge ``ov-<id>`` and the VXLAN device in the
    host namespace, a running container's veth on that bridge): the next container's attach makes the sandbox and
    moves the running container's veth into it, so both reach each other and the other hosts' containers."""
    hosts, kv, _br, _etcd = cluster
    h1, h2, _h3 = hosts
    nid = h1.ok("network", "create", "-d", "overlay", "--attachable", "--subnet", "10.99.42.0/24", "ovm").strip()
    h1.ok("run", "-d", "--name", "m1", "--network", "ovm", "busybox", "sleep", "300")
    h2.ok("run", "-d", "--name", "m2", "--network", "ovm", "busybox", "sleep", "300")
    wait_for(lambda: _ping(h1, "m1", "m2"), timeout=20, what="m1 -> m2")
    # the older layout, by hand: the sandbox's devices back in the host namespace, the sandbox gone
    br, vx = f"ov-{nid[:12]}", f"vx-{nid[:12]}"
    sandbox = h1.root / "networks" / nid / "netns"
    cid = h1.ok("inspect", "-f", "{{.Id}}", "m1").strip()
    veth = f"v{cid[:7]}{nid[:7]}"
    vni = json.loads(h1.ok("network", "inspect", "ovm"))[0]["Options"][
        "com.docker.network.driver.overlay.vxlanid_list"]
    inner = ["nsenter", f"--net={sandbox}", "ip", "link"]
    sh(*inner, "del", vx)
    sh(*inner, "set", veth, "netns", h1.ns)
    host = ["ip", "netns", "exec", h1.ns]
    sh(*host, "ip", "link", "del", br)
    sh("umount", "-l", str(sandbox))
    sandbox.unlink()
    sh(*host, "ip", "link", "add", br, "type", "bridge")
    sh(*host, "ip", "addr", "add", "10.99.42.1/24", "dev", br)
    sh(*host, "ip", "link", "add", vx, "type", "vxlan", "id", vni, "dstport", "4789", "local", h1.addr,
       "nolearning", "proxy")
    for dev in (vx, veth):
        sh(*host, "ip", "link", "set", dev, "master", br, "up")
    sh(*host, "ip", "link", "set", br, "up")
    assert f"{veth}@" in h1.links() and "vxlan" in sh(*host, "ip", "-d", "-o", "link").stdout
    h1.ok("run", "-d", "--name", "m3", "--network", "ovm", "busybox", "sleep", "300")
    wait_for(lambda: _ping(h1, "m3", "m1"), timeout=20, what="the new container reaches the adopted one")
    wait_for(lambda: _ping(h1, "m1", "m2") and _ping(h2, "m2", "m3"), timeout=20, what="across hosts")
    host_links = sh(*host, "ip", "-d", "-o", "link").stdout
    assert "vxlan" not in host_links and f"{veth}@" not in host_links and f"{br}@" in host_links
    h1.ok("rm", "-f", "m1", "m3")
    h2.ok("rm", "-f", "m2")
    wait_for(lambda: kv.count_prefix(f"/dockyard/overlay/ep/{nid}/") == 0, timeout=20, what="no record left")
    h1.ok("network", "rm", "ovm")
    wait_for(lambda: not _sandbox_mounts(h1) and br not in h1.links(), timeout=20, what="nothing left")
