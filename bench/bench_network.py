#!/usr/bin/env python3
"""Networking, dockyard vs podman side by side, each with a private store.

    bench/bench_network.py [--runs N] [--seconds S]

1. ``run --rm busybox true`` on the default bridge (dockyard's ``bridge``, podman's netavark ``podman``), with a
   long-running container keeping each side's bridge up (the steady state of a host with containers); and
   dockyard's first-container case (its private root's bridge and firewall table made and removed per run).
   Goal: dockyard <= 0.25x podman.
2. Throughput of busybox httpd through a published port (``-p``, loopback on the host) vs the same server reached
   directly inside the container's network namespace (``nsenter -n``), with wrk. Goal: >= 0.9x.

Prints medians and ratios. Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, Podman, fmt, import_busybox, sh, timed  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, seconds: int, prefix: list[str] | None = None) -> float:
    """Requests per second of wrk against ``url`` (2 threads, 16 connections)."""
    out = subprocess.run([*(prefix or []), "wrk", "-t2", "-c16", f"-d{seconds}s", url], check=True,
                         capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Requests/sec:"))
    return float(line.split()[1])


def wait_http(url_host: str, port: int, prefix: list[str] | None = None) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        p = subprocess.run([*(prefix or []), "wrk", "-t1", "-c1", "-d1s", f"http://{url_host}:{port}/"],
                           capture_output=True, text=True)
        if p.returncode == 0 and "Requests/sec" in p.stdout and "Socket errors: connect" not in p.stdout:
            return
        time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dyb-net-"))
    root = work / "dy"
    podman = Podman(work)
    dy = [DOCKYARD, "--root", str(root)]
    pm = podman.base()
    try:
        import_busybox(root, podman)

        # 1. run --rm on the default bridge
        cold = []
        timed(dy + ["run", "--rm", "busybox", "true"])
        for _ in range(a.runs):
            cold.append(timed(dy + ["run", "--rm", "busybox", "true"]))
        sh(*dy, "run", "-d", "--name", "keeper", "busybox", "sleep", "3600")
        sh(*pm, "run", "-d", "--name", "keeper", "busybox", "sleep", "3600", env=podman.env)
        dys, pms = [], []
        timed(dy + ["run", "--rm", "busybox", "true"])
        timed(pm + ["run", "--rm", "busybox", "true"], podman.env)
        for _ in range(a.runs):
            dys.append(timed(dy + ["run", "--rm", "busybox", "true"]))
            pms.append(timed(pm + ["run", "--rm", "busybox", "true"], podman.env))
        none = [timed(dy + ["run", "--rm", "--network", "none", "busybox", "true"]) for _ in range(a.runs)]
        r = statistics.median(dys) / statistics.median(pms)
        print("\nrun --rm busybox true, default bridge network")
        print(f"  dockyard (bridge up)         {fmt(dys)}")
        print(f"  podman   (bridge up)         {fmt(pms)}")
        print(f"  ratio dockyard/podman        {r:.2f}   (goal <= 0.25)  {'ok' if r <= 0.25 else 'MISSED'}")
        print(f"  dockyard first container     {fmt(cold)}  (bridge + nft table made and removed per run)")
        print(f"  dockyard --network none      {fmt(none)}  (network cost = {statistics.median(dys) - statistics.median(none):+.3f} s)")

        # 2. throughput: published port vs inside the namespace
        if not shutil.which("wrk"):
            print("\nwrk not installed (scripts/deps.sh installs it): throughput skipped")
            return 0
        www = work / "www"
        www.mkdir()
        (www / "index.html").write_text("x" * 1024)
        port = free_port()
        cid = subprocess.run(dy + ["run", "-d", "-p", f"{port}:8000", "-v", f"{www}:/www", "busybox", "httpd", "-f",
                                   "-p", "8000", "-h", "/www"], check=True, capture_output=True,
                             text=True).stdout.strip()
        pid = subprocess.run(dy + ["inspect", "-f", "{{.State.Pid}}", cid], check=True, capture_output=True,
                             text=True).stdout.strip()
        ip = subprocess.run(dy + ["inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid], check=True,
                            capture_output=True, text=True).stdout.strip()
        ns = ["nsenter", "-t", pid, "-n"]
        wait_http("127.0.0.1", port)
        pub, direct, bridge_ip = [], [], []
        for _ in range(3):
            pub.append(wrk(f"http://127.0.0.1:{port}/", a.seconds))
            direct.append(wrk("http://127.0.0.1:8000/", a.seconds, ns))
            bridge_ip.append(wrk(f"http://{ip}:8000/", a.seconds))
        r = statistics.median(pub) / statistics.median(direct)
        print("\nbusybox httpd, wrk -t2 -c16 (requests/s, 1 KiB page)")
        print(f"  published port 127.0.0.1:{port}  {fmt(pub, 'req/s')}")
        print(f"  in the container's netns      {fmt(direct, 'req/s')}")
        print(f"  host -> container IP (bridge) {fmt(bridge_ip, 'req/s')}")
        print(f"  ratio published/direct        {r:.2f}   (goal >= 0.9)  {'ok' if r >= 0.9 else 'MISSED'}")
        return 0
    finally:
        ids = subprocess.run(dy + ["ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(dy + ["rm", "-f", *ids], capture_output=True)
        subprocess.run(pm + ["rm", "-af", "-t", "0"], capture_output=True, env=podman.env)
        podman.reset()
        shutil.rmtree(podman.runroot, ignore_errors=True)
        subprocess.run(["umount", "-R", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
