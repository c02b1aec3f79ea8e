"""Registries on loopback for the tests: Debian's docker-registry (distribution 2.8) started per test, a Bearer
token front (a token issuer plus a proxy that demands its tokens, in front of a real registry), and a hostile
registry that serves a blob whose bytes do not match its digest."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.helpers import free_port, wait_for


def _ready(url: str, unverified: bool = False) -> bool:
    import ssl

    ctx = ssl._create_unverified_context() if unverified else None
    try:
        urllib.request.urlopen(url, timeout=1, context=ctx).close()
        return True
    except urllib.error.HTTPError:
        return True  # 401: it answers
    except OSError:
        return False


class Registry:
    """``docker-registry serve`` on 127.0.0.1:<free port> with storage in ``workdir``; ``htpasswd`` lines turn on
    Basic authentication. ``stop()`` ends it (the fixture calls it at teardown)."""

    def __init__(self, workdir: Path, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        tls_cfg = f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else ""
        scheme = "https" if tls else "http"
        auth = ""
        if users:
            pw = workdir / "htpasswd"
            pw.write_text("")
            for u, p in users.items():
                subprocess.run(["htpasswd", "-bB", str(pw), u, p], check=True, capture_output=True)
            auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {pw}\n"
        cfg = workdir / "config.yml"
        cfg.write_text(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                       f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n"
                       f"    enabled: true\nhttp:\n  addr: {self.host}\n{tls_cfg}{auth}")
        self.log = open(workdir / "registry.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=self.log, stderr=self.log)
        wait_for(lambda: self.proc.poll() is not None or _ready(f"{scheme}://{self.host}/v2/", tls is not None),
                 timeout=20,
                 what="docker-registry to answer")
        assert self.proc.poll() is None, (workdir / "registry.log").read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class _Threaded:
    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def _forward(h: http.server.BaseHTTPRequestHandler, upstream: str, front: str,
             drop: tuple[str, ...] = ()) -> tuple[int, bytes, dict[str, str]]:
    """Send the request ``h`` is handling on to ``upstream`` (without the headers in ``drop``); the answer's status,
    body and headers, its redirects pointed back at ``front``."""
    n = int(h.headers.get("Content-Length") or 0)
    body = h.rfile.read(n) if n else None
    hdrs = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection", "content-length", *drop)}
    req = urllib.request.Request(f"http://{upstream}{h.path}", data=body, method=h.command, headers=hdrs)
    try:
        r = urllib.request.urlopen(req, timeout=60)
        status, data, rh = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, data, rh = e.code, e.read(), e.headers
    out = {k: v for k, v in rh.items() if k.lower() not in ("content-length", "connection", "transfer-encoding")}
    if "Location" in out and out["Location"].startswith(f"http://{upstream}"):
        out["Location"] = out["Location"].replace(upstream, front, 1)
    return status, data, out


class TokenFront(_Threaded):
    """A registry that demands Bearer tokens: ``/token`` issues them (Basic ``user:password`` checked; short
    expiry), every ``/v2/`` request without a valid token for its repository scope gets 401 with
    ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``; valid ones are proxied to ``upstream``.
    ``issued`` counts tokens, so a test sees tokens being reused."""

    def __init__(self, upstream: str, user: str, password: str) -> None:
        self.tokens: dict[str, tuple[set[str], float]] = {}
        self.issued = 0
        front = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    return self._token()
                self._proxy()

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def _token(self) -> None:
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                got = self.headers.get("Authorization", "")
                want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                if got != want:
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or '
                                           b'password"}]}', {"Content-Type": "application/json"})
                tok = secrets.token_hex(16)
                front.tokens[tok] = (set(q.get("scope", [])), time.monotonic() + 300)
                front.issued += 1
                self._send(200, json.dumps({"token": tok, "expires_in": 300}).encode(),
                           {"Content-Type": "application/json"})

            def _scope(self) -> str:
                parts = urllib.parse.urlsplit(self.path).path.split("/")
                # /v2/<name...>/(manifests|blobs|tags)/...
                for i, p in enumerate(parts):
                    if p in ("manifests", "blobs", "tags") and i > 2:
                        name = "/".join(parts[2:i])
                        action = "pull" if self.command in ("GET", "HEAD") else "pull,push"
                        return f"repository:{name}:{action}"
                return ""

            def _proxy(self) -> None:
                scope = self._scope()
                auth = self.headers.get("Authorization", "")
                tok = front.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
                ok = tok is not None and tok[1] > time.monotonic()
                if ok and scope:
                    name, actions = scope.rsplit(":", 1)
                    granted = set()
                    for s in tok[0]:  # type: ignore[index]
                        n, a = s.rsplit(":", 1)
                        if n == name:
                            granted |= set(a.split(","))
                    ok = set(actions.split(",")) <= granted
                if not ok:
                    ch = f'Bearer realm="http://{front.host}/token",service="test-registry"'
                    if scope:
                        ch += f',scope="{scope}"'
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication '
                                           b'required"}]}', {"WWW-Authenticate": ch,
                                                             "Content-Type": "application/json"})
                status, data, out = _forward(self, upstream, front.host, drop=("authorization",))
                self._send(status, data, out)

        super().__init__(H)


class BadBlobRegistry(_Threaded):
    """Serves ``bad:latest`` whose one layer's bytes do not match the digest the manifest gives; the config
    is genuine, so the failure is the layer's."""

    def __init__(self) -> None:
        layer = b"\0" * 1024
        self.layer_digest = "sha256:" + hashlib.sha256(b"the bytes the manifest promises").hexdigest()
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [self.layer_digest]}}).encode()
        cdig = "sha256:" + hashlib.sha256(config).hexdigest()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": cdig, "size": len(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": self.layer_digest, "size": len(layer)}]}).encode()
        routes = {"/v2/": (b"{}", "application/json"),
                  "/v2/bad/manifests/latest": (manifest, "application/vnd.oci.image.manifest.v1+json"),
                  f"/v2/bad/blobs/{cdig}": (config, "application/octet-stream"),
                  f"/v2/bad/blobs/{self.layer_digest}": (layer, "application/octet-stream"),
                  "/v2/notjson/manifests/latest": (b"<html>not json</html>", "application/json")}

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                body, ctype = routes.get(self.path, (None, ""))
                if body is None:
                    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
                    self.send_response(404)
                    ctype = "application/json"
                else:
                    self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_HEAD = do_GET

        super().__init__(H)


def make_tls(d: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate it signed for ``names`` (IPs and DNS names): (ca.crt,
    server.crt, server.key), made with openssl."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (d / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dockyard test CA",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    san = ",".join(("IP:" if n[0].isdigit() or ":" in n else "DNS:") + n for n in names)
    ext = d / "san.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
        "-extfile", str(ext), "-out", str(crt))
    return ca, crt, key


def env_with_config(tmp: Path) -> dict[str, str]:
    """An environment whose Docker config dir is private to the test."""
    d = tmp / "docker-config"
    d.mkdir(exist_ok=True)
    return {**os.environ, "DOCKER_CONFIG": str(d)}


class FaultyFront(_Threaded):
    """A proxy in front of a real registry that misbehaves on layer blobs (bodies above ``min_size`` bytes):

    - ``reset``: the first ``reset`` GETs of each such blob send half the body, then a TCP reset;
    - ``status``: the first ``status_times`` GETs of each answer ``status`` (a 503, say) instead;
    - ``stall``: a GET of the blob whose digest is ``stall`` sends half the body, sets ``stalled`` and waits for
      ``release`` (or the client going away).

    ``gets`` counts the blob GETs by digest, so a test sees retries and reused blobs."""

    def __init__(self, upstream: str, min_size: int = 64 << 10) -> None:
        import collections
        import struct

        self.gets: collections.Counter[str] = collections.Counter()
        self.reset = 0
        self.status = 0
        self.status_times = 0
        self.stall = ""
        self.stalled = threading.Event()
        self.release = threading.Event()
        front = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                status, data, out = _forward(self, upstream, front.host)
                parts = urllib.parse.urlsplit(self.path).path.split("/")
                blob = self.command == "GET" and len(parts) > 3 and parts[-2] == "blobs" and status == 200
                if blob:
                    digest = parts[-1]
                    front.gets[digest] += 1
                    nth = front.gets[digest]
                    if len(data) >= min_size and nth <= front.status_times:
                        return self._send(front.status, b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}',
                                          {"Content-Type": "application/json"})
                    if len(data) >= min_size and (nth <= front.reset or digest == front.stall):
                        self._head(status, len(data), out)
                        self.wfile.write(data[:len(data) // 2])
                        self.wfile.flush()
                        if digest == front.stall:
                            front.stalled.set()
                            front.release.wait(60)
                            self.wfile.write(data[len(data) // 2:])
                            return
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.close_connection = True
                        self.connection.close()
                        return
                self._send(status, data, out)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def _head(self, status: int, n: int, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(n))
                self.end_headers()

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self._head(status, len(body), headers)
                if self.command != "HEAD":
                    self.wfile.write(body)

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass

        super().__init__(H)
        self.server.handle_error = lambda *a: None  # type: ignore[method-assign]

    def stop(self) -> None:
        self.release.set()
        super().stop()
