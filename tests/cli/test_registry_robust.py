"""Registries, the hard parts: htpasswd behind TLS with a private CA (certs.d), retries of resets and 5xx,
interrupted pulls that leave nothing half-written and resume from finished blobs, pull -a, registry mirrors for
docker.io names, and credential helpers. Servers on loopback, started per test (tests/registry_servers.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.registry_servers import Registry, env_with_config, make_tls

pytestmark = pytest.mark.e2e


@pytest.fixture
def denv(tmp_path: Path) -> dict[str, str]:
    return env_with_config(tmp_path)


def _image_id(dy, ref: str) -> str:
    return dy("image", "inspect", "-f", "{{.Id}}", ref, check=True).stdout.strip()


def test_htpasswd_behind_tls_is_trusted_through_certs_d_and_refused_without_it(dy, busybox, denv, tmp_path, root):
    ca, crt, key = make_tls(tmp_path / "pki")
    reg = Registry(tmp_path / "tls-registry", users={"alice": "s3cret"}, tls=(crt, key))
    try:
        host = reg.host
        ref = f"{host}/secure/bb:1"
        dy("tag", "busybox", ref, check=True)
        # loopback is "insecure" by default (plain HTTP allowed) but a registry speaking TLS is still verified
        p = dy("login", "-u", "alice", "--password-stdin", host, input="s3cret\n", env=denv)
        assert p.returncode == 1 and "Traceback" not in p.stderr
        assert p.stderr.strip().splitlines() == [
            f'Error: Get "https://{host}/v2/": tls: failed to verify certificate: x509: certificate signed by '
            f'unknown authority (trust its CA in certs.d/{host}/ca.crt, or list it in insecure-registries)']
        assert not (Path(denv["DOCKER_CONFIG"]) / "config.json").exists()
        p = dy("push", ref, env=denv)
        assert p.returncode == 1 and "x509: certificate signed by unknown authority" in p.stderr, p.stderr

        certs = root / "certs.d" / host
        certs.mkdir(parents=True)
        shutil.copy(ca, certs / "ca.crt")
        p = dy("login", "-u", "alice", "--password-stdin", host, input="wrong\n", env=denv)
        assert p.returncode == 1
        assert p.stderr == f"Error: login attempt to https://{host}/v2/ failed with status: 401 Unauthorized\n"
        p = dy("login", "-u", "alice", "--password-stdin", host, input="s3cret\n", env=denv)
        assert (p.returncode, p.stdout) == (0, "Login Succeeded\n"), p.stderr
        p = dy("push", ref, env=denv, check=True)
        assert "1: digest: sha256:" in p.stdout
        dy("rmi", ref, check=True)
        dy("pull", ref, env=denv, check=True)
        assert _image_id(dy, ref) == busybox
        p = dy("run", "--rm", ref, "echo", "over-tls", env=denv)
        assert (p.returncode, p.stdout) == (0, "over-tls\n"), p.stderr

        # listing it in insecure-registries is Docker's "any certificate": works without the CA
        shutil.rmtree(root / "certs.d")
        p = dy("pull", ref, env=denv)
        assert p.returncode == 1 and "x509" in p.stderr
        (root / "daemon.json").write_text(json.dumps({"insecure-registries": [host]}))
        dy("rmi", ref, check=True)
        dy("pull", ref, env=denv, check=True)
        assert _image_id(dy, ref) == busybox
    finally:
        reg.stop()
