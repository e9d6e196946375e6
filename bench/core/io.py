"""Atomic file writes: a temporary file in the same folder, then `os.replace`.

A killed process leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_with(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp_path)` on a fresh temporary path, then move it onto `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to `path` atomically."""
    atomic_write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, payload: dict) -> None:
    """Write a JSON document atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def write_yaml(path: Path, payload: dict) -> None:
    """Write a YAML document atomically."""
    atomic_write_text(path, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))
