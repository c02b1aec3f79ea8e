"""IPAM and port bookkeeping on a real SQLite store: no address handed out twice, even by concurrent processes;
``-p`` parsing; and concurrent ``run``s on one network getting distinct addresses."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from pathlib import Path

import pytest

from dockyard.errors import Conflict, InvalidArgument
from dockyard.network.ports import parse
from dockyard.network.store import NetworkStore, mac_for, parse_cidr
from dockyard.state.db import Store


def _net(root: Path, subnet: str = "10.230.0.0/29") -> NetworkStore:
    ns = NetworkStore(Store(str(root)))
    ns.create("n1", subnet=subnet, kernel=False)
    return ns


def test_allocation_skips_network_gateway_broadcast_and_reuses_freed(tmp_path: Path) -> None:
    ns = _net(tmp_path)
    net = ns.get("n1")
    ips = [ns.allocate(net, f"c{i}", [], "") for i in range(5)]
    assert ips == ["10.230.0.2", "10.230.0.3", "10.230.0.4", "10.230.0.5", "10.230.0.6"]
    with pytest.raises(Conflict, match="no available IPv4 addresses"):
        ns.allocate(net, "c9", [], "")
    ns.release("c2")
    assert ns.allocate(net, "c9", [], "") == "10.230.0.4"
    with pytest.raises(Conflict, match="Address already in use: 10.230.0.5"):
        ns.allocate(net, "c10", [], "10.230.0.5")
    with pytest.raises(InvalidArgument):
        ns.allocate(net, "c11", [], "10.231.0.5")


def _grab(root: str, n: int, q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ns = NetworkStore(Store(root))
    net = ns.get("n1")
    q.put([ns.allocate(net, f"{uuid.uuid4().hex}", [], "") for _ in range(n)])


def test_concurrent_processes_never_get_the_same_address(tmp_path: Path) -> None:
    _net(tmp_path, "10.231.0.0/22")
    q: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.get_context("fork").Process(target=_grab, args=(str(tmp_path), 25, q))
             for _ in range(8)]
    for p in procs:
        p.start()
    got = [ip for _ in procs for ip in q.get(timeout=60)]
    for p in procs:
        p.join(30)
    assert len(got) == 200 and len(set(got)) == 200


def test_subnets_do_not_overlap_and_cidr_checks(tmp_path: Path) -> None:
    ns = NetworkStore(Store(str(tmp_path)))
    a = ns.create("a", kernel=False)
    b = ns.create("b", kernel=False)
    assert not (parse_cidr(a.subnet)[0] == parse_cidr(b.subnet)[0])
    with pytest.raises(Conflict, match="overlaps"):
        ns.create("c", subnet=a.subnet, kernel=False)
    with pytest.raises(InvalidArgument, match="it should be 10.9.0.0/16"):
        ns.create("d", subnet="10.9.1.0/16", kernel=False)
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway"):
        ns.create("e", subnet="10.8.0.0/16", gateway="10.7.0.1", kernel=False)
    with pytest.raises(Conflict, match="already exists"):
        ns.create("a", kernel=False)
    assert mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_port_parsing() -> None:
    assert parse(["80"]) == [{"host_ip": "", "host_port": 0, "container_port": 80, "proto": "tcp"}]
    assert parse(["8000:80/udp"]) == [{"host_ip": "", "host_port": 8000, "container_port": 80, "proto": "udp"}]
    assert parse(["127.0.0.1::80"]) == [{"host_ip": "127.0.0.1", "host_port": 0, "container_port": 80,
                                         "proto": "tcp"}]
    assert parse(["0.0.0.0:1-2:3-4"]) == [
        {"host_ip": "", "host_port": 1, "container_port": 3, "proto": "tcp"},
        {"host_ip": "", "host_port": 2, "container_port": 4, "proto": "tcp"}]
    for bad, msg in (("80/sctp", "invalid proto"), ("x:80", "invalid hostPort"), ("70000", "invalid containerPort"),
                     ("1-3:1-2", "invalid ranges"), ("1.2.3:80:80", "invalid IP address")):
        with pytest.raises(InvalidArgument, match=msg):
            parse([bad])


@pytest.mark.e2e
def test_concurrent_runs_get_distinct_addresses(dy, busybox, root: Path) -> None:
    import subprocess

    from tests.conftest import DOCKYARD

    name = f"par-{uuid.uuid4().hex[:8]}"
    dy("network", "create", name, check=True)
    try:
        procs = [subprocess.Popen([DOCKYARD, "--root", str(root), "run", "-d", "--network", name, "busybox",
                                   "sleep", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(12)]
        cids = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            cids.append(out.strip())
        ips = []
        for cid in cids:
            nets = json.loads(dy("inspect", "-f", "{{json .NetworkSettings.Networks}}", cid, check=True).stdout)
            ips.append(nets[name]["IPAddress"])
        assert len(set(ips)) == 12 and all(ips)
        out = dy("exec", cids[0], "sh", "-c", " && ".join(f"ping -c1 -W2 {ip} >/dev/null" for ip in ips[1:4]))
        assert out.returncode == 0
    finally:
        ids = dy("ps", "-aq").stdout.split()
        if ids:
            dy("rm", "-f", *ids)
        dy("network", "rm", name)
