"""dockyard: a daemonless, Docker-compatible container engine.

Layers (a module imports only layers below it):
    cli/ api/ compose/  ->  engine/  ->  build/  ->  images/ volumes/ network/
    ->  content/ snapshots/ runtime/ state/  ->  oci/ errors ids
"""

__version__ = "0.1.0"
