"""Multi-platform builds: one Dockerfile for linux/amd64 and linux/arm64 (RUN through qemu-user), the result an
image index stored locally (images shows it once, run --platform picks the variant). The arm64 base is Debian's
arm64 busybox-static (scripts/mkimage-busybox.sh --arch arm64, cached under cache/)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Runner

pytestmark = pytest.mark.e2e

TWO = "linux/amd64,linux/arm64"


@pytest.fixture(scope="session")
def busybox_arm64_tar() -> Path:
    return Path(subprocess.run([str(REPO / "scripts" / "mkimage-busybox.sh"), "--arch", "arm64", "--tar-only"],
                               check=True, capture_output=True, text=True).stdout.strip())


@pytest.fixture
def bases(dy: Runner, busybox: str, busybox_arm64_tar: Path) -> None:
    dy("tag", "busybox:latest", "busybox:amd64", check=True)
    dy("import", "--platform", "linux/arm64", "--change", 'CMD ["sh"]', str(busybox_arm64_tar), "busybox:arm64",
       env={"SOURCE_DATE_EPOCH": "946684800"}, check=True)


def _ctx(tmp_path: Path, text: str) -> str:
    d = tmp_path / "ctx"
    d.mkdir(parents=True, exist_ok=True)
    (d / "Dockerfile").write_text(text)
    return str(d)


UNAME = ("ARG TARGETARCH\nFROM busybox:$TARGETARCH\nARG TARGETPLATFORM\n"
         "RUN uname -m > /arch && echo $TARGETPLATFORM > /plat\nCMD cat /arch /plat\n")


def test_two_platform_build_is_one_index(dy: Runner, bases: None, tmp_path: Path) -> None:
    p = dy("build", "--platform", TWO, "-t", "multi", _ctx(tmp_path, UNAME), timeout=120)
    assert p.returncode == 0, p.stderr
    assert "[linux/arm64 stage-0 3/4] RUN uname -m" in p.stderr
    rows = [ln.split() for ln in dy("images", check=True).stdout.splitlines()[1:]]
    assert [r[:2] for r in rows].count(["multi", "latest"]) == 1
    assert len(rows) == 4  # multi, busybox latest/amd64 (one image), busybox arm64: the variants are not rows
    assert dy("run", "--rm", "multi", check=True).stdout.split() == ["x86_64", "linux/amd64"]
    assert dy("run", "--rm", "--platform", "linux/arm64", "multi", check=True).stdout.split() == [
        "aarch64", "linux/arm64"]
    bad = dy("run", "--rm", "--platform", "linux/s390x", "multi")
    assert bad.returncode == 125
    assert "does not provide the specified platform (linux/s390x)" in bad.stderr


def test_unbuildable_platform_refused_before_any_step(dy: Runner, bases: None, tmp_path: Path) -> None:
    p = dy("build", "--platform", "linux/amd64,linux/sparc64", _ctx(tmp_path, UNAME))
    assert p.returncode != 0
    assert "linux/sparc64" in p.stderr and "#1 " not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_run_failing_on_one_platform_names_it(dy: Runner, bases: None, tmp_path: Path) -> None:
    df = "ARG TARGETARCH\nFROM busybox:$TARGETARCH\nRUN [ \"$(uname -m)\" = x86_64 ]\n"
    p = dy("build", "--platform", TWO, _ctx(tmp_path, df), timeout=120)
    assert p.returncode == 1
    last = p.stderr.strip().splitlines()[-1]
    assert "Dockerfile:3" in last and "platform linux/arm64" in last


def test_buildplatform_stage_is_built_once(dy: Runner, bases: None, tmp_path: Path) -> None:
    df = ("FROM --platform=$BUILDPLATFORM busybox:amd64 AS gen\nARG BUILDPLATFORM\n"
          "RUN echo built-on-$(uname -m) > /note\nARG TARGETARCH\n"  # as BuildKit: before ARG TARGETARCH, shared
          "RUN echo for-$TARGETARCH-from-$BUILDPLATFORM > /target\n"
          "FROM busybox:${TARGETARCH:-amd64}\nARG TARGETARCH\nCOPY --from=gen /note /target /\nCMD cat /note /target\n")
    df = "ARG TARGETARCH\n" + df
    p = dy("build", "--platform", TWO, "-t", "cross", _ctx(tmp_path, df), timeout=120)
    assert p.returncode == 0, p.stderr
    arm = [ln for ln in p.stderr.splitlines() if ln.startswith("#") and "linux/arm64 gen" in ln]
    step = next(ln for ln in arm if "RUN echo built-on" in ln)
    num = step.split()[0]
    assert f"{num} CACHED" in p.stderr  # the platform-independent step ran once, for amd64
    out = dy("run", "--rm", "--platform", "linux/arm64", "cross", check=True).stdout.split()
    assert out == ["built-on-x86_64", "for-arm64-from-linux/amd64"]


def test_rmi_of_the_index_removes_its_platform_images(dy: Runner, bases: None, tmp_path: Path) -> None:
    dy("build", "--platform", TWO, "-t", "multi", _ctx(tmp_path, UNAME), timeout=120, check=True)
    before = set(dy("images", "-a", "-q", "--no-trunc", check=True).stdout.split())
    variant = dy("image", "inspect", "--format", "{{.Id}}", "busybox:arm64", check=True).stdout.strip()
    p = dy("rmi", "multi", check=True)
    deleted = [ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("Deleted:")]
    assert len(deleted) >= 3  # the index and its two platform images (and their build steps)
    left = set(dy("images", "-a", "-q", "--no-trunc", check=True).stdout.split())
    assert left == before - set(deleted) and variant in left
    assert "<none>" not in dy("images", "-a", check=True).stdout


# ---- every verb that takes an image name treats an index as Docker 28 does ---------------------------------------

def test_verbs_on_an_index_see_its_platform_images(dy: Runner, bases: None, tmp_path: Path) -> None:
    """history, image inspect and inspect show the host's variant (not an empty row); COPY --from= and
    RUN --mount from= an index take the variant of the platform being built."""
    import json

    dy("build", "--platform", TWO, "-t", "multi", _ctx(tmp_path, UNAME), timeout=120, check=True)
    hist = dy("history", "--no-trunc", "--format", "{{.CreatedBy}}", "multi", check=True).stdout
    assert "uname -m" in hist
    for verb in (["image", "inspect"], ["inspect"]):
        d = json.loads(dy(*verb, "multi", check=True).stdout)[0]
        assert (d["Os"], d["Architecture"]) == ("linux", "amd64") and len(d["RootFS"]["Layers"]) == 2
        assert d["Id"] == d["Descriptor"]["digest"] and d["RepoTags"] == ["multi:latest"]
        assert [m["Descriptor"]["platform"]["architecture"] for m in d["Manifests"]] == ["amd64", "arm64"]
    arm = json.loads(dy("image", "inspect", "--platform", "linux/arm64", "multi", check=True).stdout)[0]
    assert arm["Architecture"] == "arm64" and arm["Id"] == d["Id"]
    df = ("ARG TARGETARCH\nFROM busybox:$TARGETARCH\nCOPY --from=multi /arch /copied\n"
          "RUN --mount=type=bind,from=multi,target=/m cat /m/arch > /mounted\nCMD cat /copied /mounted\n")
    dy("build", "--platform", TWO, "-t", "user", _ctx(tmp_path / "u", df), timeout=120, check=True)
    assert dy("run", "--rm", "user", check=True).stdout.split() == ["x86_64", "x86_64"]
    assert dy("run", "--rm", "--platform", "linux/arm64", "user", check=True).stdout.split() == [
        "aarch64", "aarch64"]


# ---- save / load of an index ---------------------------------------------------------------------------------------

def test_save_writes_the_index_and_load_reads_it_back(dy: Runner, bases: None, tmp_path: Path) -> None:
    """save writes the index (index.json names it, manifest.json the host's image for older loaders); load in
    another root gives back the same index ID with both platforms runnable."""
    import json
    import tarfile

    dy("build", "--platform", TWO, "-t", "multi", _ctx(tmp_path, UNAME), timeout=120, check=True)
    index_id = dy("image", "inspect", "--format", "{{.Id}}", "multi", check=True).stdout.strip()
    out = tmp_path / "multi.tar"
    dy("save", "-o", str(out), "multi", check=True)
    with tarfile.open(out) as tf:
        top = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
        legacy = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        host_cfg = json.load(tf.extractfile(legacy[0]["Config"]))  # type: ignore[arg-type]
    assert [(m["mediaType"], m["digest"]) for m in top["manifests"]] == [
        ("application/vnd.oci.image.index.v1+json", index_id)]
    assert legacy[0]["RepoTags"] == ["multi:latest"] and host_cfg["architecture"] == "amd64"
    dy("rmi", "multi", check=True)
    p = dy("load", "-i", str(out), check=True)
    assert p.stdout == "Loaded image: multi:latest\n"
    assert dy("image", "inspect", "--format", "{{.Id}}", "multi", check=True).stdout.strip() == index_id
    assert dy("run", "--rm", "--platform", "linux/arm64", "multi", check=True).stdout.split()[0] == "aarch64"
    assert dy("run", "--rm", "multi", check=True).stdout.split()[0] == "x86_64"
    assert [r.split()[0] for r in dy("images", check=True).stdout.splitlines()[1:]].count("multi") == 1


@pytest.fixture
def request_cleanup() -> Iterator[list[Callable[[], None]]]:
    todo: list[Callable[[], None]] = []
    yield todo
    for f in reversed(todo):
        f()


def _tool(name: str) -> str:
    import shutil

    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_skopeo_and_podman_read_the_saved_index(dy: Runner, bases: None, tmp_path: Path,
                                                request_cleanup: list) -> None:
    import json

    skopeo = _tool("skopeo")
    podman = _tool("podman")
    dy("build", "--platform", TWO, "-t", "multi", _ctx(tmp_path, UNAME), timeout=120, check=True)
    out = tmp_path / "multi.tar"
    dy("save", "-o", str(out), "multi", check=True)
    raw = json.loads(subprocess.run([skopeo, "inspect", "--raw", f"oci-archive:{out}"], check=True,
                                    capture_output=True, text=True).stdout)
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64", "arm64"]
    import shutil
    import tempfile

    run_root = tempfile.mkdtemp(prefix="dy-prun-")  # podman wants a runroot under 50 characters
    request_cleanup.append(lambda: shutil.rmtree(run_root, ignore_errors=True))
    pod = [podman, "--root", str(tmp_path / "proot"), "--runroot", run_root, "--storage-driver", "vfs"]
    p = subprocess.run([*pod, "load", "-i", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "multi:latest" in p.stdout, p.stderr  # the host's image, as for Docker's archives
    subprocess.run([*pod, "manifest", "create", "localhost/ml"], check=True, capture_output=True)
    subprocess.run([*pod, "manifest", "add", "--all", "localhost/ml", f"oci-archive:{out}"], check=True,
                   capture_output=True, timeout=120)
    listed = json.loads(subprocess.run([*pod, "manifest", "inspect", "localhost/ml"], check=True,
                                       capture_output=True, text=True).stdout)
    assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == ["amd64", "arm64"]
    assert [m["digest"] for m in listed["manifests"]] == [m["digest"] for m in raw["manifests"]]
    # and back: skopeo's OCI archive of the index loads as one index
    again = tmp_path / "skopeo.tar"
    subprocess.run([skopeo, "copy", "--all", f"oci-archive:{out}", f"oci-archive:{again}:multi2:latest"],
                   check=True, capture_output=True, timeout=120)
    assert dy("load", "-i", str(again), check=True).stdout == "Loaded image: multi2:latest\n"
    d = json.loads(dy("image", "inspect", "multi2", check=True).stdout)[0]
    assert [m["Descriptor"]["platform"]["architecture"] for m in d["Manifests"]] == ["amd64", "arm64"]


# ---- push / pull ------------------------------------------------------------------------------------------------

def test_push_of_an_index_pushes_every_platform_and_pull_takes_one(dy: Runner, bases: None, tmp_path: Path,
                                                                  registry: Any, denv: dict[str, str]) -> None:
    """push sends each platform's image by digest, then the index under the tag (the registry serves the same
    index); pull --platform keeps the platform asked for, as Docker's classic store."""
    import json

    dy("build", "--platform", TWO, "-t", "multi", _ctx(tmp_path, UNAME), timeout=120, check=True)
    index_id = dy("image", "inspect", "--format", "{{.Id}}", "multi", check=True).stdout.strip()
    ref = f"{registry.host}/demo/multi:1"
    dy("tag", "multi", ref, check=True)
    p = dy("push", ref, env=denv, timeout=120, check=True)
    assert f"1: digest: {index_id} size:" in p.stdout
    served = json.loads(dy("manifest", "inspect", ref, env=denv, check=True).stdout)
    assert [m["platform"]["architecture"] for m in served["manifests"]] == ["amd64", "arm64"]
    dy("rmi", ref, "multi", check=True)
    dy("pull", "--platform", "linux/arm64", ref, env=denv, timeout=120, check=True)
    assert dy("run", "--rm", ref, env=denv, check=True).stdout.split() == ["aarch64", "linux/arm64"]
    d = json.loads(dy("image", "inspect", ref, check=True).stdout)[0]
    assert d["Architecture"] == "arm64" and "Manifests" not in d


def test_images_tree_shows_each_platform_and_what_is_in_use(dy: Runner, bases: None, tmp_path: Path) -> None:
    dy("build", "--platform", TWO, "-t", "multi", _ctx(tmp_path, UNAME), timeout=120, check=True)
    d = __import__("json").loads(dy("image", "inspect", "multi", check=True).stdout)[0]
    dy("create", "--platform", "linux/arm64", "multi", check=True)
    out = dy("images", "--tree", "multi", check=True).stdout.splitlines()
    assert out[2].split() == ["IMAGE", "ID", "DISK", "USAGE", "CONTENT", "SIZE", "EXTRA"]
    assert out[3].split()[:2] == ["multi:latest", d["Id"][7:19]] and out[3].endswith("U")
    amd, arm = out[4].split(), out[5].split()
    assert amd[:2] == ["├─", "linux/amd64"] and amd[2] == d["Manifests"][0]["ID"][7:19] and amd[-1] != "U"
    assert arm[:2] == ["└─", "linux/arm64"] and arm[2] == d["Manifests"][1]["ID"][7:19] and arm[-1] == "U"


# ---- buildx ---------------------------------------------------------------------------------------------------------

def test_buildx_build_outputs_and_pushes_the_index(dy: Runner, bases: None, tmp_path: Path, registry: Any,
                                                   denv: dict[str, str]) -> None:
    import json

    ls = dy("buildx", "ls", check=True).stdout
    assert "default*" in ls and "linux/amd64" in ls and "linux/arm64" in ls  # qemu registered by the fixture
    assert dy("buildx", "use", "default").returncode == 0 and dy("buildx", "use", "other").returncode != 0
    ref = f"{registry.host}/demo/bx:1"
    out = tmp_path / "bx.tar"
    dy("buildx", "build", "--platform", TWO, "-t", ref, "--push", "-o", f"type=oci,dest={out}",
       _ctx(tmp_path, UNAME), env=denv, timeout=120, check=True)
    index_id = dy("image", "inspect", "--format", "{{.Id}}", ref, check=True).stdout.strip()
    served = json.loads(dy("manifest", "inspect", ref, env=denv, check=True).stdout)
    assert [m["platform"]["architecture"] for m in served["manifests"]] == ["amd64", "arm64"]
    with __import__("tarfile").open(out) as tf:
        top = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    assert top["manifests"][0]["digest"] == index_id


# ---- buildx -o type=local / type=tar ------------------------------------------------------------------------------

EXPORT = ("ARG TARGETARCH\nFROM busybox:$TARGETARCH AS build\nARG TARGETOS\nARG TARGETARCH\n"
          "RUN mkdir /out && echo \"$(uname -m)\" > /out/hello-$TARGETOS-$TARGETARCH\n"
          "FROM scratch\nCOPY --from=build /out /\n")


def _tree(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): p.read_text() if p.is_file() else "/" for p in sorted(d.rglob("*"))}


def test_buildx_local_output_writes_each_platform_in_its_directory(dy: Runner, bases: None, tmp_path: Path) -> None:
    """As BuildKit's local exporter: with several platforms one linux_<arch> subdirectory each; with one, the
    files at DEST itself (``--output DIR`` is type=local); type=tar the same tree as a tar."""
    import tarfile

    ctx = _ctx(tmp_path, EXPORT)
    out = tmp_path / "out"
    p = dy("buildx", "build", "--platform", TWO, "-o", f"type=local,dest={out}", ctx, timeout=120)
    assert p.returncode == 0, p.stderr
    assert _tree(out) == {"linux_amd64": "/", "linux_amd64/hello-linux-amd64": "x86_64\n",
                          "linux_arm64": "/", "linux_arm64/hello-linux-arm64": "aarch64\n"}
    one = tmp_path / "one"
    dy("buildx", "build", "--platform", "linux/arm64", "--output", str(one), ctx, timeout=120, check=True)
    assert _tree(one) == {"hello-linux-arm64": "aarch64\n"}
    tar = tmp_path / "fs.tar"
    dy("buildx", "build", "--platform", TWO, "-o", f"type=tar,dest={tar}", ctx, timeout=120, check=True)
    with tarfile.open(tar) as tf:
        names = sorted(m.name for m in tf.getmembers())
        assert tf.extractfile("linux_arm64/hello-linux-arm64").read() == b"aarch64\n"  # type: ignore[union-attr]
    assert names == ["linux_amd64", "linux_amd64/hello-linux-amd64", "linux_arm64", "linux_arm64/hello-linux-arm64"]
    assert not list(tmp_path.glob("fs.tar.tmp-*"))
    p = dy("buildx", "build", "-o", "-", ctx, input=b"", timeout=120)  # a tar on stdout
    assert p.returncode == 0, p.stderr
    import io

    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        assert tf.getnames() == ["hello-linux-amd64"]
    bad = dy("buildx", "build", "-o", "type=local", ctx)
    assert (bad.returncode, bad.stderr.splitlines()[0]) == (125, "output type local requires dest=DIR")
