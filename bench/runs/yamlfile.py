"""Suite files as YAML: parsed with safe_load, every key path mapped to its line for errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.core.errors import BenchError

KeyPath = tuple[str | int, ...]


class Locator:
    """Turns a key path into `file:line: key.path` using the YAML node tree."""

    def __init__(self, path: Path, root: yaml.Node | None) -> None:
        self.path = path
        self.lines: dict[KeyPath, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, key_path: KeyPath) -> None:
        """Record the line of every mapping value and sequence item."""
        self.lines[key_path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                self._walk(value_node, (*key_path, str(key_node.value)))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*key_path, index))

    def error(self, key_path: KeyPath, message: str) -> BenchError:
        """A BenchError `file:line: key.path: message` (the nearest known line)."""
        line = next(
            (
                self.lines[key_path[:n]]
                for n in range(len(key_path), -1, -1)
                if key_path[:n] in self.lines
            ),
            None,
        )
        where = f"{self.path}:{line}" if line else str(self.path)
        return BenchError(f"{where}: {format_key_path(key_path) or '(top level)'}: {message}")


def format_key_path(key_path: KeyPath) -> str:
    """`cases[2].models[0]` style text of a key path."""
    text = ""
    for part in key_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def type_name(value: Any) -> str:
    """A short type name for error messages."""
    return "null" if value is None else type(value).__name__


def check_keys(loc: Locator, key_path: KeyPath, mapping: Any, allowed: tuple[str, ...]) -> dict:
    """The mapping itself, after checking it is a mapping with only `allowed` keys."""
    if not isinstance(mapping, dict):
        raise loc.error(key_path, f"expected a mapping, got {type_name(mapping)} {mapping!r}")
    for key in mapping:
        if key not in allowed:
            raise loc.error(
                (*key_path, str(key)), f"unknown key {key!r}; valid keys: {', '.join(allowed)}"
            )
    return mapping


def check_text(loc: Locator, key_path: KeyPath, value: Any, required: bool = False) -> str:
    """A string value (or '' when absent and not required)."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise loc.error(key_path, f"expected a non-empty string, got {type_name(value)} {value!r}")
    return value.strip()


def read_yaml(path: Path) -> tuple[Any, Locator]:
    """Parse a suite file with yaml.safe_load and map its key paths to lines."""
    if not path.is_file():
        raise BenchError(f"suite file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BenchError(f"{path}{line}: not valid YAML ({problem})") from None
    return data, Locator(path, root)
