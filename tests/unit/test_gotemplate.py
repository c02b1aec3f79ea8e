"""--format templates follow Go's text/template (and the Docker CLI's functions): what Docker users write."""

from __future__ import annotations

import pytest

from dockyard.cli.template import Template, format_rows, print_inspect
from dockyard.errors import InvalidArgument

C = {"Name": "/web", "Id": "abc", "State": {"Status": "running", "ExitCode": 0, "Running": True},
     "Config": {"Labels": {"z": "1", "a": "2", "com.example.v": "3"}, "Env": ["A=1", "B=2"], "Cmd": ["sh", "-c"]},
     "NetworkSettings": {"Networks": {"net": {"IPAddress": "10.0.0.2"}, "bridge": {"IPAddress": "172.17.0.2"}}}}


@pytest.mark.parametrize("fmt,want", [
    ('{{(index .NetworkSettings.Networks "net").IPAddress}}', "10.0.0.2"),
    ("{{$n := .Name}}{{$n}}", "/web"),
    ("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}};{{end}}",
     "bridge=172.17.0.2;net=10.0.0.2;"),
    ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:A=1 1:B=2 "),
    ("{{range .Config.Env}}{{$.Name}}{{end}}", "/web/web"),
    ("{{if eq .State.Status \"exited\"}}x{{else if .State.Running}}up{{else}}other{{end}}", "up"),
    ("{{if .Nope}}a{{else if eq .State.ExitCode 1}}b{{else}}c{{end}}", "c"),
    ("{{with .Nope}}{{.}}{{else}}none{{end}}", "none"),
    ("{{with .State}}{{.Status}}{{end}}", "running"),
    ('{{"}}"}} {{`{{x}}`}}', "}} {{x}}"),
    ("a{{/* a comment */}}b {{- /* trimmed */ -}} c", "abc"),
    ("{{- .Id -}}  \n", "abc"),
    ("x  {{- .Id}}", "xabc"),
    ("{{json .Config.Labels}}", '{"a":"2","com.example.v":"3","z":"1"}'),
    ("{{.Config.Labels}}", "map[a:2 com.example.v:3 z:1]"),
    ('{{index .Config.Labels "com.example.v"}}', "3"),
    ("{{len .Config.Env}} {{len .Name}}", "2 4"),
    ("{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge \"b\" \"a\"}} {{ne 1 2}} {{eq 1 2 3 1}}", "true true false true true true"),
    ("{{and 1 0}} {{or 0 \"\" \"x\"}} {{not .Nope}} {{and .Nope (index .Nope 1)}}", "0 x true <no value>"),
    ('{{print 1 2 "a" 3}}|{{println "a" 1}}|{{printf "%-6s|%3d|%q|%v|%.2f" "ab" 7 "q" .Config.Cmd 1.5}}',
     '1 2a3|a 1\n|ab    |  7|"q"|[sh -c]|1.50'),
    ('{{printf "%d" "x"}} {{printf "%s"}} {{printf "a" 1}}', "%!d(string=x) %!s(MISSING) a%!(EXTRA int=1)"),
    ('{{join .Config.Env ","}} {{split "a:b" ":"}} {{upper "ab"}} {{lower "AB"}} {{title "hello wORLD-x"}}',
     "A=1,B=2 [a b] AB ab Hello WORLD-X"),
    ('[{{pad "ab" 1 2}}][{{pad "" 1 2}}] {{truncate "abcdef" 3}} {{truncate "ab" 5}}', "[ ab  ][] abc ab"),
    ("{{.Name | printf \"%s!\"}} {{.Config.Cmd | len}}", "/web! 2"),
    ("{{range $i, $e := .Config.Env}}{{if $i}},{{end}}{{$e}}{{end}}", "A=1,B=2"),
    ("{{range .Config.Env}}{{if eq . \"B=2\"}}{{break}}{{end}}{{.}}{{end}}", "A=1"),
    ("{{range .Config.Env}}{{if eq . \"A=1\"}}{{continue}}{{end}}{{.}}{{end}}", "B=2"),
    ("{{range .Nope}}x{{else}}empty{{end}}", "empty"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{$x := 1}}{{if true}}{{$x := 2}}{{end}}{{$x}}", "1"),
    ("{{.Nope}} {{.Nope.Deeper}}", "<no value> <no value>"),
    ("{{slice .Name 1 3}} {{index .Config.Cmd 1}}", "we -c"),
    ("{{'a'}} {{0x10}} {{1e3}} {{-2}}", "97 16 1000 -2"),
])
def test_go_template_semantics(fmt: str, want: str) -> None:
    assert Template(fmt).render(C) == want


@pytest.mark.parametrize("fmt,msg", [
    ("{{$x}}", 'undefined variable "$x"'),
    ("{{nosuch 1}}", 'function "nosuch" not defined'),
    ("{{if .A}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{break}}", "outside {{range}}"),
    ("{{.A", "unclosed action"),
    ("{{/* x }}", "unclosed comment"),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{(.Name}}", "unclosed left paren"),
    ('{{eq 1 "a"}}', "incompatible types for comparison"),
    ("{{index .Config.Cmd 5}}", "index out of range: 5"),
    ("{{.Name 1}}", "Name is not a method but has arguments"),
    ("{{1 | 2}}", "can't give argument to non-function"),
    ("{{len 3}}", "len of type int"),
    ("{{range .Name}}{{end}}", "range can't iterate over /web"),
    ('{{define "x"}}{{end}}', "not supported"),
])
def test_errors_are_one_line(fmt: str, msg: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        Template(fmt).render(C)
    assert msg in str(e.value) and str(e.value).startswith("template: ") and "\n" not in str(e.value)


class _PsRow(dict):  # type: ignore[type-arg]
    pass


def test_label_method_on_rows_and_docker_table_headers() -> None:
    rows = [_PsRow(ID="a1", Labels="com.x=1,b=two", Names="web")]
    assert format_rows('{{.Label "b"}} {{.Label "com.x"}} [{{.Label "no"}}]', rows, {}) == "two 1 []\n"
    assert format_rows('{{.Label "b"}}', [{"ID": "a", "Labels": {"b": "m"}}], {}) == "m\n"
    # header functions keep the column name (json/upper... are identity in headers, as the Docker CLI's)
    assert format_rows("table {{.ID | lower}}\t{{json .Names}}", rows, {"ID": "CONTAINER ID", "Names": "NAMES"}) == (
        "CONTAINER ID   NAMES\na1             \"web\"\n")


def test_python_internals_stay_unreachable() -> None:
    # a mapping's fields are its keys only (Go: a map): its methods are not reachable
    assert Template("{{.get}} {{.keys}} {{.__class__}} {{.items}}").render(C) == " ".join(["<no value>"] * 4)
    assert Template("{{.get}}").render({"get": "data"}) == "data"
    for fmt in ("{{.Name.upper}}", "{{.Name.__class__}}", "{{.State.Running.real}}", "{{.Config.Cmd.append}}"):
        with pytest.raises(InvalidArgument, match="can't evaluate field"):
            Template(fmt).render(C)


def test_inspect_prints_go_maps_sorted(capsys: pytest.CaptureFixture[str]) -> None:
    print_inspect([{"Id": "x", "Config": {"Labels": {"z": "1", "a": "2"}, "Cmd": None},
                    "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "a": "b"}}}}])
    out = capsys.readouterr().out
    assert out.index('"a": "2"') < out.index('"z": "1"')
    assert out.index('"Id"') < out.index('"Config"') < out.index('"HostConfig"')  # structs keep their order
    assert out.index('"a": "b"') < out.index('"max-size"')
    print_inspect([{"B": 1, "A": {"Labels": {"y": 1, "x": 2}}}], "{{json .}}")
    assert capsys.readouterr().out == '{"B":1,"A":{"Labels":{"x":2,"y":1}}}\n'


def test_plain_tables_print_what_the_template_engine_prints() -> None:
    """``ps``/``images`` default tables skip the template engine (text and ``{{.Field}}`` only, string fields of
    plain dict rows: cli.table); the output must be the engine's, header included, and anything else still goes to
    it, through either module's format_rows."""
    from dockyard.cli import table as tb
    from dockyard.cli import template as t

    rows = [{"ID": "abc", "Names": "n1", "Status": "Up 2 seconds", "Labels": "a=b"},
            {"ID": "def", "Names": "", "Status": "Exited (0)", "Labels": ""}]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES", "Status": "STATUS"}
    formats = ["table {{.ID}}\\t{{.Names}}\\t{{.Status}}", "{{.ID}}: {{ .Names }} ({{.Status}})", "table {{.Labels}}",
               "table {{.ID}}\\t{{.Nope}}", "{{.ID}} {{.Label \"a\"}}", "x {{- .ID}}", "{{.ID}}}} {{", "plain",
               "table {{.ID}}\\t{{ .Names}}\\t", "json"]
    for fmt in formats:
        for fn in (format_rows, tb.format_rows):
            if fmt == "json":
                assert fn(fmt, rows, headers) == "".join(t.go_json(r) + "\n" for r in rows)
                continue
            table, text = t.prepare(fmt)
            slow = []
            if table:
                slow.append(Template(text, t.HEADER_FUNCS).render(t._Headers(headers), partial=True))
            try:
                slow += [Template(text).render(r) for r in rows]
            except Exception as e:  # noqa: BLE001 - the same error must come out of format_rows
                with pytest.raises(type(e)):
                    fn(fmt, rows, headers)
                continue
            want = "".join(ln + "\n" for ln in (t.tabwrite(slow) if table else slow))
            assert fn(fmt, rows, headers) == want, fmt
    assert tb._plain("{{.ID}}\t{{.Names}}") == ["", "ID", "\t", "Names", ""]
    assert tb._plain("{{.ID | lower}}") is None and tb._plain("{{json .}}") is None
