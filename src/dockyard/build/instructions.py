"""Typed Dockerfile instructions (the semantic layer, as BuildKit's ``instructions`` package).

``make_instruction(node, escape, filename)`` checks one parser node (keyword, flags, argument count and shape)
and returns one of the instruction classes below. Values are kept as written (quotes included for the forms
the builder expands); ``instr.expand(env)`` returns a copy with the words expanded exactly where BuildKit expands
them (see ``dockyard.build.shell``). Every instruction carries ``line``/``end_line`` (1-based), ``original``
(its text, continuations joined), ``flags`` (raw ``--x=y`` words), ``escape`` and ``filename``; ``to_json()``
gives a plain-JSON view (used by the golden tests). Stages and their dependencies are in ``stages.py``, RUN
``--mount`` values in ``mounts.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.build.mounts import Mount, MountError, parse_mount
from dockyard.build.parser import (DockerfileError, Heredoc, HeredocWordError, Node, chomp_heredoc,
                                    parse_heredoc_word)

__all__ = [
    "Instruction", "FromInstruction", "RunInstruction", "CmdInstruction", "EntrypointInstruction",
    "EnvInstruction", "ArgInstruction", "LabelInstruction", "ExposeInstruction", "WorkdirInstruction",
    "CopyInstruction", "AddInstruction", "UserInstruction", "VolumeInstruction", "ShellInstruction",
    "StopSignalInstruction", "HealthcheckInstruction", "OnbuildInstruction", "MaintainerInstruction",
    "Mount", "parse_mount", "make_instruction", "INSTRUCTIONS", "EXPANDING",
]


class _Fail(Exception):
    """Internal: a reason; ``make_instruction`` adds file and line."""


_FAILS = (_Fail, MountError, HeredocWordError)


def _clone(obj):  # type: ignore[no-untyped-def]
    new = object.__new__(type(obj))
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(obj, slot):
                setattr(new, slot, getattr(obj, slot))
    return new


def _jsonable(v):  # type: ignore[no-untyped-def]
    if hasattr(v, "to_json"):
        return v.to_json()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


class Instruction:
    """Base of every instruction. ``name`` is the canonical keyword (``RUN``); ``keyword`` as written."""

    name = ""
    expands = False  # does the builder expand variables in this instruction?
    _json: tuple[str, ...] = ()
    __slots__ = ("keyword", "line", "end_line", "original", "flags", "escape", "filename")

    def _init(self, node: Node, escape: str, filename: str) -> None:
        self.keyword = node.keyword
        self.line = node.line
        self.end_line = node.end_line
        self.original = node.original.strip()
        self.flags = list(node.flags)
        self.escape = escape
        self.filename = filename

    def error(self, reason: str) -> DockerfileError:
        """A DockerfileError located at this instruction: ``Dockerfile:7: reason``."""
        return DockerfileError(self.filename, self.line, reason)

    def expand(self, env: Mapping[str, str]) -> Instruction:
        """A copy with variables expanded from ``env`` (self when the builder does not expand this one)."""
        return self

    def _x(self, word: str, env: Mapping[str, str]) -> str:
        from dockyard.build.shell import ExpansionError, expand

        try:
            return expand(word, env, self.escape)
        except ExpansionError as e:
            raise self.error(str(e)) from None

    def to_json(self) -> dict:
        d: dict = {"instruction": self.name, "line": self.line}
        if self.end_line != self.line:
            d["end_line"] = self.end_line
        for attr in self._json:
            d[attr.rstrip("_")] = _jsonable(getattr(self, attr))
        return d

    def __repr__(self) -> str:
        return f"<{self.name} line {self.line}: {self.original!r}>"


# -- flags --------------------------------------------------------------------------------------------------


def _flags(words: list[str], spec: dict[str, str]) -> dict:
    """Parse builder flags against ``spec`` (name -> "bool" | "string" | "strings"), as BuildKit's BFlags."""
    values: dict = {}
    for word in words:
        if word == "--":
            break
        if not word.startswith("--"):
            raise _Fail(f"arg should start with -- : {word}")
        flag, has_value, value = word.partition("=")
        name = flag[2:]
        kind = spec.get(name)
        if kind is None:
            raise _Fail(f"unknown flag: {flag}")
        if name in values and kind != "strings":
            raise _Fail(f"duplicate flag specified: {flag}")
        if kind == "bool":
            if has_value and value == "":
                raise _Fail(f"missing a value on flag: {flag}")
            low = value.lower()
            if low not in ("true", "false", ""):
                raise _Fail(f"expecting boolean value for flag {flag}, not: {value}")
            values[name] = low != "false"
        elif not has_value:
            raise _Fail(f"missing a value on flag: {flag}")
        elif kind == "string":
            values[name] = value
        else:
            values.setdefault(name, []).append(value)
    return values


def _no_flags(node: Node) -> None:
    _flags(node.flags, {})


def _exactly_one(node: Node, name: str) -> str:
    if len(node.args) != 1:
        raise _Fail(f"{name} requires exactly one argument")
    return node.args[0]


def _at_least_one(node: Node, name: str) -> None:
    if not node.args:
        raise _Fail(f"{name} requires at least one argument")


def _cmdline(node: Node) -> list[str]:
    """Exec form: the JSON list; shell form: one string (the rest of the line)."""
    if node.json:
        return list(node.args)
    return [" ".join(node.args)] if node.args else []


# -- instructions -------------------------------------------------------------------------------------------


class FromInstruction(Instruction):
    """``FROM [--platform=P] image [AS name]``; ``stage_name`` is lower case (None without AS)."""

    name = "FROM"
    expands = True
    _json = ("image", "stage_name", "platform")
    __slots__ = ("image", "stage_name", "platform")

    def _parse(self, node: Node) -> None:
        args = node.args
        self.stage_name = None
        if len(args) == 3 and args[1].lower() == "as":
            import re

            self.stage_name = args[2].lower()
            if not re.fullmatch(r"[a-z][a-z0-9-_.]*", self.stage_name):
                raise _Fail(f'invalid name for build stage: "{args[2]}", name can\'t start with a number or '
                            "contain symbols")
        elif len(args) != 1:
            raise _Fail("FROM requires either one or three arguments")
        self.image = args[0]
        self.platform = _flags(node.flags, {"platform": "string"}).get("platform")

    def expand(self, env: Mapping[str, str]) -> FromInstruction:
        """Expand image and platform with the *global* args (ARG before the first FROM, predefined ARGs)."""
        new = _clone(self)
        new.image = self._x(self.image, env)
        if not new.image:
            raise self.error(f"base name ({self.image}) should not be blank")
        if self.platform is not None:
            new.platform = self._x(self.platform, env)
            if not new.platform:
                raise self.error(f"empty platform value from expression {self.platform}")
        return new


class _CommandLine(Instruction):
    """RUN/CMD/ENTRYPOINT: ``cmd`` is the JSON list (exec form) or ``[text]`` (shell form, ``shell_form``)."""

    _json = ("cmd", "shell_form")
    __slots__ = ("cmd", "shell_form")

    def _parse(self, node: Node) -> None:
        self.cmd = _cmdline(node)
        self.shell_form = not node.json


class RunInstruction(_CommandLine):
    """``RUN [--mount=...]... [--network=default|none|host] [--security=sandbox|insecure] cmd``.

    ``heredocs`` are the here-documents of a shell-form RUN; ``script()`` gives what the shell must run,
    ``inline_file()`` the heredoc to execute directly when it is a lone heredoc starting with ``#!``."""

    name = "RUN"
    _json = ("cmd", "shell_form", "mounts", "network", "security", "heredocs")
    __slots__ = ("mounts", "mount_specs", "network", "security", "heredocs")

    def _parse(self, node: Node) -> None:
        f = _flags(node.flags, {"mount": "strings", "network": "string", "security": "string"})
        super()._parse(node)
        if not self.cmd and not node.json:
            raise _Fail("RUN requires at least one argument")
        self.network = f.get("network", "default")
        if self.network not in ("default", "none", "host"):
            raise _Fail(f'invalid network mode "{self.network}"')
        self.security = f.get("security", "sandbox")
        if self.security not in ("sandbox", "insecure"):
            raise _Fail(f'security "{self.security}" is not valid')
        self.mount_specs: list[str] = f.get("mount", [])
        self.mounts = [parse_mount(s) for s in self.mount_specs]
        self.heredocs: list[Heredoc] = list(node.heredocs)

    def expand(self, env: Mapping[str, str]) -> RunInstruction:
        """Only the ``--mount`` values are expanded (the command is the shell's business)."""
        if not self.mount_specs:
            return self
        new = _clone(self)
        try:
            new.mounts = [parse_mount(s, lambda w: self._x(w, env)) for s in self.mount_specs]
        except MountError as e:
            raise self.error(str(e)) from None
        return new

    def script(self) -> str | None:
        """The text to pass to the shell (``SHELL`` + text) for shell form; None for exec form."""
        if not self.shell_form:
            return None
        text = self.cmd[0] if self.cmd else ""
        if not self.heredocs:
            return text
        if parse_heredoc_word(text) is not None:
            return self.heredocs[0].data  # RUN <<EOF: the body is the script
        return text + "".join("\n" + h.data + h.name for h in self.heredocs)

    def inline_file(self) -> Heredoc | None:
        """``RUN <<EOF`` whose body starts with ``#!``: run that file directly (BuildKit mounts it read-only at
        ``/dev/pipes/<name>`` with mode 0755 and executes it without the shell)."""
        if self.shell_form and len(self.cmd) == 1 and self.heredocs and parse_heredoc_word(self.cmd[0]) \
                and self.heredocs[0].data.startswith("#!"):
            return self.heredocs[0]
        return None


class CmdInstruction(_CommandLine):
    name = "CMD"
    __slots__ = ()

    def _parse(self, node: Node) -> None:
        _no_flags(node)
        super()._parse(node)


class EntrypointInstruction(_CommandLine):
    """``ENTRYPOINT []`` (empty ``cmd``) resets the entrypoint."""

    name = "ENTRYPOINT"
    __slots__ = ()

    def _parse(self, node: Node) -> None:
        _no_flags(node)
        super()._parse(node)


class _KeyValues(Instruction):
    """ENV/LABEL: ``pairs`` is a list of (key, value) as written (``ENV a b c`` gives ("a", "b c"))."""

    expands = True
    _json = ("pairs",)
    __slots__ = ("pairs",)

    def _parse(self, node: Node) -> None:
        _no_flags(node)
        args = node.args
        if not args:
            raise _Fail(f"{self.name} requires at least one argument")
        if len(args) % 3:
            raise _Fail(f"Bad input to {self.name}, too many arguments")
        self.pairs: list[tuple[str, str]] = []
        for i in range(0, len(args), 3):
            if not args[i]:
                raise _Fail(f"{self.name} names can not be blank")
            self.pairs.append((args[i], args[i + 1]))

    def expand(self, env: Mapping[str, str]) -> _KeyValues:
        new = _clone(self)
        new.pairs = [(self._x(k, env), self._x(v, env)) for k, v in self.pairs]
        return new

    def to_json(self) -> dict:
        d = super().to_json()
        d["pairs"] = [[k, v] for k, v in self.pairs]
        return d


class EnvInstruction(_KeyValues):
    """``ENV a=b c=d`` or legacy ``ENV a b``. Each pair sees the values set by the pairs before it only in the
    next instruction (BuildKit expands the whole instruction with the environment in effect before it)."""

    name = "ENV"
    __slots__ = ()


class LabelInstruction(_KeyValues):
    name = "LABEL"
    __slots__ = ()


class ArgInstruction(Instruction):
    """``ARG name[=default] ...``: ``args`` is a list of (name, default or None), as written."""

    name = "ARG"
    expands = True
    _json = ("args",)
    __slots__ = ("args",)

    def _parse(self, node: Node) -> None:
        _no_flags(node)
        _at_least_one(node, "ARG")
        self.args: list[tuple[str, str | None]] = []
        for word in node.args:
            key, has_value, value = word.partition("=")
            if has_value and not key:
                raise _Fail("ARG names can not be blank")
            self.args.append((key, value if has_value else None))

    def expand(self, env: Mapping[str, str]) -> ArgInstruction:
        new = _clone(self)
        new.args = [(self._x(k, env), None if v is None else self._x(v, env)) for k, v in self.args]
        return new

    def to_json(self) -> dict:
        d = super().to_json()
        d["args"] = [[k, v] for k, v in self.args]
        return d


class ExposeInstruction(Instruction):
    """``EXPOSE 80 443/tcp 53/udp``: ``ports`` as written; expansion may split one word into several."""

    name = "EXPOSE"
    expands = True
    _json = ("ports",)
    __slots__ = ("ports",)

    def _parse(self, node: Node) -> None:
        _at_least_one(node, "EXPOSE")
        _no_flags(node)
        self.ports = list(node.args)

    def expand(self, env: Mapping[str, str]) -> ExposeInstruction:
        from dockyard.build.shell import ExpansionError, expand_words

        new = _clone(self)
        try:
            new.ports = [w for p in self.ports for w in expand_words(p, env, self.escape)]
        except ExpansionError as e:
            raise self.error(str(e)) from None
        return new


class _OneWord(Instruction):
    """WORKDIR/USER/STOPSIGNAL/MAINTAINER: the rest of the line as one value."""

    _attr = "value"
    __slots__ = ()

    def _parse(self, node: Node) -> None:
        value = _exactly_one(node, self.name)
        if self.name != "STOPSIGNAL":  # BuildKit accepts flags-looking words there; nothing else has flags
            _no_flags(node)
        setattr(self, self._attr, value)

    def expand(self, env: Mapping[str, str]) -> Instruction:
        if not self.expands:
            return self
        new = _clone(self)
        setattr(new, self._attr, self._x(getattr(self, self._attr), env))
        return new


class WorkdirInstruction(_OneWord):
    name = "WORKDIR"
    expands = True
    _attr = "path"
    _json = ("path",)
    __slots__ = ("path",)


class UserInstruction(_OneWord):
    name = "USER"
    expands = True
    _attr = "user"
    _json = ("user",)
    __slots__ = ("user",)


class StopSignalInstruction(_OneWord):
    name = "STOPSIGNAL"
    expands = True
    _attr = "signal"
    _json = ("signal",)
    __slots__ = ("signal",)


class MaintainerInstruction(_OneWord):
    """Deprecated; sets the image's ``author``."""

    name = "MAINTAINER"
    _attr = "maintainer"
    _json = ("maintainer",)
    __slots__ = ("maintainer",)


class CopyInstruction(Instruction):
    """``COPY [--from=] [--chown=] [--chmod=] [--link] [--parents] [--exclude=]... src... dest`` (or JSON form).

    ``sources`` are the path sources, ``contents`` the heredoc sources (``COPY <<EOF /file``: the heredoc's
    ``name`` is the file name, ``data`` its body, ``expand`` whether the body is expanded). ``from_`` is a stage
    name, stage index or image reference (never expanded, as in BuildKit)."""

    name = "COPY"
    expands = True
    _spec = {"chown": "string", "chmod": "string", "link": "bool", "exclude": "strings", "from": "string",
             "parents": "bool"}
    _json = ("sources", "dest", "contents", "from_", "chown", "chmod", "link", "parents", "excludes")
    __slots__ = ("sources", "dest", "contents", "from_", "chown", "chmod", "link", "parents", "excludes", "json")

    def _parse(self, node: Node) -> None:
        if len(node.args) < 2:
            raise _Fail(f"{self.name} requires at least two arguments, but only one was provided. Destination "
                        "could not be determined")
        f = _flags(node.flags, self._spec)
        self.json = node.json
        self.from_ = f.get("from")
        self.chown = f.get("chown")
        self.chmod = f.get("chmod")
        self.link = f.get("link", False)
        self.parents = f.get("parents", False)
        self.excludes = f.get("exclude", [])
        self.dest = node.args[-1]
        if parse_heredoc_word(self.dest) is not None:
            raise _Fail(f"{self.name} cannot accept a heredoc as a destination")
        docs = {h.name: h for h in node.heredocs}
        self.sources: list[str] = []
        self.contents: list[Heredoc] = []
        for src in node.args[:-1]:
            h = parse_heredoc_word(src) if not node.json else None
            if h is None:
                self.sources.append(src)
            else:
                body = docs.get(h.name)
                data = body.data if body is not None else ""
                self.contents.append(Heredoc(h.name, chomp_heredoc(data) if h.chomp else data, h.expand,
                                             h.chomp, h.fd))
        if self.from_ is not None:
            from dockyard.build.shell import ExpansionError, Lexer

            try:
                same = Lexer(self.escape).process_word(self.from_, {}) == self.from_
            except ExpansionError:
                same = False
            if not same:
                raise _Fail("variable expansion is not supported for --from, define a new stage with FROM using "
                            "ARG from global scope as a workaround")

    def expand(self, env: Mapping[str, str]) -> CopyInstruction:
        from dockyard.build.shell import ExpansionError, expand_heredoc

        new = _clone(self)
        new.sources = [self._x(s, env) for s in self.sources]
        new.dest = self._x(self.dest, env)
        new.chown = None if self.chown is None else self._x(self.chown, env)
        new.chmod = None if self.chmod is None else self._x(self.chmod, env)
        new.excludes = [self._x(e, env) for e in self.excludes]
        contents = []
        for h in self.contents:
            if h.expand:
                try:
                    h = Heredoc(h.name, expand_heredoc(h.data, env), h.expand, h.chomp, h.fd)
                except ExpansionError as e:
                    raise self.error(str(e)) from None
            contents.append(h)
        new.contents = contents
        return new


class AddInstruction(CopyInstruction):
    """``ADD`` = COPY's fields (``from_`` always None) + ``checksum``, ``keep_git_dir`` and ``unpack`` (None when
    not given: the builder's default applies)."""

    name = "ADD"
    _spec = {"chown": "string", "chmod": "string", "link": "bool", "exclude": "strings", "checksum": "string",
             "keep-git-dir": "bool", "unpack": "bool"}
    _json = CopyInstruction._json + ("checksum", "keep_git_dir", "unpack")
    __slots__ = ("checksum", "keep_git_dir", "unpack")

    def _parse(self, node: Node) -> None:
        super()._parse(node)
        f = _flags(node.flags, self._spec)
        self.checksum = f.get("checksum")
        self.keep_git_dir = f.get("keep-git-dir")
        self.unpack = f.get("unpack")

    def expand(self, env: Mapping[str, str]) -> AddInstruction:
        new = super().expand(env)
        if self.checksum is not None:
            new.checksum = self._x(self.checksum, env)
        return new  # type: ignore[return-value]


class VolumeInstruction(Instruction):
    """``VOLUME /a /b`` or ``VOLUME ["/a", "/b"]``."""

    name = "VOLUME"
    expands = True
    _json = ("paths",)
    __slots__ = ("paths",)

    def _parse(self, node: Node) -> None:
        _at_least_one(node, "VOLUME")
        _no_flags(node)
        self.paths = []
        for v in node.args:
            v = v.strip()
            if not v:
                raise _Fail("VOLUME specified can not be an empty string")
            self.paths.append(v)

    def expand(self, env: Mapping[str, str]) -> VolumeInstruction:
        new = _clone(self)
        new.paths = [self._x(p, env) for p in self.paths]
        return new


class ShellInstruction(Instruction):
    """``SHELL ["executable", "parameters"]`` (JSON form only)."""

    name = "SHELL"
    _json = ("shell",)
    __slots__ = ("shell",)

    def _parse(self, node: Node) -> None:
        _no_flags(node)
        if not node.args:
            raise _Fail("SHELL requires at least one argument")
        if not node.json:
            raise _Fail("SHELL requires the arguments to be in JSON form")
        self.shell = list(node.args)


def _duration_ns(text: str) -> int:
    """Go's time.ParseDuration ("1m30s", "500ms", "1.5h") in nanoseconds."""
    import re

    units = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
             "h": 3600 * 10**9}
    s = text
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise _Fail(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    rx = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)?")
    while pos < len(s):
        m = rx.match(s, pos)
        if not m:
            raise _Fail(f'time: invalid duration "{text}"')
        if m.group(2) is None:
            raise _Fail(f'time: missing unit in duration "{text}"')
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    return sign * int(round(total))


class HealthcheckInstruction(Instruction):
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=] [--timeout=] [--start-period=] [--start-interval=]
    [--retries=] CMD cmd``. ``test`` is Docker's config form: ``["NONE"]``, ``["CMD", args...]`` (exec form) or
    ``["CMD-SHELL", "text"]``. Durations are nanoseconds (0 = not set: the default); ``retries`` 0 = default."""

    name = "HEALTHCHECK"
    _json = ("test", "interval", "timeout", "start_period", "start_interval", "retries")
    __slots__ = ("test", "interval", "timeout", "start_period", "start_interval", "retries")

    def _parse(self, node: Node) -> None:
        _at_least_one(node, "HEALTHCHECK")
        typ = node.args[0].upper()
        args = node.args[1:]
        self.interval = self.timeout = self.start_period = self.start_interval = self.retries = 0
        if typ == "NONE":
            if args:
                raise _Fail("HEALTHCHECK NONE takes no arguments")
            self.test = ["NONE"]
            return
        f = _flags(node.flags, {"interval": "string", "timeout": "string", "start-period": "string",
                                "start-interval": "string", "retries": "string"})
        if typ != "CMD":
            raise _Fail(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
        if node.json:
            cmd = list(args)
        else:
            cmd = [" ".join(args)] if args else []
        if not cmd:
            raise _Fail("Missing command after HEALTHCHECK CMD")
        self.test = (["CMD"] if node.json else ["CMD-SHELL"]) + cmd
        for flag in ("interval", "timeout", "start-period", "start-interval"):
            value = f.get(flag, "")
            ns = _duration_ns(value) if value else 0
            if ns != 0 and ns < 10**6:
                raise _Fail(f'Interval "{flag}" cannot be less than 1ms')
            setattr(self, flag.replace("-", "_"), ns)
        retries = f.get("retries", "")
        if retries:
            try:
                self.retries = int(retries, 10)
            except ValueError:
                raise _Fail(f'strconv.ParseInt: parsing "{retries}": invalid syntax') from None
            if self.retries < 0:
                raise _Fail(f"--retries cannot be negative ({self.retries})")


class OnbuildInstruction(Instruction):
    """``ONBUILD <instruction>``: ``expression`` is the trigger text stored in the image config (heredocs
    appended), ``trigger`` the parsed instruction (checked now, run when the image is used as a base)."""

    name = "ONBUILD"
    _json = ("expression", "trigger")
    __slots__ = ("expression", "trigger")

    def _parse(self, node: Node) -> None:
        import re

        if node.child is None:
            raise _Fail("ONBUILD requires at least one argument")
        _no_flags(node)
        trig = node.child.name.upper()
        if trig == "ONBUILD":
            raise _Fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trig in ("MAINTAINER", "FROM"):
            raise _Fail(f"{trig} isn't allowed as an ONBUILD trigger")
        expr = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
        expr += "".join("\n" + h.data + h.name for h in node.heredocs)
        self.expression = expr.strip() if not node.heredocs else expr.lstrip()
        node.child.heredocs = node.heredocs
        self.trigger = _make(node.child, self.escape, self.filename)


INSTRUCTIONS: dict[str, type[Instruction]] = {
    c.name.lower(): c for c in (
        FromInstruction, RunInstruction, CmdInstruction, EntrypointInstruction, EnvInstruction, ArgInstruction,
        LabelInstruction, ExposeInstruction, WorkdirInstruction, CopyInstruction, AddInstruction,
        UserInstruction, VolumeInstruction, ShellInstruction, StopSignalInstruction, HealthcheckInstruction,
        OnbuildInstruction, MaintainerInstruction)
}
"""Keyword (lower case) -> class."""

EXPANDING = frozenset(name.upper() for name, cls in INSTRUCTIONS.items() if cls.expands)
"""Instructions whose words the builder expands (RUN only in its --mount values)."""


def _make(node: Node, escape: str, filename: str) -> Instruction:
    cls = INSTRUCTIONS.get(node.name)
    if cls is None:
        raise _Fail(f"unknown instruction: {node.keyword}")
    instr = object.__new__(cls)
    instr._init(node, escape, filename)
    instr._parse(node)  # type: ignore[attr-defined]
    return instr


def make_instruction(node: Node, escape: str = "\\", filename: str = "Dockerfile") -> Instruction:
    """Check one parser node and return its typed instruction; DockerfileError at the node's line if invalid."""
    try:
        return _make(node, escape, filename)
    except _FAILS as e:
        raise DockerfileError(filename, node.line, str(e)) from None
