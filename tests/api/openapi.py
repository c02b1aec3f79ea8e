"""The Engine API's Swagger 2.0 description (tests/api/swagger/v1.45.yaml) as JSON Schemas, one per operation and
status: ``$ref``s to ``#/definitions/`` inlined (a recursive one is left open), Swagger's ``x-`` keys dropped.

Nullability follows what Docker's Go types encode: a nil map, slice or struct pointer is JSON ``null`` (dockerd
sends ``"Labels": null``, ``"Mounts": null``...), so objects and arrays accept null, as do schemas marked
``x-nullable``; strings, numbers and booleans never do.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

SPEC = Path(__file__).parent / "swagger" / "v1.45.yaml"
NULL_OK = {("/exec/{id}/json", "ExitCode")}
"""Fields the description types as a number but dockerd sends as null (a Go pointer: ExecInspect's ExitCode is
null until the exec has ended)."""
LEGACY = {("/events", ".status"), ("/events", ".id"), ("/events", ".from")}
"""Fields dockerd still sends at v1.45 that the description no longer lists (events' status/id/from, sent
below API 1.52)."""
_DROP = {"description", "example", "title", "x-go-name", "x-omitempty", "x-nullable", "x-go-type", "x-isnullable",
         "discriminator", "readOnly"}


@functools.cache
def spec() -> dict[str, Any]:
    import yaml

    with open(SPEC) as f:
        return yaml.safe_load(f)


def _convert(s: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if not isinstance(s, dict):
        return s
    if "$ref" in s:
        name = s["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return {}
        return _convert(defs[name], defs, (*seen, name))
    out: dict[str, Any] = {}
    for k, v in s.items():
        if k in _DROP or k.startswith("x-"):
            continue
        if k == "properties":
            out[k] = {p: _convert(ps, defs, seen) for p, ps in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = _convert(v, defs, seen)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [_convert(x, defs, seen) for x in v]
        else:
            out[k] = v
    t = out.get("type")
    if s.get("x-nullable") or t in ("object", "array") or (t is None and "properties" in out):
        if isinstance(t, str):
            out["type"] = [t, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def schema(path: str, method: str, status: int) -> dict[str, Any] | None:
    """The JSON Schema of ``method path``'s response with ``status`` (None when the operation documents no body);
    AssertionError when the spec documents no such operation or status."""
    d = spec()
    op = d["paths"].get(path, {}).get(method.lower())
    assert op is not None, f"{method} {path} is not in the Engine API description"
    resp = op["responses"].get(status)
    assert resp is not None, f"{method} {path} answered {status}, not documented (documented: {sorted(op['responses'])})"
    if "schema" not in resp:
        return None
    return _convert(resp["schema"], d["definitions"])


def errors(path: str, method: str, status: int, body: Any) -> list[str]:
    """Where ``body`` breaks the operation's schema, as 'field.path: message' lines (empty when it conforms)."""
    from jsonschema import Draft4Validator

    s = schema(path, method, status)
    if s is None:
        return []
    v = Draft4Validator(s)
    return [f"{method} {path} {status}: {'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:300]}"
            for e in sorted(v.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
            if not (e.instance is None and e.absolute_path and (path, str(e.absolute_path[-1])) in NULL_OK)]



def _props(s: dict[str, Any]) -> tuple[dict[str, Any], Any, bool]:
    """(properties, additionalProperties, whether it names any) of ``s`` with its ``allOf`` members merged."""
    props: dict[str, Any] = dict(s.get("properties", {}))
    extra = s.get("additionalProperties")
    named = "properties" in s
    for sub in s.get("allOf", []):
        p, e, n = _props(sub)
        props.update(p)
        extra = extra if extra is not None else e
        named = named or n
    return props, extra, named


def undocumented(path: str, method: str, status: int, body: Any) -> list[str]:
    """Fields of ``body`` that the schema of an object does not name (where it lists its properties and allows
    no others): a misspelt, invented or withdrawn field."""
    s = schema(path, method, status)
    out: list[str] = []

    def walk(s: Any, v: Any, at: str) -> None:
        if not isinstance(s, dict):
            return
        if isinstance(v, dict):
            props, extra, named = _props(s)
            for k, x in v.items():
                if k in props:
                    walk(props[k], x, f"{at}.{k}")
                elif isinstance(extra, dict):
                    walk(extra, x, f"{at}.{k}")
                elif named and extra is None and (path, f"{at}.{k}") not in LEGACY:
                    out.append(f"{method} {path}: {at}.{k}")
        elif isinstance(v, list) and isinstance(s.get("items"), dict):
            for x in v:
                walk(s["items"], x, f"{at}[]")

    walk(s, body, "")
    return out
