"""Registries, the hard parts: htpasswd behind TLS with a private CA (certs.d), retries of resets and 5xx,
interrupted pulls that leave nothing half-written and resume from finished blobs, pull -a, registry mirrors for
docker.io names, and credential helpers. Servers on loopback, started per test (tests/registry_servers.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD, ROOTS, cleanup_root
from tests.helpers import wait_for
from tests.registry_servers import FaultyFront, Registry, make_tls

pytestmark = pytest.mark.e2e


@pytest.fixture
def root2(tmp_path: Path):
    """A second, empty state root (the store a pull starts from)."""
    r = tmp_path / "root2"
    r.mkdir()
    ROOTS.add(str(r))
    yield r
    cleanup_root(r)


def _dy2(root: Path, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([DOCKYARD, "--root", str(root), *args], capture_output=True, text=True, timeout=120,
                       env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"dockyard {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


def _two_layers(dy, registry, denv, tmp_path: Path, name: str = "two/layers:1") -> tuple[str, list[str]]:
    """busybox plus a 3 MiB layer of random bytes, pushed; returns (reference, layer digests)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "big").write_bytes(os.urandom(3 << 20))
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY big /big\n")
    ref = f"{registry.host}/{name}"
    dy("build", "-q", "-t", ref, str(ctx), check=True)
    dy("push", ref, env=denv, check=True)
    m = json.loads(dy("manifest", "inspect", ref, env=denv, check=True).stdout)
    return ref, [ly["digest"] for ly in m["layers"]]


def _store_is_clean(root: Path) -> None:
    """No image recorded, every blob in content/ whole (its bytes hash to its name), no temporary left."""
    p = subprocess.run([DOCKYARD, "--root", str(root), "images", "-qa"], capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (0, "")
    blobs = root / "content" / "blobs" / "sha256"
    for b in (os.listdir(blobs) if blobs.is_dir() else []):
        assert hashlib.sha256((blobs / b).read_bytes()).hexdigest() == b, f"partial blob {b}"
    tmp = root / "tmp"
    assert not (os.listdir(tmp) if tmp.is_dir() else []), os.listdir(tmp)


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


def test_resets_and_5xx_mid_blob_are_retried_with_a_limit(dy, busybox, registry, denv, tmp_path, root2):
    ref, layers = _two_layers(dy, registry, denv, tmp_path)
    want = _image_id(dy, ref)
    front = FaultyFront(registry.host)
    try:
        fref = ref.replace(registry.host, front.host)
        front.reset = 1  # each layer: the first GET is cut half-way by a TCP reset
        p = _dy2(root2, "pull", fref, env=denv)
        assert "Retrying in 1 second" in p.stdout, p.stdout
        assert [front.gets[d] for d in layers] == [2, 2]
        assert _dy2(root2, "image", "inspect", "-f", "{{.Id}}", fref, env=denv).stdout.strip() == want
        _dy2(root2, "rmi", fref, env=denv)
        shutil.rmtree(root2 / "content")  # forget the blobs too
        front.gets.clear()
        front.reset, front.status, front.status_times = 0, 503, 2  # two 503s, then the body
        _dy2(root2, "pull", fref, env=denv)
        assert [front.gets[d] for d in layers] == [3, 3]
        _dy2(root2, "rmi", fref, env=denv)
        shutil.rmtree(root2 / "content")
        front.gets.clear()
        front.status_times, front.reset = 0, 100  # never whole: given up after 3 attempts, one line
        p = _dy2(root2, "pull", fref, env=denv, check=False)
        assert p.returncode == 1 and "Traceback" not in p.stderr
        last = p.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: downloading sha256:") and last.endswith("(after 3 attempts)"), p.stderr
        assert max(front.gets[d] for d in layers) == 3
        _store_is_clean(root2)
    finally:
        front.stop()


def test_interrupted_pull_leaves_nothing_half_written_and_a_repeat_reuses_finished_blobs(dy, busybox, registry,
                                                                                          denv, tmp_path, root2):
    ref, (base, big) = _two_layers(dy, registry, denv, tmp_path)
    front = FaultyFront(registry.host)
    try:
        fref = ref.replace(registry.host, front.host)
        front.stall = big
        proc = subprocess.Popen([DOCKYARD, "--root", str(root2), "pull", fref], env=denv, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_for(front.stalled.is_set, timeout=30, what="the big layer to be half sent")
            wait_for(lambda: (root2 / "content" / "blobs" / "sha256" / base[7:]).exists(), timeout=30,
                     what="the base layer to be stored")
            proc.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the big layer
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130 and "Traceback" not in err, err
        _store_is_clean(root2)
        front.stall = ""
        front.release.set()
        p = _dy2(root2, "pull", fref, env=denv)
        assert front.gets[base] == 1 and front.gets[big] == 2  # the finished blob was reused
        assert "Downloaded newer image" in p.stdout
        assert _dy2(root2, "image", "inspect", "-f", "{{.Id}}", fref, env=denv).stdout.strip() == \
            _image_id(dy, ref)
    finally:
        front.stop()


def test_pull_all_tags(dy, busybox, hello_world, registry, denv):
    repo = f"{registry.host}/many"
    for tag, img in (("1", "busybox"), ("2", "hello-world"), ("latest", "busybox")):
        dy("tag", img, f"{repo}:{tag}", check=True)
        dy("push", f"{repo}:{tag}", env=denv, check=True)
        dy("rmi", f"{repo}:{tag}", check=True)
    p = dy("pull", "-a", f"{repo}:1", env=denv)
    assert p.returncode != 0 and "tag can't be used with --all-tags/-a" in p.stderr
    p = dy("pull", "-a", repo, env=denv, check=True)
    assert p.stdout.splitlines()[-1] == repo, p.stdout
    got = dy("images", "--format", "{{.Tag}} {{.ID}}", repo, check=True).stdout.split("\n")
    assert sorted(x for x in got if x) == sorted([f"1 {busybox[7:19]}", f"2 {hello_world[7:19]}",
                                                 f"latest {busybox[7:19]}"])


def test_registry_mirror_serves_docker_io_names(dy, busybox, registry, denv, root):
    dy("tag", "busybox", f"{registry.host}/library/busybox:latest", check=True)
    dy("push", f"{registry.host}/library/busybox:latest", env=denv, check=True)
    dy("rmi", f"{registry.host}/library/busybox:latest", "busybox", check=True)
    (root / "daemon.json").write_text(json.dumps({"registry-mirrors": [f"http://{registry.host}"]}))
    p = dy("pull", "busybox", env=denv, check=True)
    assert p.stdout.splitlines()[:2] == ["Using default tag: latest", "latest: Pulling from library/busybox"]
    assert p.stdout.splitlines()[-1] == "docker.io/library/busybox:latest"
    assert _image_id(dy, "busybox") == busybox
    p = dy("run", "--rm", "busybox", "echo", "from-mirror")
    assert (p.returncode, p.stdout) == (0, "from-mirror\n"), p.stderr


HELPER = """#!/usr/bin/env python3
import json, os, sys
db = os.environ["CRED_DB"]
data = json.load(open(db)) if os.path.exists(db) else {}
action, payload = sys.argv[1], sys.stdin.read()
open(db + ".log", "a").write(os.path.basename(sys.argv[0]) + " " + action + "\\n")
if action == "store":
    c = json.loads(payload)
    data[c["ServerURL"]] = [c["Username"], c["Secret"]]
elif action == "get":
    if payload.strip() not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    u, s = data[payload.strip()]
    print(json.dumps({"ServerURL": payload.strip(), "Username": u, "Secret": s}))
elif action == "erase":
    data.pop(payload.strip(), None)
json.dump(data, open(db, "w"))
"""


@pytest.mark.parametrize("how", ["credsStore", "credHelpers"])
def test_credential_helpers_store_get_and_erase(dy, busybox, denv, tmp_path, how):
    reg = Registry(tmp_path / "auth-registry", users={"alice": "s3cret"})
    try:
        host = reg.host
        bindir = tmp_path / "bin"
        bindir.mkdir()
        helper = bindir / "docker-credential-test"
        helper.write_text(HELPER)
        helper.chmod(0o755)
        db = tmp_path / "creds.json"
        env = {**denv, "PATH": f"{bindir}:{os.environ['PATH']}", "CRED_DB": str(db)}
        cfg = Path(denv["DOCKER_CONFIG"]) / "config.json"
        cfg.write_text(json.dumps({"credsStore": "test"} if how == "credsStore" else
                                  {"credsStore": "absent-helper", "credHelpers": {host: "test"}}))
        dy("login", "-u", "alice", "--password-stdin", host, input="s3cret\n", env=env, check=True)
        assert json.loads(db.read_text()) == {host: ["alice", "s3cret"]}
        assert "s3cret" not in cfg.read_text()
        ref = f"{host}/helped/bb:1"
        dy("tag", "busybox", ref, check=True)
        dy("push", ref, env=env, check=True)  # credentials from the helper's get
        assert "docker-credential-test get" in (tmp_path / "creds.json.log").read_text()
        p = dy("logout", host, env=env)
        assert (p.returncode, p.stdout) == (0, f"Removing login credentials for {host}\n"), p.stderr
        assert json.loads(db.read_text()) == {}
        p = dy("push", ref, env=env)
        assert p.returncode == 1 and "unauthorized" in p.stderr and "Traceback" not in p.stderr
    finally:
        reg.stop()
