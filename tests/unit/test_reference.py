"""Image references are normalised exactly as Docker normalises them."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images import reference as r

D = "sha256:" + "a" * 64

NORMALISED = [
    # input, normalised (with :latest added when neither tag nor digest), familiar
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("user/name:tag", "docker.io/user/name:tag", "user/name:tag"),
    ("docker.io/user/name", "docker.io/user/name:latest", "user/name:latest"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x/y:t", "localhost:5000/x/y:t", "localhost:5000/x/y:t"),
    ("quay.io/a/b/c:v1.0-rc_2", "quay.io/a/b/c:v1.0-rc_2", "quay.io/a/b/c:v1.0-rc_2"),
    ("example.com:443/app", "example.com:443/app:latest", "example.com:443/app:latest"),
    ("[::1]:5000/app:x", "[::1]:5000/app:x", "[::1]:5000/app:x"),
    ("a_b.c-d__e---f", "docker.io/library/a_b.c-d__e---f:latest", "a_b.c-d__e---f:latest"),
    (f"busybox@{D}", f"docker.io/library/busybox@{D}", f"busybox@{D}"),
    (f"busybox:1.36@{D}", f"docker.io/library/busybox:1.36@{D}", f"busybox:1.36@{D}"),
    (f"localhost:5000/x@{D}", f"localhost:5000/x@{D}", f"localhost:5000/x@{D}"),
    ("UPPER/name", "UPPER/name:latest", "UPPER/name:latest"),  # an upper-case first part is a registry host
]


@pytest.mark.parametrize("given,normalised,familiar", NORMALISED)
def test_normalisation(given: str, normalised: str, familiar: str) -> None:
    ref = r.parse_tagged(given)
    assert str(ref) == normalised
    assert ref.familiar() == familiar
    assert r.familiar(normalised) == familiar


def test_parse_keeps_name_only_references() -> None:
    ref = r.parse("busybox")
    assert ref.name_only and ref.tag is None and ref.digest is None
    assert ref.name == "docker.io/library/busybox"
    assert ref.familiar_name == "busybox"
    assert r.parse("user/app").familiar_name == "user/app"
    assert r.parse("localhost:5000/app").familiar_name == "localhost:5000/app"


@pytest.mark.parametrize("bad", [
    "", ":tag", "busybox:", "busybox::1", "-busybox", "busybox-", "a//b", "a/b/", "/a", "busybox:bad tag",
    "busybox@sha256:abc", "busybox:" + "x" * 129, "name:tag:tag", "a..b", "a@b",
])
def test_invalid_format(bad: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        r.parse(bad)
    assert str(e.value).startswith("invalid") or "digest" in str(e.value)


@pytest.mark.parametrize("bad", ["Busybox", "busybox/App:1", "docker.io/User/app", "localhost:5000/X"])
def test_uppercase_repository(bad: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        r.parse(bad)
    assert str(e.value) == "invalid reference format: repository name must be lowercase"


def test_plain_invalid_message_is_dockers() -> None:
    with pytest.raises(InvalidArgument) as e:
        r.parse("busybox:bad tag")
    assert str(e.value) == "invalid reference format"


def test_64_hex_is_not_a_repository() -> None:
    with pytest.raises(InvalidArgument) as e:
        r.parse("a" * 64)
    assert "cannot specify 64-byte hexadecimal strings" in str(e.value)


def test_too_long_name() -> None:
    with pytest.raises(InvalidArgument) as e:
        r.parse("x/" + "a" * 260)
    assert "must not be more than 255 characters" in str(e.value)


def test_uppercase_tag_is_fine() -> None:
    assert str(r.parse("busybox:V1")) == "docker.io/library/busybox:V1"


def test_split_familiar() -> None:
    assert r.split_familiar("docker.io/library/busybox:latest") == ("busybox", "latest", None)
    assert r.split_familiar(f"docker.io/user/x@{D}") == ("user/x", None, D)


def _by_grammar(s: str) -> tuple[str, str, str | None, str | None] | str:
    """What the grammar's regular expression alone makes of ``s`` (the path every reference took before the
    hand-written check of the common shapes): the fields, or the error."""
    saved = r._simple
    r._simple = lambda s: None  # type: ignore[assignment]
    try:
        return tuple(r.parse(s))  # type: ignore[return-value]
    except InvalidArgument as e:
        return str(e)
    finally:
        r._simple = saved  # type: ignore[assignment]


def _parsed(s: str) -> tuple[str, str, str | None, str | None] | str:
    try:
        return tuple(r.parse(s))  # type: ignore[return-value]
    except InvalidArgument as e:
        return str(e)


def test_the_common_shapes_are_checked_as_the_grammar_checks_them() -> None:
    """``_simple`` answers for names without registry or digest; over random strings of the characters that
    matter (separators, case, ':', '/', '@', '.'), it must agree with the grammar's expression on every one."""
    import random

    rnd = random.Random(1234)
    alphabet = "ab0Z._-_-/:@.5"
    cases = ["busybox", "a__b", "a___b", "a--b", "a.-b", "a_.b", "-a", "a-", "a/b/c:1.0", "a:.x", "a:_x",
             "a:" + "t" * 128, "a:" + "t" * 129, "a/" + "b" * 300, "localhost", "localhost/x", "x.y/z", "a:b/c",
             "a//b", "/a", "a/", "A", "a:B-1.x_", "a@b", "0" * 64, "a" * 64 + ":1"]
    cases += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 9))) for _ in range(20000)]
    prefixes = ["docker.io/", "index.docker.io/", "localhost/", "localhost:5000/", "Host/", "a-b.c:1/", "x.y:z/",
                "-a.b/", "a.b-/", "a..b/", "[::1]/", "docker.io/library/", "127.0.0.1:5000/"]
    cases += [rnd.choice(prefixes) + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 7)))
              for _ in range(20000)]
    simple = 0
    for s in cases:
        assert _parsed(s) == _by_grammar(s), s
        simple += r._simple(s) is not None
    assert simple > 2000  # the fast check did answer for many of them
