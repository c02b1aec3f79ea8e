"""Compose files -> one validated model (the Compose specification, compose-spec.json beside this module).

Order, as Docker Compose: each file is read (YAML, with the line of every value kept), interpolated
(``${VAR}``, ``$VAR``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``,
``${VAR:+alt}``, ``$$`` for a literal ``$``; values from the environment, then the project's ``.env``),
validated against the schema (an error names the file, the field and its line), then the files are merged in
order (mappings merged key by key; ``environment``/``labels`` as mappings; ``ports``, ``expose``, ``dns``
concatenated; ``volumes`` by target; other sequences replaced), ``extends`` resolved, and services outside the
active ``profiles`` dropped. PyYAML and jsonschema are imported here only: never on the ``run`` path.
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard import jsonc as json
from dockyard.errors import InvalidArgument

def _site() -> None:
    """PyYAML and jsonschema live in site-packages: the ``dockyard`` launcher starts Python with -S (a fast
    ``run``), so the site directories are added on first use here, as the registry client does."""
    import sys

    if sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()


DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
_VAR = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class ComposeError(InvalidArgument):
    """An invalid Compose file (one line naming the file, the field and its line)."""


def find_files(workdir: str) -> list[str]:
    d = os.path.abspath(workdir)
    while True:
        for name in DEFAULT_FILES:
            p = os.path.join(d, name)
            if os.path.isfile(p):
                return [p]
        parent = os.path.dirname(d)
        if parent == d:
            raise ComposeError("no configuration file provided: not found")
        d = parent


def read_env_file(path: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, optional quotes, ``export``), as Compose reads ``.env``."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return out
    except OSError as e:
        raise ComposeError(f"{path}: {e.strerror}") from None
    for n, ln in enumerate(lines, 1):
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        if ln.startswith("export "):
            ln = ln[7:].lstrip()
        k, sep, v = ln.partition("=")
        k = k.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", k):
            raise ComposeError(f"{path}: line {n}: unexpected character in variable name {k!r}")
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        elif " #" in v:
            v = v.split(" #", 1)[0].rstrip()
        out[k] = v if sep else os.environ.get(k, "")
    return out


# ---- YAML with lines ------------------------------------------------------------------------------------------
def _load_yaml(path: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    _site()
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ComposeError(f"{path}: {e.strerror}") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else {}
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ComposeError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    lines: dict[tuple[Any, ...], int] = {}

    def walk(n: Any, p: tuple[Any, ...]) -> None:
        lines[p] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                if isinstance(k, yaml.ScalarNode):
                    lines[p + (k.value,)] = k.start_mark.line + 1
                    walk(v, p + (k.value,))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, p + (i,))

    if node is not None:
        walk(node, ())
    return data, lines


# ---- interpolation ------------------------------------------------------------------------------------------
def interpolate(value: str, env: dict[str, str], where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        if m.group(3):
            return env.get(m.group(3), "")
        expr = m.group(2)
        mm = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", expr, re.S)
        if not mm:
            raise ComposeError(f"{where}: invalid interpolation format for {value!r}")
        name, op, arg = mm.group(1), mm.group(2), mm.group(3) or ""
        have = name in env
        val = env.get(name, "")
        set_ = have and (val != "" if op and op.startswith(":") else True)
        if op in (":-", "-"):
            return val if set_ else interpolate(arg, env, where)
        if op in (":?", "?"):
            if not set_:
                raise ComposeError(f"{where}: required variable {name} is missing a value: "
                                   f"{interpolate(arg, env, where) or name}")
            return val
        if op in (":+", "+"):
            return interpolate(arg, env, where) if set_ else ""
        return val

    out, i = [], 0
    while i < len(value):  # ${...} may nest (${A:-${B}}): find the matching brace by hand
        j = value.find("$", i)
        if j < 0:
            out.append(value[i:])
            break
        out.append(value[i:j])
        if value.startswith("${", j):
            depth, k = 0, j + 1
            while k < len(value):
                if value[k] == "{":
                    depth += 1
                elif value[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            if k >= len(value):
                raise ComposeError(f"{where}: invalid interpolation format for {value!r}")
            out.append(sub(re.match(r"(x)?\$\{(.*)\}()", value[j:k + 1], re.S)))  # type: ignore[arg-type]
            i = k + 1
            continue
        m = _VAR.match(value, j)
        if m:
            out.append(sub(m))
            i = m.end()
        else:
            out.append("$")
            i = j + 1
    return "".join(out)


def _interpolate_tree(x: Any, env: dict[str, str], path: str) -> Any:
    if isinstance(x, str):
        return interpolate(x, env, path)
    if isinstance(x, dict):
        return {k: _interpolate_tree(v, env, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
    if isinstance(x, list):
        return [_interpolate_tree(v, env, f"{path}[{i}]") for i, v in enumerate(x)]
    return x


# ---- validation ---------------------------------------------------------------------------------------------
_SCHEMA: Any = None


def _validate(data: Any, path: str, lines: dict[tuple[Any, ...], int]) -> None:
    global _SCHEMA
    _site()
    import jsonschema

    if _SCHEMA is None:
        with open(os.path.join(os.path.dirname(__file__), "compose-spec.json"), encoding="utf-8") as f:
            _SCHEMA = json.load(f)
    v = jsonschema.Draft7Validator(_SCHEMA)
    errors = list(v.iter_errors(data))
    if not errors:
        return
    e = jsonschema.exceptions.best_match(errors)
    while e.context:  # oneOf/anyOf: the deepest reason is the useful one
        e = jsonschema.exceptions.best_match(e.context)
    p = tuple(e.absolute_path)
    line = None
    for k in range(len(p), -1, -1):
        if p[:k] in lines:
            line = lines[p[:k]]
            break
    field = ".".join(str(x) for x in p) or "(top level)"
    msg = e.message
    if e.validator == "additionalProperties" or e.validator == "patternProperties" or \
            "does not match any of the regexes" in msg:
        extra = re.findall(r"'([^']+)' was unexpected", msg) or re.findall(r"^'([^']+)' does not match any", msg)
        if extra:
            field = ".".join([*map(str, p), extra[0]]) if p else extra[0]
            line = lines.get(p + (extra[0],), line)
            msg = "additional property is not allowed"
    elif e.validator == "type":
        msg = "must be " + ("an " if str(e.validator_value)[0] in "aeio" else "a ") + f"{e.validator_value if isinstance(e.validator_value, str) else ' or '.join(e.validator_value)}"
    where = f" (line {line})" if line else ""
    raise ComposeError(f"{os.path.basename(path)}: {field}: {msg}{where}")


# ---- merging ------------------------------------------------------------------------------------------------
def _as_map(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return dict(v)
    out: dict[str, Any] = {}
    for item in v or []:
        k, sep, val = str(item).partition("=")
        out[k] = val if sep else None
    return out


_CONCAT = ("ports", "expose", "dns", "dns_search", "extra_hosts", "cap_add", "cap_drop", "env_file",
           "security_opt", "tmpfs", "external_links", "devices")


def _target(v: Any) -> str:
    if isinstance(v, dict):
        return str(v.get("target", ""))
    parts = str(v).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if k in ("environment", "labels", "extra_hosts") and k in out and not isinstance(v, list) or \
                k in ("environment", "labels") and k in out:
            out[k] = {**_as_map(out[k]), **_as_map(v)}
        elif k in _CONCAT and k in out and isinstance(v, list) and isinstance(out[k], list):
            out[k] = out[k] + [x for x in v if x not in out[k]]
        elif k == "volumes" and k in out:
            keep = {_target(x): x for x in out[k]}
            keep.update({_target(x): x for x in v})
            out[k] = list(keep.values())
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge_maps(out[k], v)
        else:
            out[k] = v
    return out


def _merge_maps(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge_maps(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _merge_files(docs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in docs:
        for k, v in d.items():
            if k == "services":
                svcs = out.setdefault("services", {})
                for name, s in (v or {}).items():
                    svcs[name] = merge_service(svcs[name], s or {}) if name in svcs else dict(s or {})
            elif isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = _merge_maps(out[k], v)
            else:
                out[k] = v
    return out


# ---- the model ----------------------------------------------------------------------------------------------
def _extends(services: dict[str, Any], files: dict[str, Any], name: str, seen: tuple[str, ...] = ()) -> None:
    s = services[name]
    ext = s.get("extends")
    if not ext:
        return
    if name in seen:
        raise ComposeError(f"services.{name}.extends: circular reference")
    base_name = ext if isinstance(ext, str) else ext["service"]
    src = services
    if isinstance(ext, dict) and ext.get("file"):
        src = dict((files.get(ext["file"]) or {}).get("services") or {})
    if base_name not in src:
        raise ComposeError(f"services.{name}.extends: service {base_name!r} not found")
    if src is services:
        _extends(services, files, base_name, seen + (name,))
    base = {k: v for k, v in src[base_name].items() if k not in ("depends_on", "extends")}
    rest = {k: v for k, v in s.items() if k != "extends"}
    services[name] = merge_service(base, rest)


def load(files: list[str], workdir: str | None = None, project_name: str | None = None,
         profiles: list[str] | None = None, env_files: list[str] | None = None) -> dict[str, Any]:
    """The project: ``{"name", "workdir", "files", "services", "networks", "volumes", "secrets", "configs",
    "env"}``; ComposeError
    (one line) for an invalid file. Nothing is created here."""
    files = [os.path.abspath(f) for f in files] if files else find_files(workdir or os.getcwd())
    wd = os.path.abspath(workdir) if workdir else os.path.dirname(files[0])
    env: dict[str, str] = {}
    for ef in env_files or [os.path.join(wd, ".env")]:
        env.update(read_env_file(ef))
    env.update(os.environ)
    docs = []
    by_file: dict[str, Any] = {}
    for f in files:
        data, lines = _load_yaml(f)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ComposeError(f"{os.path.basename(f)}: top-level object must be a mapping")
        data = _interpolate_tree(data, env, "")
        for inc in data.pop("include", None) or []:
            for p in [inc] if isinstance(inc, str) else inc.get("path") if isinstance(inc.get("path"), list) \
                    else [inc.get("path")]:
                sub = load([os.path.join(os.path.dirname(f), p)], profiles=profiles, project_name="x")
                docs.append({"services": sub["services"], "networks": sub["raw_networks"],
                             "volumes": sub["raw_volumes"]})
        _validate(data, f, lines)
        docs.append(data)
        by_file[os.path.relpath(f, wd)] = data
        by_file[os.path.basename(f)] = data
    merged = _merge_files(docs)
    services: dict[str, Any] = dict(merged.get("services") or {})
    for name in list(services):
        _extends(services, by_file, name)
    active = set(profiles if profiles is not None else
                 [p for p in env.get("COMPOSE_PROFILES", "").split(",") if p])
    services = {n: s for n, s in services.items() if not s.get("profiles") or active & set(s["profiles"])}
    name = project_name or env.get("COMPOSE_PROJECT_NAME") or merged.get("name") or os.path.basename(wd)
    name = re.sub(r"[^a-z0-9_-]", "", name.lower())
    if not name or not re.match(r"[a-z0-9]", name):
        raise ComposeError(f"invalid project name {project_name or os.path.basename(wd)!r}: it must contain "
                           "only lowercase letters, digits, dashes and underscores, and start with a letter or digit")
    for n, s in services.items():
        if not s.get("image") and not s.get("build"):
            raise ComposeError(f"service {n!r} has neither an image nor a build context specified")
        for dep in _deps(s):
            if dep not in services and not (s.get("depends_on") or {}) == []:
                d = s["depends_on"]
                if isinstance(d, dict) and d.get(dep, {}).get("required") is False:
                    continue
                raise ComposeError(f"service {n!r} depends on undefined service {dep!r}")
    return {"name": name, "workdir": wd, "files": files, "services": services,
            "networks": dict(merged.get("networks") or {}), "volumes": dict(merged.get("volumes") or {}),
            "raw_networks": dict(merged.get("networks") or {}), "raw_volumes": dict(merged.get("volumes") or {}),
            "secrets": dict(merged.get("secrets") or {}), "configs": dict(merged.get("configs") or {}),
            "env": env}


def _deps(s: dict[str, Any]) -> list[str]:
    d = s.get("depends_on") or []
    return list(d) if isinstance(d, (list, dict)) else []


def depends_on(s: dict[str, Any]) -> dict[str, str]:
    """service -> condition (service_started, service_healthy, service_completed_successfully)."""
    d = s.get("depends_on") or []
    if isinstance(d, list):
        return {x: "service_started" for x in d}
    return {k: (v or {}).get("condition", "service_started") for k, v in d.items()}


def order(services: dict[str, Any]) -> list[str]:
    """Service names, dependencies first (ComposeError for a cycle)."""
    out: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str, chain: tuple[str, ...]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise ComposeError(f"dependency cycle detected: {' -> '.join(chain + (n,))}")
        state[n] = 1
        for d in depends_on(services[n]):
            if d in services:
                visit(d, chain + (n,))
        state[n] = 2
        out.append(n)

    for n in sorted(services):
        visit(n, ())
    return out
