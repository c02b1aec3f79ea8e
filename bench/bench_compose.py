"""`compose up -d` + `down -v` of a two-service app (web with a published port + db with a healthcheck that web
depends on, service_healthy; a named volume, a custom network): dockyard vs podman-compose, side by side.

    .venv/bin/python bench/bench_compose.py [ROUNDS]

podman-compose (Debian package `podman-compose`) is measured when it is installed, on a private podman store."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    try:
        root = work / "root"
        app = work / "app"
        app.mkdir()
        tar = __import__("subprocess").run([str(REPO / "scripts" / "mkimage-busybox.sh"), "--tar-only"],
                                           capture_output=True, text=True, check=True).stdout.strip()
        sh(DOCKYARD, "--root", str(root), "import", "--change", 'CMD ["sh"]', tar, "busybox:latest", env=EPOCH)
        (app / "compose.yaml").write_text(APP.format(image="busybox", port=18431))
        c = [DOCKYARD, "--root", str(root), "compose", "--project-directory", str(app)]
        dy = rounds(c + ["up", "-d"], c + ["down", "-v"], n)
        print(f"dockyard compose up -d + down -v: median {statistics.median(dy):.2f} s  ({n} rounds)")
        if shutil.which("podman-compose"):
            from common import Podman

            pm = Podman(work)
            pm.load_busybox(tar) if hasattr(pm, "load_busybox") else None
            env = {**os.environ, **getattr(pm, "env", {})}
            pc = ["podman-compose", "-f", str(app / "compose.yaml")]
            po = rounds(pc + ["up", "-d"], pc + ["down", "-v"], n, env)
            print(f"podman-compose    up -d + down -v: median {statistics.median(po):.2f} s  "
                  f"ratio {statistics.median(dy) / statistics.median(po):.2f}x")
        else:
            print("podman-compose: not installed (apt-get install podman-compose)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
