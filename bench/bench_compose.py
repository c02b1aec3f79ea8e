"""`compose up -d` + `down -v` of a two-service app (web with a published port + db with a healthcheck that web
depends on, service_healthy; a named volume, a custom network): dockyard vs podman-compose, side by side.

    .venv/bin/python bench/bench_compose.py [ROUNDS]

podman-compose (Debian package `podman-compose`, installed by scripts/deps.sh) on a private podman store, and
docker-compose 1.29 against a private dockerd the bench starts (Debian's docker.io, installed for the bench only; see
bench/bench_api.py), each when installed. Goal: dockyard <= 0.3x the faster."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, EPOCH, REPO, sh, timed  # noqa: E402

APP = """
services:
  web:
    image: {image}
    init: true
    command: ["sh", "-c", "httpd -f -p 8080"]
    ports: ["127.0.0.1:{port}:8080"]
    volumes: [data:/www]
    networks: [back]
    depends_on:
      db:
        condition: service_healthy
  db:
    image: {image}
    init: true
    command: ["sleep", "300"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 100ms
    networks: [back]
volumes:
  data:
networks:
  back:
"""


def rounds(up: list[str], down: list[str], n: int, env: dict[str, str] | None = None) -> list[float]:
    out = []
    for _ in range(n):
        out.append(timed(up, env) + timed(down, env))
    return out


def _dockerd(work: Path) -> tuple[subprocess.Popen[bytes], Path] | None:
    """A private dockerd (its own data root, exec root and socket; no iptables) as bench/bench_api.py starts it."""
    if shutil.which("dockerd") is None or shutil.which("docker-compose") is None:
        return None
    sock = work / "docker.sock"
    d = subprocess.Popen(
        ["dockerd", "--data-root", str(work / "docker"), "--exec-root", str(work / "dexec"), "--pidfile",
         str(work / "docker.pid"), "-H", f"unix://{sock}", "--bridge", "none", "--iptables=false"],
        stdout=subprocess.DEVNULL, stderr=open(work / "dockerd.log", "wb"), start_new_session=True)
    deadline = time.monotonic() + 60
    while not sock.exists() or subprocess.run(["docker", "-H", f"unix://{sock}", "version"],
                                              capture_output=True).returncode != 0:
        if d.poll() is not None or time.monotonic() > deadline:
            d.kill()
            print("dockerd did not start:", (work / "dockerd.log").read_text()[-500:])
            return None
        time.sleep(0.2)
    return d, sock


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp(prefix="bcmp-", dir="/tmp"))
    dockerd: subprocess.Popen[bytes] | None = None
    results: dict[str, float] = {}
    try:
        root = work / "root"
        app = work / "app"
        app.mkdir()
        tar = subprocess.run([str(REPO / "scripts" / "mkimage-busybox.sh"), "--tar-only"],
                             capture_output=True, text=True, check=True).stdout.strip()
        sh(DOCKYARD, "--root", str(root), "import", "--change", 'CMD ["sh"]', tar, "busybox:latest", env=EPOCH)
        (app / "compose.yaml").write_text(APP.format(image="busybox", port=18431))
        c = [DOCKYARD, "--root", str(root), "compose", "--project-directory", str(app)]
        dy = rounds(c + ["up", "-d"], c + ["down", "-v"], n)
        results["dockyard compose"] = statistics.median(dy)
        if shutil.which("podman-compose"):
            from common import Podman

            pm = Podman(work)
            sh(*pm.base(), "import", "--change", 'CMD ["sh"]', tar, "docker.io/library/busybox:latest", env=pm.env)
            pc = ["podman-compose", "--podman-args", " ".join(pm.base()[1:]), "-f", str(app / "compose.yaml")]
            try:
                results["podman-compose"] = statistics.median(
                    rounds(pc + ["up", "-d"], pc + ["down", "-v"], n, pm.env))
            finally:
                subprocess.run(pc + ["down", "-v"], capture_output=True, env=pm.env)
                pm.reset()
        else:
            print("podman-compose: not installed (apt-get install podman-compose)")
        started = _dockerd(work)
        if started is not None:
            dockerd, sock = started
            env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
            sh("docker", "import", "--change", 'CMD ["sh"]', tar, "busybox:latest", env=env)
            dc = ["docker-compose", "--project-directory", str(app), "-f", str(app / "compose.yaml")]
            try:
                results["docker-compose 1.29 (dockerd)"] = statistics.median(
                    rounds(dc + ["up", "-d"], dc + ["down", "-v"], n, env))
            except SystemExit as e:
                print("docker-compose:", str(e)[-300:])
            finally:
                subprocess.run(dc + ["down", "-v"], capture_output=True, env=env)
        mine = results["dockyard compose"]
        others = [v for k, v in results.items() if k != "dockyard compose"]
        for k, v in results.items():
            print(f"{k:<32} up -d + down -v: median {v:6.2f} s  ({n} rounds)  ratio {mine / v:.2f}x")
        if others:
            print(f"dockyard / the faster: {mine / min(others):.2f}x (goal <= 0.3x)")
    finally:
        if dockerd is not None:
            dockerd.terminate()
            try:
                dockerd.wait(30)
            except subprocess.TimeoutExpired:
                dockerd.kill()
            subprocess.run(["umount", "-R", str(work / "docker")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
