"""The --format template subset and Docker's human sizes and durations."""

from __future__ import annotations

import pytest

from dockyard.cli import humanize as h
from dockyard.cli.template import Template, format_rows, go_json, tabwrite
from dockyard.errors import InvalidArgument


@pytest.mark.parametrize("size,text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1234, "1.23kB"), (4261325, "4.26MB"), (124_000_000, "124MB"),
    (1_500_000_000, "1.5GB"), (74_800_000, "74.8MB"),
])
def test_human_size(size: int, text: str) -> None:
    assert h.human_size(size) == text


@pytest.mark.parametrize("secs,text", [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
    (61 * 60, "About an hour"), (2 * 3600, "2 hours"), (47 * 3600, "47 hours"), (3 * 86400, "3 days"),
    (15 * 86400, "2 weeks"), (70 * 86400, "2 months"), (3 * 365 * 86400, "3 years"),
])
def test_human_duration(secs: float, text: str) -> None:
    assert h.human_duration(secs) == text


def test_rfc3339_round_trip() -> None:
    assert h.rfc3339_nano(946684800) == "2000-01-01T00:00:00Z"
    assert h.rfc3339_nano(946684800.5) == "2000-01-01T00:00:00.5Z"
    assert h.parse_rfc3339("2000-01-01T00:00:00Z") == 946684800
    assert h.parse_rfc3339("2000-01-01T01:00:00.123456789+01:00") == pytest.approx(946684800.123456789)
    assert h.parse_rfc3339("garbage") == 0.0


def test_fields_and_functions() -> None:
    d = {"Repository": "busybox", "Tag": "latest", "Config": {"Cmd": ["sh", "-c", "x"], "Env": None},
         "Labels": {"b": "2", "a": "1"}, "N": 3}
    assert Template("{{.Repository}}:{{.Tag}}").render(d) == "busybox:latest"
    assert Template("{{.Config.Cmd}}").render(d) == "[sh -c x]"
    assert Template("{{json .Config.Cmd}}").render(d) == '["sh","-c","x"]'
    assert Template("{{.Labels}}").render(d) == "map[a:1 b:2]"
    assert Template("{{index .Labels \"b\"}}").render(d) == "2"
    assert Template("{{.Missing}}").render(d) == "<no value>"
    assert Template("{{upper .Tag}} {{.Tag | upper}}").render(d) == "LATEST LATEST"
    assert Template("{{join .Config.Cmd \",\"}}").render(d) == "sh,-c,x"
    assert Template("{{len .Config.Cmd}}").render(d) == "3"
    assert Template('{{printf "%s=%d" .Tag .N}}').render(d) == "latest=3"
    assert Template("{{if .Config.Env}}yes{{else}}no{{end}}").render(d) == "no"
    assert Template("{{range .Config.Cmd}}[{{.}}]{{end}}").render(d) == "[sh][-c][x]"
    assert Template("a {{- .Tag -}} b").render(d) == "alatestb"
    assert Template("{{with .Config}}{{.Cmd}}{{end}}").render(d) == "[sh -c x]"


@pytest.mark.parametrize("bad", ["{{.A", "{{if .A}}x", "{{end}}", "{{nosuchfunc .A}}"])
def test_template_errors(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        Template(bad).render({"A": 1})


def test_go_json_as_the_docker_cli_json_function() -> None:
    # the Docker CLI's json function: SetEscapeHTML(false); Go maps (Labels...) with their keys sorted
    assert go_json({"Digest": "<none>", "x": "a&b"}) == '{"Digest":"<none>","x":"a&b"}'
    assert go_json({"Z": 1, "Labels": {"b": 1, "a": 2}}) == '{"Z":1,"Labels":{"a":2,"b":1}}'


def test_tabwriter_matches_docker_layout() -> None:
    lines = tabwrite(["REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE", "busybox\tlatest\t3d9a0ce82628\t2 hours ago\t4.26MB"])
    assert lines == ["REPOSITORY   TAG       IMAGE ID       CREATED       SIZE",
                     "busybox      latest    3d9a0ce82628   2 hours ago   4.26MB"]


def test_format_rows_table_json_and_plain() -> None:
    rows = [{"ID": "abc", "Size": "1kB"}, {"ID": "defghi", "Size": "2MB"}]
    headers = {"ID": "IMAGE ID", "Size": "SIZE"}
    assert format_rows("table {{.ID}}\\t{{.Size}}", rows, headers) == (
        "IMAGE ID   SIZE\nabc        1kB\ndefghi     2MB\n")
    assert format_rows("{{.ID}}", rows, headers) == "abc\ndefghi\n"
    assert format_rows("json", rows, headers) == '{"ID":"abc","Size":"1kB"}\n{"ID":"defghi","Size":"2MB"}\n'
    assert format_rows("table {{.ID}} {{.Nope}}", rows[:1], headers) == "IMAGE ID \nabc <no value>\n"


def test_go_time_string_is_datetimes_local_time_in_every_zone() -> None:
    """CreatedAt of ps/images rows comes from time.localtime now (no datetime import per command): the same text
    as datetime's astimezone() in zones with and without DST and with half-hour offsets."""
    import datetime
    import os
    import random
    import time

    from dockyard.cli.humanize import go_time_string

    def by_datetime(ts: float) -> str:
        d = datetime.datetime.fromtimestamp(ts).astimezone()
        return d.strftime("%Y-%m-%d %H:%M:%S %z ") + (d.tzname() or "")

    saved = os.environ.get("TZ")
    rnd = random.Random(7)
    try:
        for tz in ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"):
            os.environ["TZ"] = tz
            time.tzset()
            for ts in [rnd.uniform(0, 2e9) for _ in range(2000)] + [0.0, 1e9]:
                assert go_time_string(ts) == by_datetime(ts), (tz, ts)
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()
