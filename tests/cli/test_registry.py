"""pull, push, login, logout, manifest inspect and run's automatic pull, against Debian's docker-registry
(distribution 2.8) started on loopback by each test, a Bearer token front, and a hostile registry."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.registry_servers import BadBlobRegistry, Registry, TokenFront

pytestmark = pytest.mark.e2e

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture
def auth_registry(tmp_path: Path):
    r = Registry(tmp_path / "auth-registry", users={"alice": "s3cret"})
    yield r
    r.stop()


def _image_id(dy, ref: str) -> str:
    return dy("image", "inspect", "-f", "{{.Id}}", ref, check=True).stdout.strip()


def test_push_then_pull_by_tag_and_by_digest_gives_the_same_image_that_runs(dy, busybox, registry, denv):
    ref = f"{registry.host}/tools/busybox:1.0"
    dy("tag", "busybox", ref, check=True)
    p = dy("push", ref, env={**denv, "DOCKYARD_PUSH_CHUNK": "65536"}, check=True)  # chunked: PATCH per 64 KiB
    assert p.stdout.startswith(f"The push refers to repository [{registry.host}/tools/busybox]\n")
    assert re.search(r"^[0-9a-f]{12}: Pushed$", p.stdout, re.M), p.stdout
    m = re.search(r"^1\.0: digest: (sha256:[0-9a-f]{64}) size: \d+$", p.stdout, re.M)
    assert m, p.stdout
    digest = m.group(1)
    dy("rmi", ref, "busybox", check=True)
    assert dy("images", "-q").stdout == ""

    p = dy("pull", ref, env=denv, check=True)
    lines = p.stdout.splitlines()
    assert lines[0] == "1.0: Pulling from tools/busybox"
    assert any(re.fullmatch(r"[0-9a-f]{12}: Pull complete", ln) for ln in lines), p.stdout
    assert f"Digest: {digest}" in lines
    assert f"Status: Downloaded newer image for {ref}" in lines
    assert lines[-1] == ref
    assert _image_id(dy, ref) == busybox
    p = dy("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}", check=True)
    assert f"{registry.host}/tools/busybox 1.0 {digest}" in p.stdout
    # again: nothing to download
    p = dy("pull", ref, env=denv, check=True)
    assert f"Status: Image is up to date for {ref}" in p.stdout and "Already exists" in p.stdout

    dy("rmi", ref, check=True)
    p = dy("pull", "-q", f"{registry.host}/tools/busybox@{digest}", env=denv, check=True)
    assert p.stdout == f"{registry.host}/tools/busybox@{digest}\n"
    assert _image_id(dy, f"{registry.host}/tools/busybox@{digest}") == busybox
    p = dy("run", "--rm", f"{registry.host}/tools/busybox@{digest}", "echo", "pulled", env=denv)
    assert (p.returncode, p.stdout) == (0, "pulled\n"), p.stderr


def test_run_pulls_a_missing_image_and_applies_pull_policies(dy, busybox, registry, denv):
    ref = f"{registry.host}/app"
    dy("tag", "busybox", ref, check=True)
    dy("push", "-q", ref, env=denv, check=True)
    dy("rmi", ref, "busybox", check=True)

    p = dy("run", "--rm", "--pull", "never", ref, "true", env=denv)
    assert p.returncode == 125 and "No such image" in p.stderr
    p = dy("run", "--rm", ref, "echo", "hi", env=denv)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hi\n"
    assert p.stderr.startswith(f"Unable to find image '{ref}:latest' locally\nlatest: Pulling from app\n")
    assert f"Status: Downloaded newer image for {ref}:latest" in p.stderr
    # present now: no pull
    p = dy("run", "--rm", ref, "true", env=denv)
    assert (p.returncode, p.stderr) == (0, "")
    p = dy("create", "--pull", "always", ref, "true", env=denv)
    assert p.returncode == 0, p.stderr
    assert f"Status: Image is up to date for {ref}:latest" in p.stderr
    assert re.fullmatch(r"[0-9a-f]{64}\n", p.stdout)


def test_push_skips_existing_blobs_and_mounts_across_repositories(dy, busybox, registry, denv):
    a, b = f"{registry.host}/team/a:1", f"{registry.host}/team/b:1"
    dy("tag", "busybox", a, check=True)
    dy("push", a, env=denv, check=True)
    p = dy("push", a, env=denv, check=True)
    assert re.search(r"^[0-9a-f]{12}: Layer already exists$", p.stdout, re.M), p.stdout
    dy("tag", "busybox", b, check=True)
    p = dy("push", b, env=denv, check=True)
    assert re.search(r"^[0-9a-f]{12}: Mounted from team/a$", p.stdout, re.M), p.stdout
    p = dy("manifest", "inspect", b, env=denv, check=True)
    m = json.loads(p.stdout)
    assert m["schemaVersion"] == 2 and len(m["layers"]) == 1
    assert p.stdout.startswith('{\n   "schemaVersion"')


def _put_manifest(host: str, repo: str, tag: str, body: bytes, media: str) -> None:
    import urllib.request

    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", data=body, method="PUT",
                                 headers={"Content-Type": media})
    urllib.request.urlopen(req, timeout=10).close()


def test_pull_of_an_index_selects_the_host_platform(dy, busybox, hello_world, registry, denv):
    from dockyard.oci.image import host_platform

    host = registry.host
    digests = {}
    for name in ("busybox", "hello-world"):
        dy("tag", name, f"{host}/multi:{name}", check=True)
        out = dy("push", f"{host}/multi:{name}", env=denv, check=True).stdout
        digests[name] = DIGEST.findall(out)[-1]
    plat = host_platform()
    other = {"os": "linux", "architecture": "s390x" if plat["architecture"] != "s390x" else "ppc64le"}
    size = {n: len(dy("manifest", "inspect", f"{host}/multi@{d}", env=denv, check=True).stdout) for n, d in
            digests.items()}
    del size
    man = {}
    import urllib.request

    for n, d in digests.items():
        with urllib.request.urlopen(urllib.request.Request(
                f"http://{host}/v2/multi/manifests/{d}",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}), timeout=10) as r:
            man[n] = len(r.read())
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": digests["hello-world"], "size": man["hello-world"], "platform": other},
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": digests["busybox"], "size": man["busybox"], "platform": plat}]}).encode()
    _put_manifest(host, "multi", "all", index, "application/vnd.oci.image.index.v1+json")
    dy("rmi", f"{host}/multi:busybox", f"{host}/multi:hello-world", "busybox", "hello-world", check=True)

    p = dy("pull", f"{host}/multi:all", env=denv, check=True)
    assert _image_id(dy, f"{host}/multi:all") == busybox
    idx_digest = DIGEST.search(p.stdout.split("Digest: ", 1)[1]).group(0)  # the index's digest, as Docker's
    assert idx_digest not in digests.values()
    p = dy("pull", "--platform", "linux/mips64le", f"{host}/multi:all", env=denv)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == ("Error: no matching manifest for linux/mips64le in the manifest "
                                                 "list entries")


def test_login_with_basic_auth_stores_checked_credentials(dy, busybox, auth_registry, denv, tmp_path):
    host = auth_registry.host
    ref = f"{host}/private/bb"
    dy("tag", "busybox", ref, check=True)
    p = dy("push", ref, env=denv)
    assert p.returncode == 1 and "unauthorized" in p.stderr and "Traceback" not in p.stderr
    cfg = Path(denv["DOCKER_CONFIG"]) / "config.json"

    p = dy("login", "-u", "alice", "--password-stdin", host, input="wrong\n", env=denv)
    assert p.returncode == 1
    assert p.stderr == f"Error: login attempt to http://{host}/v2/ failed with status: 401 Unauthorized\n"
    assert not cfg.exists()

    p = dy("login", "-u", "alice", "--password-stdin", host, input="s3cret\n", env=denv)
    assert (p.returncode, p.stdout) == (0, "Login Succeeded\n"), p.stderr
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    import base64

    assert json.loads(cfg.read_text())["auths"][host]["auth"] == base64.b64encode(b"alice:s3cret").decode()

    dy("push", ref, env=denv, check=True)
    dy("rmi", ref, check=True)
    dy("pull", ref, env=denv, check=True)

    p = dy("logout", host, env=denv)
    assert (p.returncode, p.stdout) == (0, f"Removing login credentials for {host}\n")
    assert host not in json.loads(cfg.read_text())["auths"]
    dy("rmi", ref, check=True)
    p = dy("pull", ref, env=denv)
    assert p.returncode == 1 and "pull access denied" in p.stderr


def test_bearer_token_flow_with_token_reuse(dy, busybox, registry, denv):
    front = TokenFront(registry.host, "bob", "pw")
    try:
        ref = f"{front.host}/tok/bb:v1"
        dy("tag", "busybox", ref, check=True)
        p = dy("push", ref, env=denv)
        assert p.returncode == 1 and "Traceback" not in p.stderr
        p = dy("login", "-u", "bob", "--password-stdin", front.host, input="nope", env=denv)
        assert p.returncode == 1 and "unauthorized: incorrect username or password" in p.stderr
        dy("login", "-u", "bob", "--password-stdin", front.host, input="pw", env=denv, check=True)
        before = front.issued
        dy("push", ref, env=denv, check=True)
        # one token for the push scope serves all of the push's requests (HEAD, POST, PUT, manifest)
        assert front.issued - before == 1
        dy("rmi", ref, check=True)
        before = front.issued
        p = dy("pull", ref, env=denv, check=True)
        assert front.issued - before == 1
        assert _image_id(dy, ref) == busybox
    finally:
        front.stop()


def test_skopeo_copies_what_dockyard_pushed_and_dockyard_pulls_what_skopeo_pushed(dy, busybox, registry, denv,
                                                                                   tmp_path):
    ref = f"{registry.host}/interop/bb:1"
    dy("tag", "busybox", ref, check=True)
    dy("push", ref, env=denv, check=True)
    arch = tmp_path / "from-registry.tar"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}",
                    f"docker-archive:{arch}:copied:1"], check=True, capture_output=True, timeout=120)
    dy("rmi", ref, "busybox", check=True)
    dy("load", "-i", str(arch), check=True)
    p = dy("run", "--rm", "copied:1", "echo", "via-skopeo")
    assert (p.returncode, p.stdout) == (0, "via-skopeo\n"), p.stderr

    for fmt, tag in (("gzip", "gz"), ("zstd", "zst")):  # skopeo compresses the layers it pushes
        subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"--dest-compress-format={fmt}",
                        "--dest-compress", f"docker-archive:{arch}", f"docker://{registry.host}/fromskopeo:{tag}"],
                       check=True, capture_output=True, timeout=120)
        p = dy("pull", f"{registry.host}/fromskopeo:{tag}", env=denv, check=True)
        p = dy("run", "--rm", f"{registry.host}/fromskopeo:{tag}", "echo", tag)
        assert (p.returncode, p.stdout) == (0, f"{tag}\n"), p.stderr


def test_bad_input_gives_one_line_and_stores_nothing(dy, registry, denv, root):
    p = dy("pull", f"{registry.host}/nope", env=denv)
    assert p.returncode == 1
    assert p.stderr.splitlines()[-1].startswith(
        f"Error: manifest for {registry.host}/nope:latest not found: manifest unknown")
    bad = BadBlobRegistry()
    try:
        p = dy("pull", f"{bad.host}/bad", env=denv)
        assert p.returncode == 1
        assert p.stderr.splitlines()[-1] == f"Error: filesystem layer verification failed for digest {bad.layer_digest}"
        assert dy("images", "-qa").stdout == ""
        blobs = root / "content" / "blobs" / "sha256"
        assert not (blobs / bad.layer_digest[7:]).exists()
        assert not [n for n in os.listdir(root / "tmp") if n.startswith("ingest-")]
        p = dy("pull", f"{bad.host}/notjson", env=denv)
        assert p.returncode == 1 and p.stderr.splitlines()[-1] == (
            f"Error: manifest for {bad.host}/notjson:latest is not valid JSON")
    finally:
        bad.stop()
    p = dy("pull", "no-such-host.invalid/x", env=denv)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1 or \
        p.stderr.strip().splitlines()[-1].endswith("no such host"), p.stderr
    assert "no such host" in p.stderr and "Traceback" not in p.stderr
    p = dy("push", f"{registry.host}/absent:1", env=denv)
    assert p.returncode == 1
    assert p.stderr == f"Error: An image does not exist locally with the tag: {registry.host}/absent\n"


def test_build_from_pulls_a_missing_base_and_build_pull_refreshes_it(dy, busybox, registry, denv, tmp_path):
    base = f"{registry.host}/base:1"
    dy("tag", "busybox", base, check=True)
    dy("push", "-q", base, env=denv, check=True)
    dy("rmi", base, "busybox", check=True)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo built > /f\n")
    p = dy("build", "-t", "derived", str(ctx), env=denv, timeout=180)
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    assert "1: Pulling from base" in out and f"Status: Downloaded newer image for {base}" in out
    p = dy("run", "--rm", "derived", "cat", "/f")
    assert (p.returncode, p.stdout) == (0, "built\n"), p.stderr
    p = dy("build", "--pull", "-t", "derived", str(ctx), env=denv, timeout=180)
    assert p.returncode == 0, p.stderr
    assert f"Status: Image is up to date for {base}" in p.stdout + p.stderr


@pytest.mark.interop
def test_podman_pulls_what_dockyard_pushed(dy, busybox, registry, denv, tmp_path):
    ref = f"{registry.host}/interop/podman:1"
    dy("tag", "busybox", ref, check=True)
    dy("push", ref, env=denv, check=True)
    store = tmp_path / "podman"
    runroot = Path(tempfile.mkdtemp(prefix="dyp-", dir="/tmp"))  # podman wants a short runroot
    base = ["podman", "--root", str(store), "--runroot", str(runroot), "--storage-driver", "vfs"]
    try:
        p = subprocess.run([*base, "pull", "-q", "--tls-verify=false", ref], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == busybox[7:]  # the same image ID (config digest)
    finally:
        subprocess.run([*base, "rmi", "-af"], capture_output=True, timeout=120)
        subprocess.run(["rm", "-rf", str(runroot), str(store)], capture_output=True)
