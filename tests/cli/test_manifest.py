"""manifest create/annotate/inspect/push/rm: hand-made lists over local images (busybox for amd64 and Debian's
arm64 busybox, imported) and over registry images, against Debian's docker-registry on loopback."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.test_multiplatform import bases, busybox_arm64_tar  # noqa: F401 - fixtures
from tests.conftest import Runner
from tests.registry_servers import Registry

pytestmark = pytest.mark.e2e

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def test_a_list_of_local_images_is_annotated_pushed_and_pulled_per_platform(
        dy: Runner, bases: None, registry: Registry, denv: dict[str, str]) -> None:  # noqa: F811
    lst = f"{registry.host}/demo/bb:multi"
    p = dy("manifest", "create", lst, "busybox:amd64", "busybox:arm64", env=denv)
    assert (p.returncode, p.stdout) == (0, f"Created manifest list {lst}\n"), p.stderr
    again = dy("manifest", "create", lst, "busybox:amd64", env=denv)
    assert again.returncode == 1
    assert again.stderr == ("Error: refusing to amend an existing manifest list with no --amend flag: "
                            f"{lst}\n")

    dy("manifest", "annotate", "--variant", "v8", "--os-features", "f1,f2", lst, "busybox:arm64", check=True)
    bad = dy("manifest", "annotate", "--arch", "sparc99", lst, "busybox:arm64")
    assert (bad.returncode, bad.stderr) == (1, "Error: manifest entry for image has unsupported os/arch "
                                               "combination: linux/sparc99\n")
    missing = dy("manifest", "annotate", "--arch", "arm64", lst, "hello-world")
    assert missing.returncode == 1
    assert missing.stderr == f"Error: manifest for image hello-world does not exist in {lst}\n"

    shown = json.loads(dy("manifest", "inspect", lst, check=True).stdout)
    plats = [m["platform"] for m in shown["manifests"]]
    assert plats == [{"architecture": "amd64", "os": "linux"},
                     {"architecture": "arm64", "os": "linux", "os.features": ["f1", "f2"], "variant": "v8"}]
    verbose = json.loads(dy("manifest", "inspect", "-v", lst, check=True).stdout)
    assert [v["Ref"] for v in verbose] == ["busybox:amd64", "busybox:arm64"]
    assert len(verbose[1]["OCIManifest"]["layers"]) == 1
    one = json.loads(dy("manifest", "inspect", lst, "busybox:arm64", check=True).stdout)
    assert one == verbose[1]["OCIManifest"]

    p = dy("manifest", "push", "--purge", lst, env=denv, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"Pushed ref {registry.host}/demo/bb@sha256:")
    digest = lines[-1]
    assert DIGEST.fullmatch(digest)
    # purged: inspect now asks the registry, which serves the same list
    served = dy("manifest", "inspect", lst, env=denv, check=True).stdout
    assert json.loads(served) == shown
    gone = dy("manifest", "rm", lst)
    assert (gone.returncode, gone.stderr) == (1, f"Error: No such manifest: {lst}\n")

    dy("pull", "--platform", "linux/arm64", f"{registry.host}/demo/bb@{digest}", env=denv, timeout=120,
       check=True)
    out = dy("run", "--rm", f"{registry.host}/demo/bb@{digest}", "uname", "-m", env=denv, check=True).stdout
    assert out == "aarch64\n"


def test_a_list_of_registry_images_mounts_their_blobs_into_its_repository(
        dy: Runner, busybox: str, hello_world: str, registry: Registry, denv: dict[str, str]) -> None:
    host = registry.host
    for name, repo in (("busybox", "src/a:1"), ("hello-world", "src/b:1")):
        dy("tag", name, f"{host}/{repo}", check=True)
        dy("push", f"{host}/{repo}", env=denv, check=True)
        dy("rmi", f"{host}/{repo}", check=True)  # not local: create must read them from the registry
    lst = f"{host}/team/list:1"
    dy("manifest", "create", lst, f"{host}/src/a:1", env=denv, check=True)
    dy("manifest", "create", "--amend", lst, f"{host}/src/b:1", env=denv, check=True)
    dy("manifest", "annotate", "--arch", "s390x", lst, f"{host}/src/b:1", check=True)
    verbose = json.loads(dy("manifest", "inspect", "--verbose", lst, check=True).stdout)
    assert [v["Ref"] for v in verbose] == [f"{host}/src/a:1", f"{host}/src/b:1"]
    assert [v["Descriptor"]["platform"]["architecture"] for v in verbose] == ["amd64", "s390x"]

    other = dy("manifest", "create", "other.example:5000/x:1", f"{host}/src/a:1", env=denv, check=True)
    assert other.returncode == 0
    p = dy("manifest", "push", "other.example:5000/x:1", env=denv)
    assert p.returncode == 1
    assert p.stderr == ("Error: cannot use source images from a different registry than the target image: "
                        f"{host} != other.example:5000\n")
    rm = dy("manifest", "rm", "other.example:5000/x:1", "nothere:1")
    assert (rm.returncode, rm.stderr) == (1, "Error: No such manifest: nothere:1\n")

    p = dy("manifest", "push", lst, env=denv, timeout=120)
    assert p.returncode == 0, p.stderr
    served = json.loads(dy("manifest", "inspect", f"{host}/team/list@{p.stdout.split()[-1]}", env=denv,
                           check=True).stdout)
    assert [m["platform"]["architecture"] for m in served["manifests"]] == ["amd64", "s390x"]
    dy("pull", f"{host}/team/list:1", env=denv, timeout=120, check=True)  # the blobs are in team/list
    assert dy("image", "inspect", "-f", "{{.Id}}", f"{host}/team/list:1", check=True).stdout.strip() == busybox
    # the draft stays without --purge: inspect shows it, rm removes it
    assert json.loads(dy("manifest", "inspect", lst, check=True).stdout)["manifests"][1]["platform"] == {
        "architecture": "s390x", "os": "linux"}
    assert dy("manifest", "rm", lst).returncode == 0
