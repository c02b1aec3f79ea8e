"""Compose: multi-container apps from a compose.yaml, on the engine interface (an edge, beside api/).

``loader.load`` reads, interpolates, validates (compose-spec.json, the Compose specification's schema, kept with
its licence) and merges the files into a plain project dict; ``project`` turns it into engine calls (``up``,
``down``, ``stop``...). ``cli/compose.py`` only parses and prints.
"""
