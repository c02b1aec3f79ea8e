"""Validation by form is strict: no trailing newline slips past a "$" anchor, no non-ASCII digit passes as a number."""

from __future__ import annotations

import pytest

from dockyard import ids
from dockyard.engine import specgen, validate
from dockyard.errors import InvalidArgument
from dockyard.images import reference
from dockyard.network.store import parse_cidr
from dockyard.volumes import store as volumes


@pytest.mark.parametrize("name", ["web\n", "web\nx", "a\r"])
def test_names_with_a_newline_are_refused(name):
    with pytest.raises(InvalidArgument):
        ids.validate_name(name)
    with pytest.raises(InvalidArgument):
        reference.parse(name)
    assert not volumes._NAME_RE.match(name)
    with pytest.raises(InvalidArgument):
        validate.hostname(name)


def test_digests_and_tags_are_exact():
    good = "sha256:" + "a" * 64
    assert ids.validate_digest(good) == good
    with pytest.raises(InvalidArgument):
        ids.validate_digest(good + "\n")
    with pytest.raises(InvalidArgument):
        reference.parse("busybox:lätest")  # \w is ASCII in Docker's (Go's) grammar


@pytest.mark.parametrize("s", ["²", "١٢", "٣", "１"])
def test_non_ascii_digits_are_not_numbers(s):
    assert not ids.is_decimal(s)
    with pytest.raises(InvalidArgument):
        ids.parse_id(s)
    with pytest.raises(InvalidArgument):
        parse_cidr(f"10.77.0.0/{s}")


def test_user_ids_are_checked(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                             "bad:x:abc:0::/:/bin/sh\nhuge:x:99999999999:0::/:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nweird:x:zz:root\n")
    assert specgen.resolve_user("0", str(tmp_path))["uid"] == 0
    for bad in ("99999999999", "4294967295", "1:99999999999"):
        with pytest.raises(InvalidArgument):
            specgen.resolve_user(bad, str(tmp_path))
    for malformed in ("bad", "huge"):  # entries of the image with bad ids are skipped, as libc does
        with pytest.raises(InvalidArgument, match="no matching entries"):
            specgen.resolve_user(malformed, str(tmp_path))
    with pytest.raises(InvalidArgument, match="no matching entries in group file"):
        specgen.resolve_user("root:weird", str(tmp_path))
    assert specgen.resolve_user("4294967294", str(tmp_path))["uid"] == 4294967294
