"""Paths in reports, spelled as users spell them on the command line."""

from __future__ import annotations

import os

import torch

_LIBRARY_DIRS = (
    os.path.dirname(os.path.abspath(torch.__file__)),   # torch: nn.Sequential, fx, ...
    os.path.dirname(os.path.abspath(__file__)),         # gradlint itself
)


def display_path(path: str) -> str:
    """Relative to the working directory when below it, else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def is_library_file(path: str) -> bool:
    """Code of torch or of gradlint (or no file at all, ``<stdin>``): never where a user's layer is."""
    if path.startswith("<"):
        return True
    apath = os.path.abspath(path)
    return any(os.path.commonpath([apath, d]) == d for d in _LIBRARY_DIRS)
