#!/usr/bin/env bash
# Install dockyard on this machine (Debian 12, root) and say hello.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"
ln -sf "$here/.venv/bin/dockyard" /usr/local/bin/dockyard
"$here/scripts/mkimage-hello-world.sh"
dockyard run hello-world
