"""Fuzzing the image reference parser: any string is a normalised reference or InvalidArgument, and what it
prints (normalised or familiar) parses back to the same reference."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import hard_limit
from dockyard.errors import InvalidArgument
from dockyard.images import reference as refs

pytestmark = pytest.mark.fuzz

_HEX = "0123456789abcdef"
_domain = st.sampled_from(["", "docker.io/", "index.docker.io/", "localhost/", "localhost:5000/", "Example.COM/",
                           "a.b:1/", "[::1]:5000/", "[fe80::1]/", "host:abc/", "x_y.io/", "UPPER/", "-a.io/"])
_component = st.text(alphabet="abz019._-A", min_size=0, max_size=8)
_path = st.lists(_component, min_size=1, max_size=4).map("/".join)
_tag = st.one_of(st.just(""), st.text(alphabet="aZ09._-:", max_size=10).map(lambda t: ":" + t),
                 st.just(":" + "t" * 128), st.just(":" + "t" * 129))
_digest = st.one_of(st.just(""), st.text(alphabet=_HEX, min_size=60, max_size=66).map(lambda h: "@sha256:" + h),
                    st.text(alphabet=_HEX, min_size=32, max_size=40).map(lambda h: "@sha512:" + h),
                    st.just("@sha256:" + "A" * 64), st.just("@:" + "0" * 64))
_structured = st.tuples(_domain, _path, _tag, _digest).map("".join)


def check(s: str) -> None:
    with hard_limit():
        try:
            r = refs.parse(s)
        except InvalidArgument:
            assert refs.try_parse(s) is None
            refs.familiar(s)
            refs.split_familiar(s)
            return
        assert r.domain and r.path
        assert refs.parse(str(r)) == r, f"{s!r} -> {str(r)!r} does not parse back to itself"
        assert refs.parse(r.familiar()) == r, f"{s!r} -> familiar {r.familiar()!r} parses to something else"
        t = refs.parse_tagged(s)
        assert refs.parse(str(t)) == t
        assert refs.familiar(str(r)) == r.familiar()
        refs.split_familiar(str(r))


@given(st.text(max_size=300))
@example("")
@example("a" * 64)
@example("busybox:latest@sha256:" + "a" * 64)
def test_arbitrary_strings(s: str) -> None:
    check(s)


@given(_structured)
@example("[::1]:5000/x")
@example("docker.io/library/library/x")
@example("docker.io/0.0/0")  # familiar form was "0.0/0": a registry named 0.0
def test_structured_references(s: str) -> None:
    check(s)
