"""``COPY --chmod``: octal (``755``) or chmod(1) symbolic notation (``u=rwX,go=rX``, ``+x``, ``g=u``).

``parse_chmod(spec)`` returns a function ``(current_mode, is_dir) -> new_mode`` applied to each copied entry, or
raises ValueError with what is wrong. Symbolic clauses are ``[ugoa]*([-+=]([rwxXst]*|[ugo]))+`` separated by
commas, applied in order; no ``who`` means ``a`` (BuildKit applies no umask); ``X`` is ``x`` for directories and
for files that already have an execute bit.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["parse_chmod"]

_WHO = {"u": 0o4700, "g": 0o2070, "o": 0o1007}  # the rwx bits of each class with its setid/sticky bit
_SHIFT = {"u": 6, "g": 3, "o": 0}


def parse_chmod(spec: str) -> Callable[[int, bool], int]:
    if spec and all(c in "01234567" for c in spec):
        value = int(spec, 8)
        if value > 0o7777:
            raise ValueError("invalid octal mode")
        return lambda mode, is_dir: value
    clauses = [_parse_clause(c) for c in spec.split(",")]

    def apply(mode: int, is_dir: bool) -> int:
        mode &= 0o7777
        for who, ops in clauses:
            for op, perms in ops:
                mode = _apply(mode, is_dir, who, op, perms)
        return mode

    return apply


def _parse_clause(clause: str) -> tuple[str, list[tuple[str, str]]]:
    i = 0
    while i < len(clause) and clause[i] in "ugoa":
        i += 1
    who = clause[:i].replace("a", "ugo") or "ugo"
    ops: list[tuple[str, str]] = []
    if i == len(clause):
        raise ValueError(f"invalid mode {clause!r}: expected an operator (+, - or =)")
    while i < len(clause):
        op = clause[i]
        if op not in "+-=":
            raise ValueError(f"invalid mode {clause!r}: unexpected {op!r}")
        j = i + 1
        while j < len(clause) and clause[j] not in "+-=":
            j += 1
        perms = clause[i + 1:j]
        if not (all(c in "rwxXst" for c in perms) or (len(perms) == 1 and perms in "ugo")):
            raise ValueError(f"invalid mode {clause!r}: unknown permission in {perms!r}")
        ops.append((op, perms))
        i = j
    return who, ops


def _apply(mode: int, is_dir: bool, who: str, op: str, perms: str) -> int:
    if perms and perms in "ugo":  # copy another class's rwx
        rwx = (mode >> _SHIFT[perms]) & 7
        bits = sum(rwx << _SHIFT[w] for w in set(who))
    else:
        rwx = 0
        for c in perms:
            rwx |= {"r": 4, "w": 2, "x": 1}.get(c, 0)
            if c == "X" and (is_dir or mode & 0o111):
                rwx |= 1
        bits = sum(rwx << _SHIFT[w] for w in set(who))
        if "s" in perms:
            bits |= (0o4000 if "u" in who else 0) | (0o2000 if "g" in who else 0)
        if "t" in perms:
            bits |= 0o1000
    if op == "+":
        return mode | bits
    if op == "-":
        return mode & ~bits
    clear = sum(_WHO[w] for w in set(who))
    return (mode & ~clear) | bits
