"""The service's responses checked against the published Engine API description (moby's v1.45 Swagger,
tests/api/swagger/): each request's status must be one its operation documents, and each JSON body must
conform to that status's schema."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.api import openapi
from tests.api.conftest import Service, _Unix, name
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


class Checker:
    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.problems: list[str] = []
        self.checked: list[str] = []

    def raw(self, method: str, path: str, body: Any = None) -> tuple[int, str, bytes]:
        c = _Unix(str(self.svc.sock))
        data = None if body is None else json.dumps(body).encode()
        c.request(method, "/v1.45" + path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        out = r.read()
        c.close()
        return r.status, r.getheader("Content-Type") or "", out

    def __call__(self, method: str, path: str, op: str, body: Any = None, want: int = 200,
                 lines: bool = False) -> Any:
        """Send ``method path`` (``op``: its path in the description), check the status and the body's schema."""
        status, ctype, raw = self.raw(method, path, body)
        assert status == want, f"{method} {path}: {status} {raw[:300]!r}"
        self.checked.append(f"{method} {op} {status}")
        s = openapi.schema(op, method, status)
        if s is None or s.get("type") == "string":  # no body, or text/binary (ping, logs)
            return raw
        assert ctype.startswith("application/json"), f"{method} {path}: Content-Type {ctype!r}"
        docs = [json.loads(ln) for ln in raw.splitlines() if ln.strip()] if lines else [json.loads(raw)]
        for d in docs:
            self.problems += openapi.errors(op, method, status, d) + openapi.undocumented(op, method, status, d)
        return docs if lines else docs[0]


def test_responses_conform_to_the_engine_api_description(svc: Service) -> None:
    check = Checker(svc)
    t0 = time.time() - 1
    vol, net, ctr, run = name(), name(), name(), name()
    try:
        assert check("GET", "/_ping", "/_ping") == b"OK"
        check("GET", "/version", "/version")
        check("GET", "/info", "/info")
        check("POST", "/volumes/create", "/volumes/create", {"Name": vol, "Labels": {"t": "1"}}, want=201)
        check("GET", "/volumes", "/volumes")
        check("GET", f"/volumes/{vol}", "/volumes/{name}")
        check("POST", "/networks/create", "/networks/create", {"Name": net, "Labels": {"t": "1"}}, want=201)
        check("GET", "/networks", "/networks")
        check("GET", f"/networks/{net}", "/networks/{id}")

        body = {"Image": "busybox", "Cmd": ["sh", "-c", "echo hi; exit 3"], "Labels": {"t": "1"},
                "HostConfig": {"Binds": [f"{vol}:/data"]}}
        cid = check("POST", f"/containers/create?name={ctr}", "/containers/create", body, want=201)["Id"]
        check("POST", f"/containers/{cid}/start", "/containers/{id}/start", want=204)
        assert check("POST", f"/containers/{cid}/wait", "/containers/{id}/wait")["StatusCode"] == 3
        check("GET", "/containers/json?all=1", "/containers/json")
        check("GET", f"/containers/{cid}/json", "/containers/{id}/json")
        assert b"hi" in check("GET", f"/containers/{cid}/logs?stdout=1", "/containers/{id}/logs")

        body = {"Image": "busybox", "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": net}}
        rid = check("POST", f"/containers/create?name={run}", "/containers/create", body, want=201)["Id"]
        check("POST", f"/containers/{rid}/start", "/containers/{id}/start", want=204)
        check("GET", "/containers/json", "/containers/json")
        check("GET", f"/containers/{rid}/json", "/containers/{id}/json")
        eid = check("POST", f"/containers/{rid}/exec", "/containers/{id}/exec",
                    {"Cmd": ["sh", "-c", "exit 5"]}, want=201)["Id"]
        check("GET", f"/exec/{eid}/json", "/exec/{id}/json")
        check("POST", f"/exec/{eid}/start", "/exec/{id}/start", {"Detach": True})
        wait_for(lambda: not json.loads(check.raw("GET", f"/exec/{eid}/json")[2])["Running"], 20,
                 what="the exec to end")
        assert check("GET", f"/exec/{eid}/json", "/exec/{id}/json")["ExitCode"] == 5

        check("GET", "/images/json", "/images/json")
        check("GET", "/images/busybox/json", "/images/{name}/json")
        check("GET", "/images/busybox/history", "/images/{name}/history")
        check("GET", "/system/df", "/system/df")
        evs = check("GET", f"/events?since={t0:.3f}&until={time.time():.3f}", "/events", lines=True)
        assert {"create", "start", "die", "exec_create", "exec_start"} <= {e["Action"].split(":")[0] for e in evs}

        # fields follow the version asked for: VirtualSize below 1.44 only, as dockerd
        old = svc.http("GET", "/v1.43/images/json")[1]
        assert old and all(i["VirtualSize"] == i["Size"] for i in old), old
        assert svc.http("GET", "/v1.43/images/busybox/json")[1]["VirtualSize"] > 0

        # errors are ErrorResponse with their documented status
        check("GET", "/events?since=100&until=50", "/events", want=400)
        check("GET", "/containers/nope-nope/json", "/containers/{id}/json", want=404)
        check("GET", "/images/nope-nope:1/json", "/images/{name}/json", want=404)
        check("GET", "/volumes/nope-nope", "/volumes/{name}", want=404)
        check("POST", "/containers/create", "/containers/create", {"Image": "nope-nope:1"}, want=404)
        check("POST", f"/containers/{rid}/start", "/containers/{id}/start", want=304)  # already running
    finally:
        for p in (f"/containers/{run}?force=1", f"/containers/{ctr}?force=1", f"/networks/{net}",
                  f"/volumes/{vol}"):
            check.raw("DELETE", p)
    assert not check.problems, "\n".join(check.problems)
    assert len(check.checked) >= 30
