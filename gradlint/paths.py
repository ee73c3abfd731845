"""Paths in reports, spelled as users spell them on the command line."""

from __future__ import annotations

import os


def display_path(path: str) -> str:
    """Relative to the working directory when below it, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
