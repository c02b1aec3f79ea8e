"""A registry client: the OCI distribution spec v1.1 / Docker registry API v2, over urllib3.

Vocabulary: a *registry* is a host (``127.0.0.1:5000``, ``docker.io``); a *repository* a path in it
(``library/busybox``); a *manifest* is fetched by tag or digest (its digest is the sha256 of its bytes, given back
in ``Docker-Content-Digest``); a *blob* (config or layer) by digest only. An *index* (OCI) or *manifest list*
(Docker) points at one manifest per platform.

Lifecycle::

    client = RegistryClient.for_host("127.0.0.1:5000", config, scopes=["repository:x:pull"])
    raw, media_type, digest = client.get_manifest("x", "latest")
    with client.get_blob("x", layer_digest) as body:   # urllib3 response, read() streams
        content_store.ingest(body, expected_digest=layer_digest, expected_size=size)

Configuration (``RegistryConfig``) is Docker's daemon.json keys, read from ``<root>/daemon.json``:
``registry-mirrors`` (tried in order for docker.io pulls), ``insecure-registries`` (``host[:port]`` or a CIDR:
as Docker, HTTPS is tried accepting any certificate, then plain HTTP). Loopback (127.0.0.0/8, ::1, localhost) may
speak plain HTTP without being listed, as with Docker, but unlike Docker a loopback registry that speaks TLS is
verified (system CAs and certs.d): only an explicit listing turns verification off. A CA for a registry is
``<root>/certs.d/HOST[:PORT]/ca.crt`` (else ``/etc/docker/certs.d/...``), with ``client.cert``/``client.key``
for mutual TLS. The scheme found for a registry is remembered for the process (``_SCHEMES``), as dockerd does.

Authentication (``images.auth``): anonymous first; a 401 answer's ``WWW-Authenticate`` says Basic or Bearer;
tokens are cached per scope until they expire. Errors are one line in Docker's words (``manifest unknown``,
``unauthorized: authentication required``...).
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from dockyard import jsonc as json
from dockyard.errors import CorruptContent, DockyardError, InvalidArgument, SystemFailure
from dockyard.images import auth as authmod
from dockyard.oci import image as oci

if TYPE_CHECKING:
    import urllib3

HUB_HOST = "docker.io"
HUB_ENDPOINT = "registry-1.docker.io"
MANIFEST_ACCEPT = ", ".join([oci.OCI_INDEX, oci.DOCKER_MANIFEST_LIST, oci.OCI_MANIFEST, oci.DOCKER_MANIFEST])
MAX_MANIFEST = 4 << 20     # the distribution spec's limit for manifests
USER_AGENT = "dockyard/0.1"


def import_urllib3() -> Any:
    """urllib3, imported on first use; the ``dockyard`` launcher starts Python with -S (no site-packages, for a
    fast ``run``), so the site directories are added here first when needed."""
    import importlib
    import sys

    try:
        return importlib.import_module("urllib3")
    except ImportError:
        if not sys.flags.no_site:
            raise SystemFailure("the urllib3 package is needed to talk to registries: pip install urllib3") from None
    import site

    site.main()
    try:
        return importlib.import_module("urllib3")
    except ImportError:
        raise SystemFailure("the urllib3 package is needed to talk to registries: pip install urllib3") from None


class RegistryError(DockyardError):
    """The registry refused a request; ``code`` is the spec's error code (MANIFEST_UNKNOWN, DENIED...)."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Unauthorized(RegistryError):
    http_status = 401


class RegistryConfig:
    """daemon.json's registry keys and the certs.d directories (see the module docstring)."""

    def __init__(self, mirrors: list[str] | None = None, insecure: list[str] | None = None,
                 certs_dirs: list[str] | None = None) -> None:
        self.mirrors = [m.rstrip("/") for m in (mirrors or [])]
        self.insecure = list(insecure or [])
        self.certs_dirs = list(certs_dirs or ["/etc/docker/certs.d"])

    @classmethod
    def load(cls, root: str) -> RegistryConfig:
        from dockyard.state.config import daemon_json

        path = os.path.join(root, "daemon.json")
        data = daemon_json(root, "the registries")
        mirrors = data.get("registry-mirrors") or []
        insecure = data.get("insecure-registries") or []
        if not isinstance(mirrors, list) or not all(isinstance(m, str) for m in mirrors):
            raise InvalidArgument(f"{path}: registry-mirrors must be a list of URLs")
        if not isinstance(insecure, list) or not all(isinstance(m, str) for m in insecure):
            raise InvalidArgument(f"{path}: insecure-registries must be a list of strings")
        for m in mirrors:
            u = urllib.parse.urlsplit(m)
            if u.scheme not in ("http", "https") or not u.netloc:
                raise InvalidArgument(f"invalid mirror: unsupported scheme or host in {m!r}")
        return cls(mirrors, insecure, [os.path.join(root, "certs.d"), "/etc/docker/certs.d"])

    def is_insecure(self, host: str) -> bool:
        """Plain HTTP allowed for ``host[:port]``: listed, in a listed CIDR, or loopback."""
        return self.is_listed_insecure(host) or _is_loopback(_host_only(host))

    def is_listed_insecure(self, host: str) -> bool:
        """Listed in insecure-registries (by name or CIDR): TLS certificates are not verified, as Docker."""
        name = _host_only(host)
        for entry in self.insecure:
            if entry == host or entry == name:
                return True
            if "/" in entry:
                try:
                    if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def tls_files(self, host: str) -> tuple[str | None, str | None, str | None]:
        """(ca.crt, client.cert, client.key) for ``host`` from the first certs.d directory that has it."""
        for base in self.certs_dirs:
            d = os.path.join(base, host.replace("/", "_"))
            if not os.path.isdir(d):
                continue
            cas = sorted(n for n in os.listdir(d) if n.endswith(".crt") and not n.endswith(".cert"))
            ca = os.path.join(d, cas[0]) if cas else None
            cert = os.path.join(d, "client.cert")
            key = os.path.join(d, "client.key")
            if os.path.isfile(cert) and os.path.isfile(key):
                return ca, cert, key
            return ca, None, None
        return None, None, None


def merge_scopes(scopes: Iterable[str]) -> list[str]:
    """``repository:x:pull`` + ``repository:x:pull,push`` -> ``["repository:x:pull,push"]`` (one token then
    serves every request of an operation)."""
    by: dict[tuple[str, str], set[str]] = {}
    for s in scopes:
        kind, _, rest = s.partition(":")
        name, _, actions = rest.rpartition(":")
        if not name:
            name, actions = rest, ""
        by.setdefault((kind, name), set()).update(a for a in actions.split(",") if a)
    return [f"{k}:{n}:{','.join(sorted(a))}" for (k, n), a in sorted(by.items())]


def _is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _bare_tls_context() -> Any:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_SCHEMES: dict[str, str] = {}   # host -> "https://host" or "http://host" found by a probe, for this process


def _cert_error(e: BaseException) -> str | None:
    """The certificate-verification failure inside a urllib3/ssl exception, in Go's words, else None."""
    import ssl

    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            msg = str(cur.verify_message or cur.reason or cur)
            if "unable to get local issuer" in msg or "self-signed" in msg or "self signed" in msg:
                return "x509: certificate signed by unknown authority"
            if "expired" in msg:
                return "x509: certificate has expired or is not yet valid"
            if "mismatch" in msg or "doesn't match" in msg:
                return f"x509: certificate is not valid for this host ({msg})"
            return f"x509: {msg}"
        nxt = getattr(cur, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = next((a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)), None)
        cur = nxt or cur.__cause__ or cur.__context__
    return None


def _host_only(host: str) -> str:
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _error_message(status: int, body: bytes) -> tuple[str, str]:
    """(code, 'message: detail') of a distribution error body, e.g. ('MANIFEST_UNKNOWN', 'manifest unknown')."""
    try:
        errs = json.loads(body).get("errors") or []
        e = errs[0]
        code = str(e.get("code") or "")
        msg = str(e.get("message") or code.lower().replace("_", " "))
        return code, msg
    except (ValueError, AttributeError, IndexError, TypeError):
        text = body.decode("utf-8", "replace").strip().splitlines()
        return "", (text[0][:200] if text else f"status {status}")


class RegistryClient:
    """One registry: its endpoint (scheme chosen once), TLS, credentials and tokens. Thread-safe for the
    parallel layer downloads (urllib3's pool is; the token cache is only written under the GIL)."""

    def __init__(self, host: str, config: RegistryConfig, creds: authmod.Credentials | None = None,
                 scopes: Iterable[str] = (), endpoint: str | None = None) -> None:
        import threading

        import_urllib3()
        self.host = host
        self.config = config
        self.creds = creds
        self.scopes = sorted(set(scopes))
        self.insecure = config.is_insecure(host)             # plain HTTP allowed
        self.skip_verify = config.is_listed_insecure(host)     # any certificate accepted (listed only)
        self.tokens = authmod.TokenCache()
        self._auth: str | None = None          # Authorization header once a challenge was met
        self._challenge: authmod.Challenge | None = None
        self._pools: dict[str, urllib3.PoolManager] = {}   # http / verified / any-cert, made on first use
        self._pools_lock = threading.Lock()
        self._auth_lock = threading.Lock()
        if endpoint:
            self.base: str | None = endpoint.rstrip("/")
        else:
            self.base = None

    @classmethod
    def for_host(cls, host: str, config: RegistryConfig, scopes: Iterable[str] = (),
                 use_mirrors: bool = False) -> RegistryClient:
        """A client for ``host`` with the stored credentials; docker.io goes to registry-1.docker.io (or to
        the first mirror that answers, with ``use_mirrors``)."""
        creds = authmod.get_credentials(host)
        if host == HUB_HOST:
            if use_mirrors:
                for m in config.mirrors:
                    mhost = urllib.parse.urlsplit(m).netloc
                    c = cls(mhost, config, authmod.get_credentials(mhost), scopes, endpoint=m)
                    try:
                        c.ping()
                        return c
                    except DockyardError:
                        continue
            return cls(host, config, creds, scopes, endpoint="https://" + HUB_ENDPOINT)
        return cls(host, config, creds, scopes)

    # ---- transport -------------------------------------------------------------------------------------

    def _pool_for(self, url: str) -> urllib3.PoolManager:
        """The pool for ``url``: plain HTTP needs no TLS context (loading the system CAs costs ~0.1 s), the
        registry's own origin when listed insecure accepts any certificate, everything else is verified against
        the system CAs plus the registry's certs.d files."""
        if url.startswith("http://"):
            kind = "http"
        elif self.skip_verify and _same_origin(url, f"https://{self.host}"):
            kind = "any-cert"
        else:
            kind = "verified"
        pool = self._pools.get(kind)
        if pool is None:
            with self._pools_lock:
                pool = self._pools.get(kind) or self._make_pool(kind)
                self._pools[kind] = pool
        return pool

    def _make_pool(self, kind: str) -> urllib3.PoolManager:
        import ssl

        urllib3 = import_urllib3()
        ctx: ssl.SSLContext | None = None
        if kind == "verified":
            ctx = ssl.create_default_context()
            ca, cert, key = self.config.tls_files(self.host)
            if ca:
                ctx.load_verify_locations(cafile=ca)
            if cert and key:
                ctx.load_cert_chain(cert, key)
        elif kind == "any-cert":
            ctx = _bare_tls_context()
            _ca, cert, key = self.config.tls_files(self.host)
            if cert and key:
                ctx.load_cert_chain(cert, key)
        return urllib3.PoolManager(num_pools=8, maxsize=8, ssl_context=ctx, retries=False,
                                   timeout=urllib3.Timeout(connect=15, read=120), headers={"User-Agent": USER_AGENT})

    def _endpoint(self) -> str:
        """``https://host``; for an insecure registry (listed, or loopback) HTTPS is probed once per process and
        ``http://host`` used when the registry does not speak TLS. A loopback registry that speaks TLS with a
        certificate that does not verify is an error (not a reason to fall back) unless it is listed."""
        if self.base is not None:
            return self.base
        if not self.insecure:
            self.base = f"https://{self.host}"
            return self.base
        known = _SCHEMES.get(self.host)
        if known:
            self.base = known
            return known
        self.base = f"https://{self.host}" if self._speaks_tls() else f"http://{self.host}"
        _SCHEMES[self.host] = self.base
        return self.base

    def _speaks_tls(self) -> bool:
        """Whether the registry answers a TLS handshake (a bare one: no CA bundle loaded for a plain-HTTP
        registry; the certificate is checked by the requests that follow)."""
        import socket
        import ssl

        u = urllib.parse.urlsplit(f"https://{self.host}")
        try:
            with socket.create_connection((u.hostname or "", u.port or 443), timeout=5) as sock:
                with _bare_tls_context().wrap_socket(sock, server_hostname=u.hostname):
                    return True
        except ssl.SSLError:
            return False
        except OSError:
            return False  # nothing listens: the HTTP request reports it

    def _raw(self, method: str, url: str, headers: dict[str, str], body: Any = None,
             stream: bool = False, redirect: bool = True) -> urllib3.BaseHTTPResponse:
        urllib3 = import_urllib3()

        try:
            return self._pool_for(url).request(method, url, headers=headers, body=body, preload_content=not stream,
                                               redirect=redirect)
        except urllib3.exceptions.HTTPError as e:
            cert = _cert_error(e)
            if cert is not None:
                hint = ""
                if _same_origin(url, f"https://{self.host}"):
                    hint = f" (trust its CA in certs.d/{self.host}/ca.crt, or list it in insecure-registries)"
                raise SystemFailure(f'{method.title()} "{url}": tls: failed to verify certificate: {cert}'
                                    f'{hint}') from None
            raise SystemFailure(_net_error(method, url, e)) from None

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None,
                stream: bool = False, ok: Iterable[int] = (200,), scopes: Iterable[str] = (),
                url: str | None = None, redirect: bool = True, what: str = "") -> urllib3.BaseHTTPResponse:
        """One request with authentication: a 401 is answered once (Basic or a Bearer token) and retried.
        A status outside ``ok`` raises RegistryError (``what`` names the object in the message)."""
        full = url or (self._endpoint() + path)
        want = merge_scopes(list(self.scopes) + list(scopes))
        sent: str | None = None
        for attempt in range(2):
            h = dict(headers or {})
            if attempt == 0:
                auth = self._authorization(want)
            else:
                with self._auth_lock:  # parallel requests met the same challenge: one token for all of them
                    cached = self._authorization(want)
                    auth = cached if cached and cached != sent else self._answer(want)
            if auth and _same_origin(full, self._endpoint()):
                h["Authorization"] = auth
            sent = h.get("Authorization")
            r = self._raw(method, full, h, body, stream=stream, redirect=redirect)
            if r.status == 401 and attempt == 0:
                self._challenge = authmod.parse_challenge(r.headers.get("WWW-Authenticate", "") or "")
                r.drain_conn()
                if self._challenge is None:
                    raise self._status_error(r, b"", what)
                continue
            if r.status not in ok:
                data = r.data if not stream else r.read(64 << 10)
                r.release_conn()
                raise self._status_error(r, data, what)
            return r
        raise AssertionError("unreachable")

    def _status_error(self, r: urllib3.BaseHTTPResponse, data: bytes, what: str) -> RegistryError:
        code, msg = _error_message(r.status, data)
        if r.status == 401:
            return Unauthorized(f"unauthorized: {msg if code else 'authentication required'}", 401, code or
                                "UNAUTHORIZED")
        if r.status == 404 and what and code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", ""):
            return RegistryError(f"{what} not found: {code.lower().replace('_', ' ') or 'not found'}: {msg}",
                                 404, code)
        if code:
            return RegistryError(f"{code.lower().replace('_', ' ')}: {msg}" if code != "DENIED" else
                                 f"denied: {msg}", r.status, code)
        return RegistryError(f"{what + ': ' if what else ''}unexpected status from registry {self.host}: "
                             f"{r.status} {r.reason or ''}".rstrip(), r.status, code)

    # ---- authentication ----------------------------------------------------------------------------------

    def _authorization(self, scopes: list[str]) -> str | None:
        ch = self._challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            return self.creds.basic() if self.creds else None
        if ch.scheme == "bearer":
            key = (ch.params.get("realm", ""), ch.params.get("service", ""), " ".join(scopes))
            tok = self.tokens.get(key)
            return f"Bearer {tok}" if tok else None
        return None

    def _answer(self, scopes: list[str]) -> str | None:
        ch = self._challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            if self.creds is None:
                return None
            return self.creds.basic()
        if ch.scheme != "bearer":
            raise RegistryError(f"unsupported authentication scheme {ch.scheme!r} from {self.host}")
        realm = ch.params.get("realm", "")
        u = urllib.parse.urlsplit(realm)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise RegistryError(f"invalid token realm {realm!r} from {self.host}")
        all_scopes = merge_scopes(list(scopes) + ([ch.params["scope"]] if ch.params.get("scope") else []))
        key = (realm, ch.params.get("service", ""), " ".join(scopes))
        q: list[tuple[str, str]] = []
        if ch.params.get("service"):
            q.append(("service", ch.params["service"]))
        q += [("scope", s) for s in all_scopes]
        if self.creds:
            q.append(("account", self.creds.username))
        h = {"Authorization": self.creds.basic()} if self.creds else {}
        url = realm + ("&" if u.query else "?") + urllib.parse.urlencode(q)
        r = self._raw("GET", url, h)
        if r.status != 200:
            code, msg = _error_message(r.status, r.data)
            if r.status == 401:
                raise Unauthorized(f"unauthorized: {msg if code else 'incorrect username or password'}", 401,
                                   code)
            raise RegistryError(f"getting a token from {realm}: {r.status} {msg}", r.status, code)
        try:
            j = json.loads(r.data)
            tok = str(j.get("token") or j.get("access_token") or "")
            expires = float(j.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise RegistryError(f"invalid token response from {realm}") from None
        if not tok:
            raise RegistryError(f"no token in the response from {realm}")
        self.tokens.put(key, tok, expires)
        return f"Bearer {tok}"

    def ping(self) -> None:
        """GET /v2/ with authentication: what ``login`` checks (Unauthorized for bad credentials)."""
        r = self.request("GET", "/v2/")
        r.drain_conn()

    def check_login(self) -> None:
        """Verify the credentials: the registry must ask for them and accept them."""
        full = self._endpoint() + "/v2/"
        r = self._raw("GET", full, {})
        r.drain_conn()
        if r.status == 401:
            self._challenge = authmod.parse_challenge(r.headers.get("WWW-Authenticate", "") or "")
            h = {}
            auth = self._answer([])
            if auth:
                h["Authorization"] = auth
            r = self._raw("GET", full, h)
            r.drain_conn()
            if r.status == 401:
                raise Unauthorized(f"login attempt to {full} failed with status: 401 Unauthorized", 401)
        if r.status != 200:
            raise RegistryError(f"login attempt to {full} failed with status: {r.status} {r.reason or ''}".rstrip(),
                                r.status)

    # ---- manifests -----------------------------------------------------------------------------------------

    def shown(self, repo: str) -> str:
        """A repository as Docker names it in messages: ``busybox``, ``127.0.0.1:5000/x``."""
        if self.host == HUB_HOST or self.base == "https://" + HUB_ENDPOINT:
            return repo[len("library/"):] if repo.startswith("library/") and repo.count("/") == 1 else repo
        return f"{self.host}/{repo}"

    def get_manifest(self, repo: str, ref: str, what: str = "") -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index by tag or digest; the digest is checked against
        the bytes when asked by digest, and ``Docker-Content-Digest`` when the registry sends one."""
        from dockyard.ids import sha256_digest

        shown = self.shown(repo)
        r = self.request("GET", f"/v2/{repo}/manifests/{ref}", {"Accept": MANIFEST_ACCEPT}, stream=True,
                         scopes=[f"repository:{repo}:pull"], what=what or f"manifest for {shown}:{ref}")
        try:
            n = int(r.headers.get("Content-Length") or 0)
            if n > MAX_MANIFEST:
                raise CorruptContent(f"manifest for {shown}:{ref} is too large ({n} bytes)")
            data = r.read(MAX_MANIFEST + 1)
        finally:
            r.release_conn()
        if len(data) > MAX_MANIFEST:
            raise CorruptContent(f"manifest for {shown}:{ref} is too large")
        digest = sha256_digest(data)
        if ref.startswith("sha256:") and digest != ref:
            raise CorruptContent(f"manifest verification failed for digest {ref}")
        header = r.headers.get("Docker-Content-Digest")
        if header and header.startswith("sha256:") and header != digest:
            raise CorruptContent(f"manifest verification failed for {shown}:{ref}: the registry says {header}, "
                                 f"the bytes are {digest}")
        media = (r.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        try:
            j = json.loads(data)
        except (ValueError, RecursionError):
            raise CorruptContent(f"manifest for {shown}:{ref} is not valid JSON") from None
        if not isinstance(j, dict):
            raise CorruptContent(f"manifest for {shown}:{ref} is not a JSON object")
        if isinstance(j.get("mediaType"), str) and j["mediaType"]:
            media = j["mediaType"]
        elif media not in oci.INDEX_TYPES | oci.MANIFEST_TYPES:
            media = oci.OCI_INDEX if "manifests" in j else oci.OCI_MANIFEST
        if j.get("schemaVersion") == 1 or "schemaVersion" not in j:
            raise InvalidArgument(f"{shown}:{ref}: Docker Image Format v1 and Docker Image manifest version 2, "
                                  "schema 1 are not supported")
        return data, media, digest

    def manifest_exists(self, repo: str, ref: str) -> str | None:
        """HEAD of a manifest: its digest, or None."""
        r = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", {"Accept": MANIFEST_ACCEPT},
                         ok=(200, 404), scopes=[f"repository:{repo}:pull"])
        r.drain_conn()
        return r.headers.get("Docker-Content-Digest") if r.status == 200 else None

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """Upload a manifest under a tag or digest; returns its digest."""
        from dockyard.ids import sha256_digest

        r = self.request("PUT", f"/v2/{repo}/manifests/{ref}", {"Content-Type": media_type}, body=data,
                         ok=(200, 201, 202), scopes=[f"repository:{repo}:pull,push"])
        r.drain_conn()
        digest = sha256_digest(data)
        got = r.headers.get("Docker-Content-Digest")
        if got and got != digest:
            raise CorruptContent(f"the registry recorded manifest {got}, expected {digest}")
        return digest

    # ---- blobs -----------------------------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404), scopes=[f"repository:{repo}:pull"])
        r.drain_conn()
        return r.status == 200

    def get_blob(self, repo: str, digest: str, offset: int = 0) -> urllib3.BaseHTTPResponse:
        """A streaming response for a blob (redirects to blob storage followed, without our Authorization).
        The caller reads it to the end and verifies the digest; ``Docker-Content-Digest`` is checked here."""
        h = {"Range": f"bytes={offset}-"} if offset else {}
        r = self.request("GET", f"/v2/{repo}/blobs/{digest}", h, stream=True, ok=(200, 206),
                         scopes=[f"repository:{repo}:pull"], what=f"blob {digest}")
        header = r.headers.get("Docker-Content-Digest")
        if header and header.startswith("sha256:") and header != digest:
            r.release_conn()
            raise CorruptContent(f"blob {digest}: the registry sent {header}")
        if offset and r.status != 206:
            r.release_conn()
            raise RegistryError("range requests are not supported", r.status)
        return r

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount (POST ?mount=&from=); True when the registry mounted it (201)."""
        q = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/?{q}", ok=(201, 202),
                         scopes=[f"repository:{repo}:pull,push", f"repository:{from_repo}:pull"])
        r.drain_conn()
        if r.status == 201:
            return True
        self._cancel(r.headers.get("Location"))
        return False

    def _cancel(self, location: str | None) -> None:
        if location:
            try:
                self.request("DELETE", "", url=self._abs(location), ok=(200, 202, 204, 404)).drain_conn()
            except DockyardError:
                pass

    def _abs(self, location: str) -> str:
        return urllib.parse.urljoin(self._endpoint() + "/", location)

    def upload_blob(self, repo: str, digest: str, size: int, src: BinaryIO, chunk_size: int = 0,
                    progress: Any = None) -> None:
        """Upload a blob: monolithic (POST, then one PUT with the bytes) or, with ``chunk_size``, chunked
        (POST, PATCH per chunk with Content-Range, PUT ?digest=). ``progress(n)`` is called with bytes sent."""
        scopes = [f"repository:{repo}:pull,push"]
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", {"Content-Length": "0"}, ok=(202,), scopes=scopes)
        r.drain_conn()
        loc = r.headers.get("Location")
        if not loc:
            raise RegistryError(f"blob upload to {self.host}: no Location in the answer")
        if not chunk_size or size <= chunk_size:
            data = src.read()
            if len(data) != size:
                raise CorruptContent(f"blob {digest}: size changed while pushing")
            url = _with_query(self._abs(loc), digest=digest)
            r = self.request("PUT", "", {"Content-Type": "application/octet-stream",
                                         "Content-Length": str(size)}, body=data, ok=(201,), url=url,
                             scopes=scopes)
            r.drain_conn()
            if progress:
                progress(size)
            return
        sent = 0
        while sent < size:
            data = src.read(min(chunk_size, size - sent))
            if not data:
                raise CorruptContent(f"blob {digest}: size changed while pushing")
            r = self.request("PATCH", "", {"Content-Type": "application/octet-stream",
                                           "Content-Length": str(len(data)),
                                           "Content-Range": f"{sent}-{sent + len(data) - 1}"},
                             body=data, ok=(202,), url=self._abs(loc), scopes=scopes)
            r.drain_conn()
            loc = r.headers.get("Location") or loc
            sent += len(data)
            if progress:
                progress(sent)
        r = self.request("PUT", "", {"Content-Length": "0"}, ok=(201,), url=_with_query(self._abs(loc),
                                                                                        digest=digest),
                         scopes=scopes)
        r.drain_conn()


def _with_query(url: str, **params: str) -> str:
    u = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, urllib.parse.urlencode(q), u.fragment))


def _same_origin(a: str, b: str) -> bool:
    ua, ub = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (ua.scheme, ua.netloc) == (ub.scheme, ub.netloc)


def _net_error(method: str, url: str, e: Exception) -> str:
    reason = getattr(e, "reason", None) or e
    text = str(reason)
    if "Name or service not known" in text or "nodename nor servname" in text or \
            "Temporary failure in name resolution" in text:
        host = urllib.parse.urlsplit(url).hostname
        return f'{method} "{url}": dial tcp: lookup {host}: no such host'
    if "Connection refused" in text:
        return f'{method} "{url}": dial tcp {urllib.parse.urlsplit(url).netloc}: connect: connection refused'
    return f'{method} "{url}": {text.split(": ", 1)[-1] if "Connection" in text else text}'

