"""POST /containers/create answers the container's warnings, as dockerd (issue 12)."""

from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.e2e


def test_create_answers_the_published_ports_warning_of_host_network(svc):
    name = "api-" + uuid.uuid4().hex[:10]
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "host",
                                                                 "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}}
    status, reply = svc.http("POST", f"/v1.45/containers/create?name={name}", json.dumps(body).encode())
    assert status == 201, reply
    assert reply["Warnings"] == ["Published ports are discarded when using host network mode"], reply
    status, reply = svc.http("POST", f"/v1.45/containers/create?name={name}-2",
                             json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode())
    assert status == 201 and reply["Warnings"] == [], reply
