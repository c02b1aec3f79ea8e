"""Regular expressions compiled on first use.

Importing ``re`` and compiling a pattern costs milliseconds of every short command on these machines; a module on
the path of ``run``, ``exec`` or ``ps`` keeps its rarely needed patterns as ``lazyre.Pattern`` (flags inline:
``(?i)``, ``(?a)``) and the ones every command needs as hand-written checks. tests/unit/test_import_budget.py
fails when ``re`` comes back on those paths.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any


class Pattern:
    """``re.compile(pattern)``'s methods (``match``, ``fullmatch``, ``search``, ``sub``...), compiled on first use."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            import re

            self._compiled = re.compile(self.pattern)
        return getattr(self._compiled, name)
