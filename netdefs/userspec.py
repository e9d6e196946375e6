"""A user's own networks: `path/to/file.py:Callable`, `package.module:Callable`, and imports.

Importing a user's file or module runs its code, as pytest does with test files: only name
files you trust. A file is imported once per modification time, with its own folder first on
`sys.path` (so it can import its neighbours); a module is imported with the current folder (or
the suite file's folder) first on `sys.path`. Any failure is one ValueError line naming the file
or module and the exception's first line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch

from netdefs.validate import shown

_LOADED: dict[tuple[str, int], ModuleType] = {}


def is_file_location(location: str) -> bool:
    """Whether the part before `:Callable` names a Python file rather than a module."""
    return location.endswith(".py") or "/" in location or "\\" in location


def is_module_location(location: str) -> bool:
    """Whether `location` can be a module path (`pkg.sub.module`)."""
    return bool(location) and all(part.isidentifier() for part in location.split("."))


def _first_line(exc: BaseException) -> str:
    """`Type: first line of the message` of an exception raised by a user's code."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@contextmanager
def path_first(folder: Path) -> Iterator[None]:
    """`folder` first on sys.path while the block runs (removed again after)."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


def load_file_module(path: Path) -> ModuleType:
    """Import a Python file (its code runs) once per modification time; ValueError if it fails."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} not found")
    key = (str(path), path.stat().st_mtime_ns)
    if key in _LOADED:
        return _LOADED[key]
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"netdefs_user_{path.stem if path.stem.isidentifier() else 'file'}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with path_first(path.parent), torch.device("cpu"):
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise ValueError(f"cannot import {path}: {_first_line(exc)}") from None
    _LOADED[key] = module
    return module


def import_module_named(name: str, base: Path | None = None) -> ModuleType:
    """Import a module by dotted name with `base` (default: the current folder) on sys.path."""
    if not is_module_location(name):
        raise ValueError(f"cannot import {shown(name)}: not a module name (e.g. mypkg.models)")
    try:
        with path_first(base or Path.cwd()), torch.device("cpu"):
            return importlib.import_module(name)
    except (Exception, SystemExit) as exc:
        raise ValueError(f"cannot import module {name!r}: {_first_line(exc)}") from None


def load_user_callable(target: str) -> Callable:
    """The class or factory that `file.py:Name` or `package.module:Name` names."""
    location, _, attr = target.rpartition(":")
    if is_file_location(location):
        module = load_file_module(Path(location))
    else:
        module = import_module_named(location)
    found = getattr(module, attr, None)
    if not callable(found):
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        listed = ", ".join(public[:12]) or "nothing callable"
        raise ValueError(f"{location} has no class or function {attr!r}; it defines: {listed}")
    return found


def import_user_modules(names: Iterable[str], base: Path | None = None) -> None:
    """Import each module or `.py` file (relative to `base`, default the current folder)."""
    folder = base or Path.cwd()
    for name in names:
        if is_file_location(name):
            load_file_module(folder / Path(name).expanduser())
        else:
            import_module_named(name, folder)


def resolve_file_spec(spec: str, base: Path) -> str:
    """A `file.py:Name...` spec with a relative file made absolute against `base`."""
    location, sep, rest = spec.partition(".py:")
    if not sep or Path(location + ".py").expanduser().is_absolute():
        return spec
    return f"{(base / (location + '.py')).resolve()}:{rest}"
