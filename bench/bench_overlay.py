"""Overlay networks (issue 18): data-plane throughput and the cost of attaching a container. A report, not a test.

    python bench/bench_overlay.py [--seconds 5] [--repeat 5] [--runs 15] [--cold 5] [--underlay veth|bridge]
                                  [--only throughput|attach] [--trace FILE]

Two "hosts" are network namespaces joined by veths on a private bridge (as in tests/cli/test_overlay.py), each with
its own dockyard root, one etcd on the bridge's address in the root namespace, and a plain veth pair straight
between them. Needs root, etcd (scripts/deps.sh) and iperf3, which this bench installs for itself when missing
(``apt-get install --no-install-recommends iperf3``; not in deps.sh: nothing of dockyard needs it). The sources are
byte-compiled first. Everything it makes is removed at the end.

1. Throughput (iperf3 TCP, one stream, ``--seconds`` each, median of ``--repeat``, the paths interleaved): a
   container on host 1 to a container on host 2 through the overlay (iperf3 runs in the containers' network
   namespaces, ``nsenter --net``: the busybox image has none) vs the plain veth pair between the two host
   namespaces, and vs the hosts' bridge path (veth - bridge - veth, through the root namespace). The hosts
   advertise their address on the plain veth (``--underlay veth``, the default: VXLAN runs over the very link it
   is compared with, so the ratio is the overlay's own cost; the overlay's bridge and VXLAN device are in its sandbox
   namespace, network.overlay) or on the bridge (``--underlay bridge``: the ratio
   then also holds the bridge path's cost, ~0.7x of the plain veth on its own). All paths are measured by the same
   tool with the same options, so the tool's own cost weighs on each alike. Goal: overlay >= 0.8x the plain veth.
   Also the CPU each path costs per GB (both iperf3 ends' own accounting), steadier than the rate on a loaded
   machine: the rate falls when other work takes the CPU, the cost per GB much less.
2. Attach cost: ``run --rm --network X busybox true`` on host 1 with X a bridge network, the overlay (a container
   of host 1 on it: its bridge, VXLAN device and watcher are there) and a second overlay with no container of
   host 1 (each run makes its bridge, VXLAN device and firewall table and removes them at exit; the watcher
   stays between runs: it leaves 3 s after the last), runs of the three interleaved (median of ``--runs`` each,
   after 3 warm-up runs of each), so that a load change on the machine weighs on all; then ``--cold`` runs on
   that second overlay each after its watcher has left (nothing of the overlay on the host: no watcher, device or
   lease; ~4 s apart). Goal: overlay <= bridge + 50 ms. ``--trace FILE`` writes the ``DYTRACE`` marks (``dockyard.trace``) of the measured runs to
   FILE.<network> and prints the median time from each mark to the next.
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


def run(*argv: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=env)
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


def iperf(server_net: str, client_net: str, target: str, seconds: int) -> tuple[float, float]:
    """Gbit/s of one TCP stream from the client namespace to a server in the server namespace (netns paths), and
    the CPU it cost per GB (ms of both ends' processes, iperf3's own accounting: softirq work done in their
    context counts; steadier than the rate when other work on the machine takes CPU from the transfer)."""
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
                end = got["end"]
                cpu = end.get("cpu_utilization_percent") or {}
                busy = (float(cpu.get("host_total", 0)) + float(cpu.get("remote_total", 0))) / 100
                gb = float(end["sum_received"]["bytes"]) / 1e9
                per_gb = busy * float(end["sum_received"]["seconds"]) * 1000 / gb if gb else 0.0
                return float(end["sum_received"]["bits_per_second"]) / 1e9, per_gb
            if time.monotonic() > deadline:
                raise SystemExit(f"iperf3 to {target}: {got.get('error') or p.stderr[-300:]}")
            time.sleep(0.1)
    finally:
        srv.kill()
        srv.wait()


class Testbed:
    """Two hosts (namespaces on a private bridge, 10.215.X.11 and .12), one etcd, an overlay ``bov`` with a
    container on each host (``s`` on host 1, ``c`` on host 2), a bridge network ``bbr`` on host 1, a plain veth pair
    between the two hosts (10.216.0.1 - 10.216.0.2). ``over_veth``: the hosts advertise their address on that veth
    (the overlay runs over the very link it is compared with), else their address on the bridge. A context
    manager: everything is removed on exit."""

    def __init__(self, over_veth: bool = True) -> None:
        self.tag = f"{os.getpid() % 10000:04d}"
        self.base = f"10.215.{random.randrange(100, 250)}"
        self.br = f"obb{self.tag}"
        self.work = Path(tempfile.mkdtemp(prefix="dyb-overlay-"))
        self.nss: list[str] = []
        self.hosts: list[Host] = []
        self.roots: list[Path] = []
        self.over_veth = over_veth
        self.etcd: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Testbed:
        try:
            self._setup()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _setup(self) -> None:
        base, br, tag, work = self.base, self.br, self.tag, self.work
        run("ip", "link", "add", br, "type", "bridge")
        run("ip", "addr", "add", f"{base}.1/24", "dev", br)
        run("ip", "link", "set", br, "up")
        port = random.randrange(20000, 30000)
        store = f"etcd://{base}.1:{port}"
        self.etcd = subprocess.Popen(["etcd", "--data-dir", str(work / "etcd"), "--name", "b",
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
            self.nss.append(ns)
            run("ip", "link", "add", f"ob{tag}{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "link", "set", f"ob{tag}{i}", "master", br, "up")
            for cmd in (["ip", "addr", "add", f"{base}.{10 + i}/24", "dev", "eth0"], ["ip", "link", "set", "eth0",
                        "up"], ["ip", "link", "set", "lo", "up"]):
                run("ip", "netns", "exec", ns, *cmd)
            self.roots.append(work / f"root{i}")
        # a plain veth pair straight between the two host namespaces: the baseline, and the link the overlay's
        # VXLAN packets take (each host advertises its address on it); etcd is reached over the bridge
        run("ip", "link", "add", "pv1", "netns", self.nss[0], "type", "veth", "peer", "name", "pv2", "netns",
            self.nss[1])
        for ns, ip, dev in ((self.nss[0], "10.216.0.1/30", "pv1"), (self.nss[1], "10.216.0.2/30", "pv2")):
            run("ip", "netns", "exec", ns, "ip", "addr", "add", ip, "dev", dev)
            run("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
        for i, root in enumerate(self.roots):
            root.mkdir()
            subprocess.run([DOCKYARD, "--root", str(root), "import", "--change", 'CMD ["sh"]', tar, "busybox"],
                           check=True, env=EPOCH, capture_output=True)
            adv = f"10.216.0.{1 + i}" if self.over_veth else f"{base}.{11 + i}"
            self.hosts.append(Host(self.nss[i], adv, root, store))
        h1, h2 = self.hosts
        deadline = time.monotonic() + 30
        while subprocess.run(h1.dy_argv("network", "ls"), capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("etcd did not answer")
            time.sleep(0.2)
        h1.dy("network", "create", "-d", "overlay", "--attachable", "bov")
        h1.dy("network", "create", "bbr")
        h1.dy("network", "create", "-d", "overlay", "--attachable", "bcold")  # no container of host 1 on it
        h1.dy("run", "-d", "--name", "s", "--network", "bov", "busybox", "sleep", "3600")
        h2.dy("run", "-d", "--name", "c", "--network", "bov", "busybox", "sleep", "3600")
        self.s_ip = json.loads(h1.dy("inspect", "s"))[0]["NetworkSettings"]["Networks"]["bov"]["IPAddress"]
        self.s_net, self.c_net = f"/proc/{h1.pid('s')}/ns/net", f"/proc/{h2.pid('c')}/ns/net"
        deadline = time.monotonic() + 30
        while subprocess.run(h2.dy_argv("exec", "c", "ping", "-c", "1", "-W", "1", self.s_ip),
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the overlay did not come up")

    def __exit__(self, *_: object) -> None:
        for h in self.hosts:
            ids = subprocess.run(h.dy_argv("ps", "-aq"), capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run(h.dy_argv("rm", "-f", *ids), capture_output=True)
        if self.hosts:
            subprocess.run(self.hosts[0].dy_argv("network", "rm", "bov", "bbr", "bcold"), capture_output=True)
            for h in self.hosts:
                subprocess.run(h.dy_argv("network", "ls"), capture_output=True)  # drops the overlay's mirror
                for pidfile in h.root.glob("networks/*/*.pid"):  # watchers and DNS servers (they leave alone)
                    try:
                        os.kill(int(pidfile.read_text().split()[0]), 15)
                    except (OSError, ValueError, IndexError):
                        pass
        for ns in self.nss:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.br], capture_output=True)
        if self.etcd is not None:
            self.etcd.terminate()
            self.etcd.wait(timeout=20)
        sys.path.insert(0, str(REPO))
        from tests.conftest import cleanup_root

        for h in self.hosts:
            cleanup_root(h.root)
        shutil.rmtree(self.work, ignore_errors=True)


def attach_times(h: Host, nets: list[str], runs: int, trace: str = "") -> dict[str, list[float]]:
    """Seconds of ``run --rm --network X busybox true`` for each X in ``nets``, interleaved; 3 warm-up rounds."""
    out: dict[str, list[float]] = {n: [] for n in nets}
    for i in range(3 + runs):
        for net in nets:
            env = {**os.environ, "DYTRACE": f"{trace}.{net}"} if trace and i >= 3 else None
            t = time.perf_counter()
            run(*h.dy_argv("run", "--rm", "--network", net, "busybox", "true"), env=env)
            if i >= 3:
                out[net].append(time.perf_counter() - t)
    return out


def watcher_gone(h: Host, net: str, timeout: float = 30) -> None:
    """Until the overlay's watcher on host ``h`` has left (its lock can be taken), devices removed."""
    import fcntl

    nid = json.loads(h.dy("network", "inspect", net))[0]["Id"]
    lock = h.root / "networks" / nid / "overlay.lock"
    deadline = time.monotonic() + timeout
    while lock.exists():
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
        if time.monotonic() > deadline:
            raise SystemExit(f"the watcher of {net} did not leave")
        time.sleep(0.2)


def cold_times(h: Host, net: str, runs: int, trace: str = "") -> list[float]:
    """Seconds of ``run --rm --network NET busybox true`` when nothing of the overlay is on the host: no watcher,
    no device, no lease (each run waits for the previous one's watcher to leave)."""
    out = []
    for _ in range(runs):
        watcher_gone(h, net)
        env = {**os.environ, "DYTRACE": f"{trace}.{net}-cold"} if trace else None
        t = time.perf_counter()
        run(*h.dy_argv("run", "--rm", "--network", net, "busybox", "true"), env=env)
        out.append(time.perf_counter() - t)
    return out


def trace_steps(path: str) -> dict[str, float]:
    """The median time from each ``DYTRACE`` mark to the next (grouped by run: a ``main`` mark starts one)."""
    steps: dict[str, list[float]] = {}
    prev: tuple[float, str] | None = None
    for line in Path(path).read_text().splitlines():
        t, _pid, label = line.split(" ")[:3]  # (a fourth field, the process's CPU ms, is not used)
        if label == "main":
            prev = None
        if prev is not None:
            steps.setdefault(f"{prev[1]} -> {label}", []).append(float(t) - prev[0])
        prev = (float(t), label)
    return {k: statistics.median(v) for k, v in steps.items()}


def trace_report(trace: str, nets: list[str]) -> None:
    got = {n: trace_steps(f"{trace}.{n}") for n in nets}
    print(f"\n{'DYTRACE marks (median ms from the previous mark)':<52} " + " ".join(f"{n:>8}" for n in nets))
    for k in dict.fromkeys(k for n in nets for k in got[n]):
        print(f"  {k:<50} " + " ".join(f"{got[n][k]:8.1f}" if k in got[n] else f"{'-':>8}" for n in nets))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=5, help="iperf3 runs of each path")
    ap.add_argument("--underlay", choices=("veth", "bridge"), default="veth",
                    help="the link VXLAN runs over: the plain veth (default) or the hosts' bridge")
    ap.add_argument("--cold", type=int, default=5, help="runs with nothing of the overlay on the host")
    ap.add_argument("--only", choices=("throughput", "attach"), default="")
    ap.add_argument("--trace", default="", help="DYTRACE files (FILE.bbr, FILE.bov) of the attach runs")
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("etcd"):
        raise SystemExit("needs root and etcd (scripts/deps.sh)")
    ensure_iperf3()
    # byte-compiled first: under PYTHONDONTWRITEBYTECODE a module edited since its .pyc was written is compiled
    # again by every command (a few ms each; an installed dockyard has its .pyc)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src")], stdout=subprocess.DEVNULL)
    with Testbed(over_veth=a.underlay == "veth") as tb:
        h1, _h2 = tb.hosts
        if a.only != "attach":
            n1, n2 = f"/run/netns/{tb.nss[0]}", f"/run/netns/{tb.nss[1]}"
            veth, under, over = [], [], []
            for _ in range(a.repeat):  # interleaved: a change of the machine's load weighs on all three
                veth.append(iperf(n1, n2, "10.216.0.1", a.seconds))
                under.append(iperf(n1, n2, f"{tb.base}.11", a.seconds))
                over.append(iperf(tb.s_net, tb.c_net, tb.s_ip, a.seconds))
            mv, mu, mo = (statistics.median(r for r, _ in x) for x in (veth, under, over))
            cv, cu, co = (statistics.median(c for _, c in x) for x in (veth, under, over))
            print(f"\n{f'throughput (iperf3, 1 TCP stream, median of {a.repeat})':<52} {'Gbit/s':>8} {'cpu-ms/GB':>10}")
            print(f"{'  plain veth between the host namespaces':<52} {mv:8.2f} {cv:10.0f}")
            print(f"{'  hosts over the bridge (veth - bridge - veth)':<52} {mu:8.2f} {cu:10.0f}")
            print(f"{'  overlay, container to container across hosts':<52} {mo:8.2f} {co:10.0f}")
            print(f"  (VXLAN over the {'plain veth' if tb.over_veth else 'bridge'})")
            print(f"  overlay / plain veth = {mo / mv:.2f}x (goal >= 0.8x); overlay / bridge path = {mo / mu:.2f}x")
            print(f"  CPU per GB: overlay / plain veth = {co / cv:.2f}x")
        if a.only != "throughput":
            nets = ["bbr", "bov", "bcold"]
            for n in nets:
                if a.trace:
                    Path(f"{a.trace}.{n}").write_text("")
            times = attach_times(h1, nets, a.runs, a.trace)
            mb, mov, mc = (statistics.median(times[n]) * 1000 for n in nets)
            print(f"\n{'run --rm --network X busybox true (median of ' + str(a.runs) + ')':<52} {'ms':>8}")
            print(f"{'  bridge network':<52} {mb:8.1f}")
            print(f"{'  overlay network (a container of this host on it)':<52} {mov:8.1f}")
            print(f"{'  overlay network, first container of this host':<52} {mc:8.1f}")
            if a.trace and a.cold:
                Path(f"{a.trace}.bcold-cold").write_text("")
            cold = statistics.median(cold_times(h1, "bcold", a.cold, a.trace)) * 1000 if a.cold else 0.0
            if a.cold:
                print(f"{'  overlay network, nothing of it on this host':<52} {cold:8.1f}")
            print(f"  overlay - bridge = {mov - mb:+.1f} ms (goal <= +50 ms); first container: {mc - mb:+.1f} ms"
                  + (f"; nothing on the host: {cold - mb:+.1f} ms" if a.cold else ""))
            # the runs of a round are back to back: the median of the rounds' differences is steadier than the
            # difference of the medians when the machine's load drifts
            paired = [statistics.median(o - b for o, b in zip(times[n], times["bbr"])) * 1000 for n in nets[1:]]
            print(f"  paired (median of the rounds' differences): overlay {paired[0]:+.1f} ms, first container "
                  f"{paired[1]:+.1f} ms")
            if a.trace:
                trace_report(a.trace, nets + (["bcold-cold"] if a.cold else []))


if __name__ == "__main__":
    main()
