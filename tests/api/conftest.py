"""Fixtures of the API service tests: a ``dockyard system service`` on a private unix socket and root."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD
from tests.helpers import wait_for


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class Service:
    def __init__(self, root: Path, sock: Path) -> None:
        self.root, self.sock = root, sock
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(root.parent / "dcfg")}

    def start(self) -> None:
        self.proc = subprocess.Popen([DOCKYARD, "--root", str(self.root), "system", "service", f"unix://{self.sock}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        wait_for(lambda: self.sock.exists(), 15, what="the service socket")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def docker(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], input=input, capture_output=True, text=True, env=self.env,
                              timeout=timeout)

    def http(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
        c = _Unix(str(self.sock))
        c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            return r.status, json.loads(data) if data else {}
        except ValueError:
            return r.status, {"raw": data.decode()}


@pytest.fixture
def svc(root: Path, busybox: str, tmp_path: Path):
    if shutil.which("docker") is None:
        pytest.skip("no docker client on this machine")
    s = Service(root, tmp_path / "d.sock")
    s.start()
    yield s
    s.stop()
    if s.proc and s.proc.poll() is None:
        s.proc.kill()


def name() -> str:
    return "api-" + uuid.uuid4().hex[:10]
