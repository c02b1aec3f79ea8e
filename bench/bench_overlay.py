"""Overlay networks (issue 18): data-plane throughput and the cost of attaching a container. A report, not a test.

    python bench/bench_overlay.py [--seconds 5] [--runs 15]

Two "hosts" are network namespaces joined by veths on a private bridge (as in tests/cli/test_overlay.py), each with
its own dockyard root, one etcd on the bridge's address in the root namespace. Needs root, etcd (scripts/deps.sh)
and iperf3, which this bench installs for itself when missing (``apt-get install --no-install-recommends iperf3``;
not in deps.sh: nothing of dockyard needs it). Everything it makes is removed at the end.

1. Throughput (iperf3 TCP, one stream, ``--seconds`` each): a container on host 1 to a container on host 2 through
   the overlay (iperf3 runs in the containers' network namespaces, ``nsenter --net``, the busybox image has none)
   vs a plain veth pair directly between the two host namespaces, and vs the hosts' underlay (veth - bridge -
   veth, the path VXLAN packets take). Goal: overlay >= 0.8x the plain veth.
2. Attach cost: ``run --rm --network X busybox true`` on host 1 with X an overlay vs a bridge network (median of
   ``--runs``, after 3 warm-up runs). Goal: overlay <= bridge + 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, EPOCH, REPO  # noqa: E402


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {p.stderr.strip()}")
    return p


class Host:
    def __init__(self, ns: str, addr: str, root: Path, store: str) -> None:
        self.ns, self.addr, self.root, self.store = ns, addr, root, store

    def dy_argv(self, *args: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.ns}", DOCKYARD, "--root", str(self.root), "--cluster-store",
                self.store, "--cluster-advertise", self.addr, *args]

    def dy(self, *args: str) -> str:
        return run(*self.dy_argv(*args)).stdout

    def pid(self, cname: str) -> int:
        return int(json.loads(self.dy("inspect", cname))[0]["State"]["Pid"])


def ensure_iperf3() -> None:
    if shutil.which("iperf3"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "iperf3"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def iperf(server_net: str, client_net: str, target: str, seconds: int) -> float:
    """Gbit/s of one TCP stream from the client namespace to a server in the server namespace (netns paths)."""
    port = str(random.randrange(30000, 40000))
    srv = subprocess.Popen(["nsenter", f"--net={server_net}", "iperf3", "-s", "-1", "-p", port],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:  # until the server listens
            p = subprocess.run(["nsenter", f"--net={client_net}", "iperf3", "-c", target, "-p", port, "-t",
                                str(seconds), "-J"], capture_output=True, text=True, timeout=seconds + 30)
            try:
                got = json.loads(p.stdout)
            except ValueError:
                got = {}
            if p.returncode == 0 and "sum_received" in got.get("end", {}):
                return float(got["end"]["sum_received"]["bits_per_second"]) / 1e9
            if time.monotonic() > deadline:
                raise SystemExit(f"iperf3 to {target}: {got.get('error') or p.stderr[-300:]}")
            time.sleep(0.1)
    finally:
        srv.kill()
        srv.wait()


def attach_times(h: Host, net: str, runs: int) -> list[float]:
    out = []
    for i in range(3 + runs):
        t = time.perf_counter()
        run(*h.dy_argv("run", "--rm", "--network", net, "busybox", "true"))
        if i >= 3:
            out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("etcd"):
        raise SystemExit("needs root and etcd (scripts/deps.sh)")
    ensure_iperf3()
    tag = f"{os.getpid() % 10000:04d}"
    base = f"10.215.{random.randrange(100, 250)}"
    br = f"obb{tag}"
    work = Path(tempfile.mkdtemp(prefix="dyb-overlay-"))
    nss: list[str] = []
    hosts: list[Host] = []
    etcd = None
    try:
        run("ip", "link", "add", br, "type", "bridge")
        run("ip", "addr", "add", f"{base}.1/24", "dev", br)
        run("ip", "link", "set", br, "up")
        port = random.randrange(20000, 30000)
        store = f"etcd://{base}.1:{port}"
        etcd = subprocess.Popen(["etcd", "--data-dir", str(work / "etcd"), "--name", "b",
                                 "--listen-client-urls", f"http://{base}.1:{port}",
                                 "--advertise-client-urls", f"http://{base}.1:{port}",
                                 "--listen-peer-urls", f"http://127.0.0.1:{port + 1}",
                                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{port + 1}",
                                 "--initial-cluster", f"b=http://127.0.0.1:{port + 1}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tar = run(str(REPO / "scripts" / "mkimage-busybox.sh"), "--tar-only").stdout.strip()
        for i in (1, 2):
            ns = f"obh{tag}{i}"
            run("ip", "netns", "add", ns)
            nss.append(ns)
            run("ip", "link", "add", f"ob{tag}{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "link", "set", f"ob{tag}{i}", "master", br, "up")
            for cmd in (["ip", "addr", "add", f"{base}.{10 + i}/24", "dev", "eth0"], ["ip", "link", "set", "eth0",
                        "up"], ["ip", "link", "set", "lo", "up"]):
                run("ip", "netns", "exec", ns, *cmd)
            root = work / f"root{i}"
            root.mkdir()
            subprocess.run([DOCKYARD, "--root", str(root), "import", "--change", 'CMD ["sh"]', tar, "busybox"],
                           check=True, env=EPOCH, capture_output=True)
            hosts.append(Host(ns, f"{base}.{10 + i}", root, store))
        # a plain veth pair straight between the two host namespaces
        run("ip", "link", "add", "pv1", "netns", nss[0], "type", "veth", "peer", "name", "pv2", "netns", nss[1])
        for ns, ip, dev in ((nss[0], "10.216.0.1/30", "pv1"), (nss[1], "10.216.0.2/30", "pv2")):
            run("ip", "netns", "exec", ns, "ip", "addr", "add", ip, "dev", dev)
            run("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
        h1, h2 = hosts
        deadline = time.monotonic() + 30
        while subprocess.run(h1.dy_argv("network", "ls"), capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("etcd did not answer")
            time.sleep(0.2)
        h1.dy("network", "create", "-d", "overlay", "--attachable", "bov")
        h1.dy("network", "create", "bbr")
        h1.dy("run", "-d", "--name", "s", "--network", "bov", "busybox", "sleep", "3600")
        h2.dy("run", "-d", "--name", "c", "--network", "bov", "busybox", "sleep", "3600")
        s_ip = json.loads(h1.dy("inspect", "s"))[0]["NetworkSettings"]["Networks"]["bov"]["IPAddress"]
        s_net, c_net = f"/proc/{h1.pid('s')}/ns/net", f"/proc/{h2.pid('c')}/ns/net"
        deadline = time.monotonic() + 30
        while subprocess.run(h2.dy_argv("exec", "c", "ping", "-c", "1", "-W", "1", s_ip),
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the overlay did not come up")
        n1, n2 = f"/run/netns/{nss[0]}", f"/run/netns/{nss[1]}"
        veth = [iperf(n1, n2, "10.216.0.1", a.seconds) for _ in range(3)]
        under = [iperf(n1, n2, h1.addr, a.seconds) for _ in range(3)]
        over = [iperf(s_net, c_net, s_ip, a.seconds) for _ in range(3)]
        bridge_t = attach_times(h1, "bbr", a.runs)
        overlay_t = attach_times(h1, "bov", a.runs)

        mv, mu, mo = statistics.median(veth), statistics.median(under), statistics.median(over)
        mb, mov = statistics.median(bridge_t) * 1000, statistics.median(overlay_t) * 1000
        print(f"\n{'throughput (iperf3, 1 TCP stream, median of 3)':<52} {'Gbit/s':>8}")
        print(f"{'  plain veth between the host namespaces':<52} {mv:8.2f}")
        print(f"{'  underlay (veth - bridge - veth)':<52} {mu:8.2f}")
        print(f"{'  overlay, container to container across hosts':<52} {mo:8.2f}")
        print(f"  overlay / plain veth = {mo / mv:.2f}x (goal >= 0.8x); overlay / underlay = {mo / mu:.2f}x")
        print(f"\n{'run --rm --network X busybox true (median of ' + str(a.runs) + ')':<52} {'ms':>8}")
        print(f"{'  bridge network':<52} {mb:8.1f}")
        print(f"{'  overlay network':<52} {mov:8.1f}")
        print(f"  overlay - bridge = {mov - mb:+.1f} ms (goal <= +50 ms)")
    finally:
        for h in hosts:
            ids = subprocess.run(h.dy_argv("ps", "-aq"), capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run(h.dy_argv("rm", "-f", *ids), capture_output=True)
        if hosts:
            subprocess.run(hosts[0].dy_argv("network", "rm", "bov", "bbr"), capture_output=True)
            for h in hosts:
                subprocess.run(h.dy_argv("network", "ls"), capture_output=True)  # drops the overlay's mirror
                for pidfile in h.root.glob("networks/*/*.pid"):  # watchers and DNS servers (they leave alone)
                    try:
                        os.kill(int(pidfile.read_text().split()[0]), 15)
                    except (OSError, ValueError, IndexError):
                        pass
        for ns in nss:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", br], capture_output=True)
        if etcd is not None:
            etcd.terminate()
            etcd.wait(timeout=20)
        sys.path.insert(0, str(REPO))
        from tests.conftest import cleanup_root

        for h in hosts:
            cleanup_root(h.root)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
