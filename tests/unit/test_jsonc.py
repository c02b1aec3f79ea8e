"""dockyard.jsonc (JSON on ``_json`` alone, without ``json``'s import of ``re``) gives what ``json`` gives."""

from __future__ import annotations

import json
import random

import pytest

from dockyard import jsonc


def _value(rnd: random.Random, depth: int = 0) -> object:
    kinds = ["int", "float", "str", "bool", "none"] + (["list", "dict"] * 2 if depth < 4 else [])
    k = rnd.choice(kinds)
    if k == "int":
        return rnd.choice([0, -1, 7, 2**31, -(2**63), 10**30, rnd.randint(-10**6, 10**6)])
    if k == "float":
        return rnd.choice([0.0, -0.5, 1e-7, 1.5e300, 3.141592653589793, rnd.uniform(-1e6, 1e6)])
    if k == "str":
        return "".join(rnd.choice("aZ09 \"\\/\n\t\x00\x1f\u00e9\u2028\U0001f600\ud800") for _ in range(rnd.randint(0, 8)))
    if k == "bool":
        return rnd.random() < 0.5
    if k == "none":
        return None
    if k == "list":
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {str(_value(rnd, 3)): _value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


def test_dumps_and_loads_agree_with_json_on_generated_documents() -> None:
    rnd = random.Random(42)
    for _ in range(3000):
        v = _value(rnd)
        for kw in ({}, {"sort_keys": True}, {"separators": (",", ":")}, {"ensure_ascii": False},
                   {"sort_keys": True, "separators": (",", ":")}):
            text = jsonc.dumps(v, **kw)
            assert text == json.dumps(v, **kw)
            assert jsonc.loads(text) == json.loads(text)
            assert jsonc.loads(text.encode("utf-8", "surrogatepass")) == json.loads(text)
            assert jsonc.loads(f" \n\t{text}\r ") == json.loads(text)


def test_special_values_and_options() -> None:
    assert jsonc.dumps(float("nan")) == "NaN" and str(jsonc.loads("[NaN]")[0]) == "nan"
    assert jsonc.loads("[Infinity, -Infinity]") == [float("inf"), float("-inf")]
    assert jsonc.dumps({"b": 1, "a": [1, 2]}, indent=2) == json.dumps({"b": 1, "a": [1, 2]}, indent=2)
    assert jsonc.dumps({1: 2, False: None, 2.5: 0}) == json.dumps({1: 2, False: None, 2.5: 0})
    assert jsonc.dumps("x\u00e9") == '"x\\u00e9"'
    assert jsonc.loads('"\\ud83d\\ude00"') == "\U0001f600"
    assert jsonc.loads('{"a": [1]}'.encode("utf-16")) == {"a": [1]}  # json's encoding detection
    assert jsonc.dumps({"d": {1, 2}}, default=sorted) == '{"d": [1, 2]}'
    src = {"a": [1, {"b": [2]}], "c": "x"}
    dup = jsonc.copied(src)
    assert dup == src and dup["a"] is not src["a"] and dup["a"][1] is not src["a"][1]
    for v in (float("nan"), [float("inf")], {"a": -float("inf")}):
        with pytest.raises(ValueError) as mine:
            jsonc.dumps(v, allow_nan=False)
        with pytest.raises(ValueError) as theirs:
            json.dumps(v, allow_nan=False)
        assert str(mine.value) == str(theirs.value)
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        jsonc.dumps({1, 2})
    with pytest.raises(ValueError, match="Circular reference"):
        x: list[object] = []
        x.append(x)
        jsonc.dumps(x)


@pytest.mark.parametrize("doc", ["", " ", "{", "[1,]", '{"a" 1}', "1 2", "nul", '"\\x"', '"a\nb"', "[1] x",
                                 "\ufeff[]", "01", "{'a': 1}", "[" * 10 + "]" * 9])
def test_malformed_documents_raise_jsons_error(doc: str) -> None:
    with pytest.raises(json.JSONDecodeError) as mine:
        jsonc.loads(doc)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(doc)
    assert str(mine.value) == str(theirs.value)
    assert jsonc.JSONDecodeError is json.JSONDecodeError


def test_malformed_documents_raise_jsons_error_when_json_was_never_imported() -> None:
    """The C scanner raises its errors as json.decoder.JSONDecodeError only when json.decoder is loaded (else a
    SystemError): the API service got a 500 for a body of "{not json" before jsonc handed such errors to json."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from dockyard import jsonc\n"
            "for doc in ('{not json', '[1, 2', '{\"a\": }', '\"\\\\x\"'):\n"
            "    try:\n        jsonc.loads(doc)\n    except jsonc.JSONDecodeError as e:\n        print(type(e).__name__)\n")
    p = subprocess.run([sys.executable, "-S", "-c", code, src], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout.split()) == (0, ["JSONDecodeError"] * 4), p.stderr


def test_jsonc_is_a_module_not_jsons_package() -> None:
    """Names json has are handed over on use, but not the import system's dunders: `from dockyard.jsonc import x`
    asks for __path__, and json's answer made it import json (and re) for nothing."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from dockyard.jsonc import copied, dumps\n"
            "print(sorted(m for m in ('json', 're') if m in sys.modules), hasattr(sys.modules['dockyard.jsonc'], "
            "'__path__'))")
    p = subprocess.run([sys.executable, "-S", "-c", code, src], capture_output=True, text=True, timeout=30)
    assert p.stdout.split("\n")[0] == "[] False", p.stderr
