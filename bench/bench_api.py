"""The Engine API service side by side with dockerd, through the same docker client.

    python bench/bench_api.py [--runs 10]

Needs dockerd: Debian's ``docker.io`` (dockerd 20.10), installed for the bench only, not by scripts/deps.sh
(its package enables systemd units and a docker.socket; there is no systemd here, so nothing starts, but a host
with systemd would get a second daemon): ``apt-get install --no-install-recommends docker.io``. This script
starts its own dockerd on a private data root, exec root and socket (``--bridge none --iptables=false``: no host
firewall or bridge changes) and stops it at the end. Both engines get busybox by ``docker import`` of
cache/busybox.tar; containers run with ``--network none`` on both (dockerd has no bridge here).

Goals (issue 10): ``docker run --rm`` <= 0.5x dockerd, ``docker ps -a`` with 50 containers <= 1x, an idle
service <= 30 MiB RSS and no CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, REPO  # noqa: E402


def _wait_sock(p: Path, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.exists() and subprocess.run(["docker", "-H", f"unix://{p}", "version"], capture_output=True).returncode == 0:
            return
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited {proc.returncode}")
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer on {p}")


def _docker(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "-H", f"unix://{sock}", *args], capture_output=True, text=True)


def _median(sock: Path, args: list[str], runs: int, warm: int = 2) -> float:
    times = []
    for i in range(warm + runs):
        t = time.perf_counter()
        p = _docker(sock, *args)
        dt = time.perf_counter() - t
        if p.returncode != 0:
            raise SystemExit(f"docker {' '.join(args)} on {sock}: {p.stderr.strip()}")
        if i >= warm:
            times.append(dt)
    return statistics.median(times)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--idle", type=float, default=10.0)
    a = ap.parse_args()
    if shutil.which("dockerd") is None:
        raise SystemExit("no dockerd: apt-get install --no-install-recommends docker.io (see this file's docstring)")
    work = Path(tempfile.mkdtemp(prefix="dyapi-", dir="/tmp"))
    busybox = REPO / "cache" / "busybox.tar"
    dsock, ysock = work / "docker.sock", work / "dy.sock"
    root = work / "dyroot"
    root.mkdir()
    dockerd = subprocess.Popen(
        ["dockerd", "--data-root", str(work / "docker"), "--exec-root", str(work / "dexec"), "--pidfile",
         str(work / "docker.pid"), "-H", f"unix://{dsock}", "--bridge", "none", "--iptables=false"],
        stdout=subprocess.DEVNULL, stderr=open(work / "dockerd.log", "wb"), start_new_session=True)
    svc = subprocess.Popen([DOCKYARD, "--root", str(root), "system", "service", f"unix://{ysock}"],
                           stdout=subprocess.DEVNULL, stderr=open(work / "service.log", "wb"), start_new_session=True)
    rows: list[tuple[str, str, str, str]] = []
    try:
        _wait_sock(dsock, dockerd, "dockerd")
        _wait_sock(ysock, svc, "dockyard system service")
        for s in (dsock, ysock):
            p = _docker(s, "import", str(busybox), "busybox:latest")
            if p.returncode != 0:
                raise SystemExit(f"import on {s}: {p.stderr}")

        # idle service first: memory and CPU with no client
        time.sleep(1)
        t0 = _cpu_ticks(svc.pid)
        time.sleep(a.idle)
        idle_cpu = (_cpu_ticks(svc.pid) - t0) / os.sysconf("SC_CLK_TCK")
        rss = _rss_kib(svc.pid) / 1024
        drss = (_rss_kib(dockerd.pid) + sum(_rss_kib(c) for c in _children(dockerd.pid))) / 1024

        run = ["run", "--rm", "--network", "none", "busybox", "true"]
        td, ty = _median(dsock, run, a.runs), _median(ysock, run, a.runs)
        rows.append(("docker run --rm busybox true", f"{td * 1000:.0f} ms", f"{ty * 1000:.0f} ms", f"{ty / td:.2f}x"))
        for s in (dsock, ysock):
            for i in range(a.containers):
                p = _docker(s, "create", "--network", "none", "busybox", "true")
                if p.returncode != 0:
                    raise SystemExit(f"create on {s}: {p.stderr}")
        ps = ["ps", "-a"]
        td, ty = _median(dsock, ps, a.runs), _median(ysock, ps, a.runs)
        rows.append((f"docker ps -a ({a.containers} containers)", f"{td * 1000:.0f} ms", f"{ty * 1000:.0f} ms",
                     f"{ty / td:.2f}x"))
        rows.append(("idle RSS (service / dockerd+containerd)", f"{drss:.1f} MiB", f"{rss:.1f} MiB", ""))
        rows.append((f"idle CPU over {a.idle:.0f} s (service)", "", f"{idle_cpu:.2f} s", ""))
    finally:
        for s in (dsock, ysock):
            ids = _docker(s, "ps", "-aq").stdout.split() if s.exists() else []
            if ids:
                _docker(s, "rm", "-f", *ids)
        for proc in (svc, dockerd):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        with open("/proc/mounts") as f:
            left = [ln.split()[1] for ln in f if ln.split()[1].startswith(str(work) + "/")]
        for m in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    w = max(len(r[0]) for r in rows)
    print(f"{'':{w}}  {'dockerd 20.10':>14}  {'dockyard':>10}  ratio")
    for r in rows:
        print(f"{r[0]:{w}}  {r[1]:>14}  {r[2]:>10}  {r[3]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
