"""Build hook: dockyard's three small C helpers are compiled into the package (``dockyard/_libexec``), so that a
plain ``pip install`` (or a wheel, pipx, uv) gives a working engine. See ``dockyard.libexec`` for the lookup and
docs/decisions.md for why they are C. The wheel is a platform wheel (it carries Linux binaries)."""

from __future__ import annotations

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
# name: (source, static). The exec stub is copied into containers' processes and the init runs inside
# containers: both static (musl when available). The monitor loop runs on the host: dynamic is fine.
HELPERS = {
    "dockyard-exec": ("images/exec/exec.c", True),
    "dockyard-init": ("images/init/init.c", True),
    "dockyard-monitor": ("src/dockyard/engine/monitor_loop.c", False),
}


def compile_helpers(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    musl = shutil.which("musl-gcc")
    if not cc:
        raise SystemExit("dockyard needs a C compiler to build its helpers (Debian: apt-get install gcc libc6-dev)")
    for name, (src, static) in HELPERS.items():
        args = [musl or cc, "-static", "-Os", "-s"] if static else [cc, "-O2"]
        target = os.path.join(out, name)
        subprocess.run([*args, "-Wall", "-o", target + ".tmp", os.path.join(HERE, src)], check=True)
        os.replace(target + ".tmp", target)


class BuildPyWithHelpers(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install finds them in the venv (scripts/build-helpers.sh)
            compile_helpers(os.path.join(self.build_lib, "dockyard", "_libexec"))


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:  # a platform wheel: it carries binaries
        return True


setup(cmdclass={"build_py": BuildPyWithHelpers}, distclass=BinaryDistribution)
