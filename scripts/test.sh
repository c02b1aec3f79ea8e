#!/usr/bin/env bash
# Run the whole test suite (unit, golden, integration, cli, end-to-end) as root on Debian 12.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"
cd "$here"
# pyflakes-level lint (undefined names, unused imports): cheap, and a failure here is a real bug
"$here/.venv/bin/ruff" check --quiet --select F src tests bench
# the layers of docs/architecture.md (import-linter contracts in pyproject.toml): a new upward import fails here
"$here/.venv/bin/lint-imports" --no-cache
exec "$here/.venv/bin/python" -m pytest "${@:-tests}"
