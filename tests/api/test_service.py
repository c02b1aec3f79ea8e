"""``dockyard system service`` driven by the docker CLI and raw HTTP on a private unix socket and root."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import Service
from tests.api.conftest import name as _name
from tests.conftest import DOCKYARD
from tests.helpers import pid_alive, wait_for

pytestmark = pytest.mark.e2e


def test_version_info_ping(svc: Service) -> None:
    p = svc.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "1.45 linux"
    p = svc.docker("info", "--format", "{{.ServerVersion}} {{.Driver}} {{.OSType}}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[1:] == ["overlay", "linux"]
    st, body = svc.http("GET", "/_ping")
    assert (st, body) == (200, {"raw": "OK"})
    assert svc.http("GET", "/v1.24/version")[0] == 200
    st, body = svc.http("GET", "/v1.12/version")
    assert st == 400 and "too old" in body["message"]
    st, body = svc.http("GET", "/v1.45/nothing/here")
    assert st == 404


def test_run_rm_echo_and_stdin(svc: Service) -> None:
    p = svc.docker("run", "--rm", "busybox", "echo", "hello from the api")
    assert (p.returncode, p.stdout) == (0, "hello from the api\n"), p.stderr
    p = svc.docker("run", "-i", "--rm", "busybox", "sh", "-c", "cat; exit 3", input="piped in\n")
    assert (p.returncode, p.stdout) == (3, "piped in\n"), p.stderr
    assert svc.docker("ps", "-aq").stdout.strip() == ""


def test_detached_stop_wait_rm(svc: Service) -> None:
    n = _name()
    p = svc.docker("run", "-d", "--name", n, "busybox", "sleep", "300")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    st, body = svc.http("GET", f"/containers/{n}/json")
    assert st == 200 and body["Id"] == cid and body["State"]["Running"] is True
    assert svc.docker("stop", "-t", "1", n).returncode == 0
    p = svc.docker("wait", n)
    assert p.stdout.strip() == "137", p.stderr
    assert svc.docker("rm", n).returncode == 0
    assert svc.http("GET", f"/containers/{n}/json")[0] == 404
    n2 = _name()
    assert svc.docker("run", "-d", "--name", n2, "busybox", "sh", "-c", "exit 5").returncode == 0
    assert svc.docker("wait", n2).stdout.strip() == "5"
    assert svc.docker("rm", n2).returncode == 0


def test_bad_requests_change_nothing(svc: Service) -> None:
    before = svc.docker("ps", "-aq").stdout
    for body in (b"{not json", b"[1, 2]", json.dumps({"Image": 5}).encode(),
                 json.dumps({"Image": "busybox", "Cmd": "x", "Tty": "yes"}).encode(),
                 json.dumps({"Image": "busybox", "HostConfig": {"Memory": "lots"}}).encode(),
                 json.dumps({"Image": "busybox", "HostConfig": {"Devices": [{"PathOnHost": "/dev/sda"}]}}).encode(),
                 json.dumps({"Image": "busybox", "HostConfig": {"PidMode": "host"}}).encode()):
        st, out = svc.http("POST", "/containers/create", body)
        assert st == 400, (body, st, out)
        assert out["message"]
    st, out = svc.http("POST", "/containers/create", json.dumps({"Image": "nosuchimage:1"}).encode())
    assert st == 404, out
    st, out = svc.http("POST", "/containers/nosuch/start")
    assert st == 404
    st, out = svc.http("POST", "/containers/create?name=bad/name", json.dumps({"Image": "busybox"}).encode())
    assert st == 400, out
    n = _name()
    assert svc.http("POST", f"/containers/create?name={n}", json.dumps({"Image": "busybox"}).encode())[0] == 201
    st, out = svc.http("POST", f"/containers/create?name={n}", json.dumps({"Image": "busybox"}).encode())
    assert st == 409, out
    assert svc.http("POST", f"/containers/{n}/kill")[0] == 409
    st, out = svc.http("POST", f"/containers/{n}/wait?condition=bogus")
    assert st == 400
    with socket.socket(socket.AF_UNIX) as s:  # an oversized body is refused from its declared length
        s.connect(str(svc.sock))
        s.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 50000000\r\n\r\n{")
        assert s.recv(100).startswith(b"HTTP/1.1 413 ")
    assert svc.http("DELETE", f"/containers/{n}")[0] == 204
    assert svc.docker("ps", "-aq").stdout == before


def test_kill_9_of_the_service_stops_nothing(svc: Service) -> None:
    n = _name()
    p = svc.docker("run", "-d", "--name", n, "busybox", "sleep", "300")
    assert p.returncode == 0, p.stderr
    pid = svc.http("GET", f"/containers/{n}/json")[1]["State"]["Pid"]
    assert pid and pid_alive(pid)
    ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    assert ppid != svc.proc.pid  # the container's parent is its monitor, not the service
    svc.stop(signal.SIGKILL)
    assert pid_alive(pid)
    svc.sock.unlink()
    svc.start()  # a new service serves the same state
    st, body = svc.http("GET", f"/containers/{n}/json")
    assert st == 200 and body["State"]["Running"] and body["State"]["Pid"] == pid
    assert svc.docker("rm", "-f", n).returncode == 0
    wait_for(lambda: not pid_alive(pid), 15, what="the container to end")


def test_tcp_non_loopback_refused(root: Path) -> None:
    p = subprocess.run([DOCKYARD, "--root", str(root), "system", "service", "tcp://0.0.0.0:23751"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "without TLS" in p.stderr
