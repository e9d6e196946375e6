"""Suite files as YAML: parsed with safe_load, every key path mapped to its line for errors.

A suite file is bounded before anything is built from it: at most MAX_SUITE_BYTES of UTF-8 text,
and a node tree that, with every alias expanded, has at most MAX_YAML_NODES nodes and
MAX_YAML_DEPTH levels (an alias bomb of a few lines expands to millions); recursive aliases and
nesting too deep to parse are refused too. Each refusal is one line naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bench.core.errors import BenchError

KeyPath = tuple[str | int, ...]
MAX_SUITE_BYTES = 1 << 20
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64
_QUOTED_OR_COMMENT = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"|(?:^|(?<=\s))#[^\n]*", re.M)
_BRACKETS = re.compile(r"[\[\]{}]")


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
    text = read_suite_text(path)
    if flow_depth(text) > MAX_YAML_DEPTH:  # PyYAML's scanner is quadratic in this depth
        raise BenchError(f"{path}: nested more than {MAX_YAML_DEPTH} levels deep; refused")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        check_node_tree(path, root)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BenchError(f"{path}{line}: not valid YAML ({problem})") from None
    except RecursionError:
        raise BenchError(f"{path}: nested too deeply to parse; refused") from None
    return data, Locator(path, root)


def read_suite_text(path: Path) -> str:
    """The file's text: BenchError unless it is a UTF-8 text file of at most MAX_SUITE_BYTES."""
    if not path.is_file():
        raise BenchError(f"suite file {str(path)!r} does not exist")
    size = path.stat().st_size
    if size > MAX_SUITE_BYTES:
        raise BenchError(
            f"{path}: {size} bytes; a suite file may hold at most {MAX_SUITE_BYTES} bytes"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BenchError(
            f"{path}: not a text file (byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            "is not UTF-8)"
        ) from None
    if "\x00" in text:
        raise BenchError(f"{path}: not a text file (a NUL byte at offset {text.index(chr(0))})")
    return text


def flow_depth(text: str) -> int:
    """The deepest nesting of `[` and `{` outside quoted strings and comments (about)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_QUOTED_OR_COMMENT.sub("", text)):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    return deepest


def _children(node: yaml.Node) -> list[yaml.Node]:
    """A node's direct children (mapping keys and values, sequence items)."""
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_node_tree(path: Path, root: yaml.Node | None) -> None:
    """BenchError when the tree, aliases expanded, is too big, too deep or recursive.

    Each distinct node is visited once (sizes of shared subtrees are remembered), so the check
    itself takes time in the file's size, not in what its aliases expand to.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, depth)
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = [sizes[id(kid)] for kid in _children(node)]
            size, depth = 1 + sum(k[0] for k in kids), 1 + max((k[1] for k in kids), default=0)
            sizes[key] = (size, depth)
            active.discard(key)
            _check_bounds(path, node, size, depth)
        elif key in active:
            raise BenchError(f"{path}:{node.start_mark.line + 1}: a recursive alias; refused")
        elif key not in sizes:
            active.add(key)
            stack.append((node, True))
            stack.extend((kid, False) for kid in _children(node))


def _check_bounds(path: Path, node: yaml.Node, size: int, depth: int) -> None:
    """Refuse a node whose expanded subtree passes MAX_YAML_NODES or MAX_YAML_DEPTH."""
    where = f"{path}:{node.start_mark.line + 1}"
    if size > MAX_YAML_NODES:
        raise BenchError(
            f"{where}: expands to more than {MAX_YAML_NODES} YAML nodes (aliases of aliases?); "
            "refused"
        )
    if depth > MAX_YAML_DEPTH:
        raise BenchError(f"{where}: nested more than {MAX_YAML_DEPTH} levels deep; refused")
