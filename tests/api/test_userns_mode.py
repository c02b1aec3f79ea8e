"""POST /containers/create: HostConfig.UsernsMode as the CLI's --userns (host; keep-id only rootless; others
refused with the CLI's one-line error, a 400)."""

from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.e2e


def _create(svc, host_config: dict) -> tuple[int, dict, str]:
    name = "api-" + uuid.uuid4().hex[:10]
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config}
    status, reply = svc.http("POST", f"/v1.45/containers/create?name={name}", json.dumps(body).encode())
    return status, reply, name


def test_usernsmode_host_is_accepted_and_kept(svc):
    status, reply, name = _create(svc, {"UsernsMode": "host"})
    assert status == 201, reply
    status, info = svc.http("GET", f"/v1.45/containers/{name}/json")
    assert status == 200 and info["HostConfig"]["UsernsMode"] == "host", info["HostConfig"].get("UsernsMode")
    p = svc.docker("start", "-a", name)
    assert p.returncode == 0, p.stderr


def test_unknown_usernsmode_is_refused_with_the_clis_error(svc):
    status, reply, _ = _create(svc, {"UsernsMode": "private"})
    assert status == 400, reply
    assert reply["message"] == ('invalid --userns "private": supported are host and keep-id[:uid=UID,gid=GID]'), reply
    status, reply, _ = _create(svc, {"UsernsMode": "keep-id"})  # the service runs as root here
    assert status == 400 and reply["message"] == "keep-id is only supported in rootless mode", reply
    status, reply, _ = _create(svc, {"UsernsMode": 5})
    assert status == 400 and "UsernsMode" in reply["message"], reply
