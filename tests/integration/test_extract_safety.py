"""Crafted layer tars must never touch anything outside the snapshot directory.

Each test builds a hostile archive, applies it, and checks that a sentinel directory next to the store (holding a
file, a subdirectory and hard link targets) is byte-for-byte and inode-for-inode unchanged.
"""

import hashlib
import io
import os
import stat
import tarfile

import pytest

from dockyard.errors import DockyardError, InvalidArgument, Unsafe
from dockyard.snapshots.store import SnapshotStore
from dockyard.state.db import Store

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def tar_of(*entries: dict) -> bytes:
    """Each entry: dict(name=..., type='f'|'d'|'l'|'h'|'c'|'b'|'p', data=b'', link='', dev=(maj, min), mode=...)."""
    buf = io.BytesIO()
    types = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE,
             "c": tarfile.CHRTYPE, "b": tarfile.BLKTYPE, "p": tarfile.FIFOTYPE}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = types[e.get("type", "f")]
            ti.mode = e.get("mode", 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
            ti.mtime = 1_500_000_000
            ti.linkname = e.get("link", "")
            ti.devmajor, ti.devminor = e.get("dev", (0, 0))
            data = e.get("data", b"")
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            tf.addfile(ti, io.BytesIO(data) if ti.size else None)
    return buf.getvalue()


def F(name, data=b"pwned", **kw):
    return dict(name=name, type="f", data=data, **kw)


def L(name, link):
    return dict(name=name, type="l", link=link)


def H(name, link):
    return dict(name=name, type="h", link=link)


def D(name, **kw):
    return dict(name=name, type="d", **kw)


def fingerprint(top: str) -> list[tuple]:
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out.append((os.path.relpath(p, top), st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns,
                        st.st_nlink, st.st_ino, digest))
    st = os.lstat(top)
    out.append((".", st.st_mode, st.st_mtime_ns, st.st_nlink))
    return out


@pytest.fixture
def env(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret").write_bytes(b"sentinel")
    (outside / "sub" / "inner").write_bytes(b"inner")
    os.utime(outside / "sub", (1_000_000_000, 1_000_000_000))
    os.utime(outside, (1_000_000_000, 1_000_000_000))
    ss = SnapshotStore(Store(root=str(tmp_path / "root")), backend="dir")  # the extractor's result, on disk
    ss.store.conn()  # creates the root and its tmp dir
    before = fingerprint(str(outside))
    host_before = sorted(os.listdir(tmp_path))

    class Env:
        pass

    e = Env()
    e.outside, e.ss, e.tmp = str(outside), ss, tmp_path
    # a relative symlink target that climbs far above the snapshot root and then goes to the sentinel
    e.climb = "../" * 40 + str(outside).lstrip("/")
    yield e
    assert fingerprint(str(outside)) == before, "the sentinel outside the snapshot was modified"
    assert sorted(os.listdir(tmp_path)) == host_before
    # nothing half-extracted survives a refused archive
    assert [n for n in os.listdir(ss.store.tmp) if n.startswith("snap-")] == []


def apply(env, data: bytes, **kw):
    return env.ss.apply_layer(None, io.BytesIO(data), **kw)


# -- names ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "a/b/../../../escape", "./../escape"])
def test_dotdot_leaving_root_is_refused(env, name):
    with pytest.raises(Unsafe, match="escape"):
        apply(env, tar_of(D("a"), F(name)))
    assert env.ss.list() == []


def test_dotdot_inside_root_is_fine(env):
    s = apply(env, tar_of(D("a"), F("a/../b")))
    assert open(os.path.join(s.path, "b"), "rb").read() == b"pwned"


def test_absolute_names_are_relative_to_the_root(env):
    target = os.path.join(env.outside, "secret")
    s = apply(env, tar_of(F(target, b"inside"), F("/../../abs2", b"x")))
    assert open(s.path + target, "rb").read() == b"inside"
    assert os.path.isfile(os.path.join(s.path, "abs2"))


# -- symlinks in parent components -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_symlink_parent_is_resolved_inside_the_root(env, kind):
    link = env.outside if kind == "absolute" else env.climb
    s = apply(env, tar_of(L("evil", link), F("evil/pwned"), F("evil/secret", b"overwritten")))
    inside = s.path + env.outside
    assert open(os.path.join(inside, "pwned"), "rb").read() == b"pwned"
    assert open(os.path.join(inside, "secret"), "rb").read() == b"overwritten"
    assert os.readlink(os.path.join(s.path, "evil")) == link


def test_symlink_chain_in_parents(env):
    s = apply(env, tar_of(L("a", "b/c"), L("b", "/d"), D("d"), L("d/c", "../../../"), F("a/sub/x")))
    # a -> b/c -> /d/c -> ../../../ (clamped to the root): a/sub/x is <root>/sub/x
    assert os.path.isfile(os.path.join(s.path, "sub", "x"))


def test_symlink_loop_is_refused(env):
    with pytest.raises(Unsafe, match="too many levels of symbolic links"):
        apply(env, tar_of(L("a", "b"), L("b", "a"), F("a/x")))


def test_symlink_to_file_as_parent_is_an_error(env):
    with pytest.raises(InvalidArgument, match="not a directory"):
        apply(env, tar_of(F("f"), L("l", "f"), F("l/x")))


# -- replacing existing entries ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_file_replaces_symlink_instead_of_writing_through(env, kind):
    link = os.path.join(env.outside, "secret") if kind == "absolute" else env.climb + "/secret"
    s = apply(env, tar_of(L("f", link), F("f", b"new")))
    p = os.path.join(s.path, "f")
    assert not os.path.islink(p) and open(p, "rb").read() == b"new"


def test_directory_replaces_symlink(env):
    s = apply(env, tar_of(L("d", env.outside), D("d"), F("d/secret", b"new")))
    p = os.path.join(s.path, "d")
    assert os.path.isdir(p) and not os.path.islink(p)
    assert open(os.path.join(p, "secret"), "rb").read() == b"new"


def test_symlink_replaces_directory(env):
    s = apply(env, tar_of(D("d"), F("d/x"), L("d", env.outside), F("d/y")))
    assert os.path.islink(os.path.join(s.path, "d"))
    assert os.path.isfile(s.path + env.outside + "/y")


def test_node_replaces_symlink(env):
    s = apply(env, tar_of(L("p", os.path.join(env.outside, "secret")), dict(name="p", type="p")))
    assert stat.S_ISFIFO(os.lstat(os.path.join(s.path, "p")).st_mode)


def test_whiteout_replaces_symlink(env):
    s = apply(env, tar_of(L("w", env.outside), F(".wh.w", b"")))
    st = os.lstat(os.path.join(s.path, "w"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# -- hardlinks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["../outside/secret", "a/../../../secret", "../" * 10 + "etc/passwd"])
def test_hardlink_leaving_root_is_refused(env, target):
    with pytest.raises(Unsafe, match="hardlink"):
        apply(env, tar_of(D("a"), H("a/link", target)))


def test_absolute_hardlink_target_is_inside_the_root(env):
    target = os.path.join(env.outside, "secret")
    with pytest.raises(InvalidArgument, match="not in the layer"):
        apply(env, tar_of(H("link", target)))
    s = apply(env, tar_of(F(target, b"mine"), H("link", target)))
    assert os.stat(os.path.join(s.path, "link")).st_ino == os.stat(s.path + target).st_ino


def test_hardlink_through_symlinked_parent_stays_inside(env):
    with pytest.raises(InvalidArgument, match="not in the layer"):
        apply(env, tar_of(L("s", env.outside), H("h", "s/secret")))


def test_hardlink_to_symlink_links_the_symlink(env):
    secret = os.path.join(env.outside, "secret")
    s = apply(env, tar_of(L("sl", secret), H("hl", "sl")))
    sl, hl = os.path.join(s.path, "sl"), os.path.join(s.path, "hl")
    assert os.path.islink(hl) and os.readlink(hl) == secret
    assert os.lstat(hl).st_ino == os.lstat(sl).st_ino


def test_file_replacing_hardlinked_symlink(env):
    secret = os.path.join(env.outside, "secret")
    s = apply(env, tar_of(L("sl", secret), H("hl", "sl"), F("hl", b"new")))
    assert open(os.path.join(s.path, "hl"), "rb").read() == b"new"
    assert os.readlink(os.path.join(s.path, "sl")) == secret


def test_hardlink_to_directory_is_refused(env):
    with pytest.raises(InvalidArgument):
        apply(env, tar_of(D("d"), H("h", "d")))


# -- device nodes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,dev", [("c", (1, 3)), ("b", (7, 0))])
def test_devices_refused_when_not_allowed(env, kind, dev):
    with pytest.raises(Unsafe, match="device node"):
        apply(env, tar_of(dict(name="dev/node", type=kind, dev=dev)), allow_devices=False)
    assert env.ss.list() == []


def test_devices_created_when_allowed(env):
    s = apply(env, tar_of(D("dev"), dict(name="dev/null", type="c", dev=(1, 3), mode=0o666)))
    st = os.lstat(os.path.join(s.path, "dev", "null"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and st.st_mode & 0o777 == 0o666


def test_whiteouts_allowed_without_devices(env):
    s = apply(env, tar_of(F(".wh.gone", b""), dict(name="zero", type="c", dev=(0, 0))), allow_devices=False)
    for n in ("gone", "zero"):
        st = os.lstat(os.path.join(s.path, n))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def test_invalid_whiteout_names(env):
    with pytest.raises(DockyardError):
        apply(env, tar_of(F("a/.wh.", b"")))
