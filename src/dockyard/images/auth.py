"""Registry credentials and the token flow, as the Docker CLI keeps and uses them.

Credentials live in ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``), Docker's format:

- ``auths``: ``{"127.0.0.1:5000": {"auth": base64("user:pass")}}``; Docker Hub's key is
  ``https://index.docker.io/v1/``.
- ``credsStore``: the name of a helper (``docker-credential-<name>``) holding every registry's credentials;
  ``credHelpers``: ``{"host": "<name>"}`` per registry. A helper speaks the credential-helper protocol: ``get``
  (server URL on stdin -> ``{"ServerURL", "Username", "Secret"}`` on stdout), ``store`` (that JSON on stdin),
  ``erase`` (the server URL on stdin).

Authentication with a registry (``Challenge``): a request answered 401 carries ``WWW-Authenticate``; ``Basic``
means resend with the credentials; ``Bearer realm=...,service=...,scope=...`` means ask the realm for a token
(with the credentials as Basic auth, or anonymously) and send ``Authorization: Bearer <token>``. Tokens are reused
until they expire (``expires_in``, 60 s when absent, as the distribution spec says).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from dataclasses import dataclass

from dockyard import jsonc as json
from dockyard.errors import InvalidArgument, SystemFailure

HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def config_dir() -> str:
    d = os.environ.get("DOCKER_CONFIG")
    return d if d else os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def auth_key(host: str) -> str:
    """The key of ``auths`` for a registry host (Docker Hub's is its legacy v1 URL)."""
    return HUB_AUTH_KEY if host in ("docker.io", "index.docker.io", "registry-1.docker.io") else host


def _read_config() -> dict[str, object]:
    from dockyard.state.config import json_object

    return json_object(config_path(), f"loading config file {config_path()}")


def _write_config(data: dict[str, object]) -> None:
    from dockyard.fsutil import atomic_write

    d = config_dir()
    os.makedirs(d, mode=0o700, exist_ok=True)
    atomic_write(config_path(), json.dumps(data, indent="\t").encode() + b"\n", mode=0o600)


def _helper_for(data: dict[str, object], key: str) -> str | None:
    helpers = data.get("credHelpers")
    name = helpers.get(key) if isinstance(helpers, dict) else None
    if not name:
        store = data.get("credsStore")
        name = store if isinstance(store, str) and store else None
    if name is not None and not _HELPER_NAME.match(str(name)):
        raise InvalidArgument(f"invalid credential helper name: {name!r}")
    return str(name) if name else None


def _helper(name: str, action: str, payload: str) -> str:
    prog = f"docker-credential-{name}"
    try:
        p = subprocess.run([prog, action], input=payload, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise SystemFailure(f'error getting credentials - err: exec: "{prog}": executable file not found in '
                            "$PATH") from None
    except subprocess.TimeoutExpired:
        raise SystemFailure(f"credential helper {prog} {action}: timed out") from None
    if p.returncode != 0:
        msg = (p.stdout.strip() or p.stderr.strip()).splitlines()
        text = msg[0] if msg else f"exit status {p.returncode}"
        if "credentials not found" in text.lower():
            return ""
        raise SystemFailure(f"credential helper {prog} {action}: {text}")
    return p.stdout


def get_credentials(host: str) -> Credentials | None:
    """The stored credentials for a registry host, or None (anonymous)."""
    data = _read_config()
    key = auth_key(host)
    helper = _helper_for(data, key)
    if helper:
        out = _helper(helper, "get", key)
        if not out.strip():
            return None
        try:
            j = json.loads(out)
            return Credentials(str(j["Username"]), str(j["Secret"]))
        except (ValueError, KeyError, TypeError):
            raise SystemFailure(f"credential helper docker-credential-{helper}: invalid answer") from None
    auths = data.get("auths")
    if not isinstance(auths, dict):
        return None
    entry = auths.get(key)
    if entry is None and key != host:
        entry = auths.get(host)
    if entry is None:  # entries written with a scheme: "https://host"
        for k, v in auths.items():
            if isinstance(k, str) and re.sub(r"^https?://", "", k).split("/", 1)[0] == host:
                entry = v
                break
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, _, pw = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgument(f"invalid auth configuration file {config_path()}") from None
        return Credentials(user, pw)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password") or ""))
    return None


def store_credentials(host: str, creds: Credentials) -> str:
    """Save credentials (file 0600, or the configured helper); returns where they went (for the warning)."""
    data = _read_config()
    key = auth_key(host)
    helper = _helper_for(data, key)
    if helper:
        _helper(helper, "store", json.dumps({"ServerURL": key, "Username": creds.username,
                                               "Secret": creds.password}))
        return f"docker-credential-{helper}"
    auths = data.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    auths[key] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    data["auths"] = auths
    _write_config(data)
    return config_path()


def erase_credentials(host: str) -> bool:
    """Forget a registry's credentials; False when none were stored."""
    data = _read_config()
    key = auth_key(host)
    helper = _helper_for(data, key)
    if helper:
        _helper(helper, "erase", key)
        return True
    auths = data.get("auths")
    if not isinstance(auths, dict) or key not in auths:
        return False
    del auths[key]
    _write_config(data)
    return True


# ---- WWW-Authenticate ---------------------------------------------------------------------------------------

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    scheme: str                    # "basic" or "bearer"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"`` -> Challenge."""
    header = header.strip()
    scheme, _, rest = header.partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            break
        params[m.group(1).lower()] = m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3)
        pos = m.end()
    return Challenge(scheme.lower(), params)


class TokenCache:
    """Bearer tokens by (realm, service, scopes), reused until they expire (10 s safety margin)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, key: tuple[str, str, str]) -> str | None:
        v = self._tokens.get(key)
        if v is None or v[1] <= time.monotonic():
            return None
        return v[0]

    def put(self, key: tuple[str, str, str], token: str, expires_in: float) -> None:
        self._tokens[key] = (token, time.monotonic() + max(expires_in - 10, 1))
