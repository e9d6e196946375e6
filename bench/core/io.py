"""Atomic file writes: a temporary file in the same folder, then `os.replace`.

A killed process leaves either the old file or the new one, never a torn one. A write that fails
removes its temporary file; one that fails for want of space (a full disk, a quota, a file-size
limit) raises `DiskFullError`, naming the file and its folder. Text that cannot be encoded as
UTF-8 (file names that are not UTF-8 arrive as surrogate escapes) is written backslash-escaped.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.core.errors import BenchError, first_line

TEMP_SUFFIX = ".tmp"
TEMP_NAME = re.compile(r"^\..+\.[^.]+\.tmp$")  # .<name>.<random>.tmp, as mkstemp makes them
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded", "File too large")
LOW_SPACE_BYTES = 1 << 20  # a failed write with less free space than this ran out of it


class DiskFullError(BenchError):
    """A write failed for want of space: a full disk, a quota or a file-size limit."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.folder, self.reason = path, path.parent, reason
        super().__init__(f"no space left to write {path.name} in {path.parent} ({reason})")


def no_space_reason(exc: BaseException | None) -> str | None:
    """Why `exc` (or an exception it was raised from) is a full disk; None when it is not."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return exc.reason
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return os.strerror(exc.errno)
        text = str(exc)
        for marker in NO_SPACE_TEXTS:
            if marker in text:
                return marker
        exc = exc.__cause__ or exc.__context__
    return None


def _free_bytes(folder: Path) -> int | None:
    """Free bytes on the file system holding `folder` (None when it cannot be asked)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(path: Path, exc: BaseException) -> DiskFullError | None:
    """A DiskFullError for a failed write of `path`, or None when space was not the cause."""
    reason = no_space_reason(exc)
    if reason is None:
        free = _free_bytes(path.parent)
        if free is None or free >= LOW_SPACE_BYTES:
            return None
        reason = f"{free} bytes free; {first_line(exc)}"
    return DiskFullError(path, reason)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_with(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp_path)` on a fresh temporary path, then move it onto `path` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise disk_full_error(path, exc) or exc from None
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    except Exception as exc:
        full = disk_full_error(path, exc)
        if full is not None:
            raise full from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def remove_temp_files(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in `folder`; return what was removed."""
    removed = []
    for path in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        if TEMP_NAME.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def escape_unencodable(text: str) -> str:
    """`text` itself when it encodes as UTF-8; else with the offending bytes as `\\xNN` escapes."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # a file name that is not UTF-8: surrogate escapes stand for its raw bytes
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to `path` atomically (as UTF-8; unencodable characters escaped)."""
    atomic_write_with(path, lambda tmp: tmp.write_text(escape_unencodable(text), encoding="utf-8"))


def write_json(path: Path, payload: dict) -> None:
    """Write a JSON document atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def write_yaml(path: Path, payload: dict) -> None:
    """Write a YAML document atomically."""
    atomic_write_text(path, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))
