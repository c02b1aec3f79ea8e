"""JSON through the standard library's C accelerator (``_json``) alone, for the commands' hot paths.

``import json`` costs ~5 ms of every short command on these machines: ``json.decoder``, ``json.scanner`` and
``json.encoder`` import ``re`` and compile four regular expressions, which only their pure-Python fallbacks use.
The C scanner and encoder that ``json`` itself uses when it can are in ``_json`` (0.4 ms); this module drives
them the way ``json.loads``/``json.dumps`` do, so the results are the same (tests/unit/test_jsonc.py compares the
two over generated documents and malformed ones). Anything less common (``indent``, ``cls``, hooks, a document
that does not parse, whose error message ``json`` words) is handed to ``json`` itself, imported then.

Use: ``from dockyard import jsonc as json`` in a module on the path of ``run``/``exec``/``ps``.
"""

from __future__ import annotations

import _json
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

_WS = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Context:
    """What ``_json.make_scanner`` reads from its context (json.JSONDecoder's defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[Any, Any] = {}


_scan = _json.make_scanner(_Context())


def _std() -> Any:
    import json

    return json


def __getattr__(name: str) -> Any:  # json.JSONDecodeError and the rest, on first use
    if name.startswith("__"):  # the import system's questions (__path__...) are about this module, not json
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_std(), name)


def loads(s: str | bytes | bytearray, **kw: Any) -> Any:
    if kw:
        return _std().loads(s, **kw)
    if isinstance(s, (bytes, bytearray)):
        if s[:3] == b"\xef\xbb\xbf" or b"\x00" in s[:4]:  # a BOM or UTF-16/32: json's own detection
            return _std().loads(s)
        try:
            s = s.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return _std().loads(s)
    elif not isinstance(s, str) or s.startswith("\ufeff"):
        return _std().loads(s)  # json's TypeError or "Unexpected UTF-8 BOM"
    n = len(s)
    i = 0
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except (StopIteration, SystemError):
        # "Expecting value"; or an error inside the document, which the scanner raises as json.decoder's
        # JSONDecodeError only when that module is loaded (else a SystemError): json words it either way
        return _std().loads(s)
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        return _std().loads(s)  # raises json's "Extra data"
    return obj


def load(f: Any, **kw: Any) -> Any:
    return loads(f.read(), **kw)


def _no_default(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj: Any, *, sort_keys: bool = False, separators: tuple[str, str] | None = None,
          default: Callable[[Any], Any] | None = None, ensure_ascii: bool = True, allow_nan: bool = True,
          **kw: Any) -> str:
    if any(v is not None for v in kw.values()):  # indent, cls, ...: json's own
        return _std().dumps(obj, sort_keys=sort_keys, separators=separators, default=default,  # type: ignore
                            ensure_ascii=ensure_ascii, allow_nan=allow_nan, **kw)
    item_sep, key_sep = separators or (", ", ": ")
    encode = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    if isinstance(obj, str):
        return encode(obj)  # type: ignore[no-any-return]
    enc = _json.make_encoder({}, default or _no_default, encode, None, key_sep, item_sep, sort_keys, False,
                             allow_nan)
    return "".join(enc(obj, 0))


def dump(obj: Any, f: Any, **kw: Any) -> None:
    f.write(dumps(obj, **kw))


def copied(v: Any) -> Any:
    """A deep copy of JSON data (dicts and lists copied, the rest shared), without importing ``copy``."""
    if isinstance(v, dict):
        return {k: copied(x) for k, x in v.items()}
    if isinstance(v, list):
        return [copied(x) for x in v]
    return v
