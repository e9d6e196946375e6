"""Unpacking tar archives safely: no member climbs out, links or unpacks more than the caps allow.

Before anything is written, the member headers are read (streaming: it stops at the first member
over a cap) and checked: no absolute paths, no `..`, no links; the unpacked total (each member
counted at least one 4 KiB block) at most `BENCH_MAX_EXTRACT_BYTES` (64 GiB) and at most the
free space at the destination; and once the total passes RATIO_FLOOR_BYTES (64 MiB), at most
`BENCH_MAX_EXTRACT_RATIO` (100) times the archive's own size: photos do not compress, a gzip bomb
unpacks to about 1000 times its size. Members are unpacked with tarfile's `data` filter. An
extraction that fails (or is interrupted) removes every file and folder it created.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.io import disk_full_error
from bench.core.limits import MAX_EXTRACT_BYTES, MAX_EXTRACT_RATIO, Limit
from bench.core.values import human_bytes

RATIO_FLOOR_BYTES = 64 << 20
BLOCK_BYTES = 4096


def safe_extract(archive: Path, dest: Path) -> Path:
    """Unpack a tar archive into dest after checking every member and the caps (see module doc)."""
    try:
        with tarfile.open(archive) as tar:
            members = checked_members(archive, tar, dest)
            _extract(archive, tar, members, dest)
    except tarfile.FilterError as exc:
        raise BenchError(f"{archive}: member refused ({exc})") from None
    except tarfile.TarError as exc:
        raise BenchError(f"{archive}: not a readable tar archive ({exc})") from None
    return dest


def checked_members(archive: Path, tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """The archive's members, each checked, with the unpacked total within every cap."""
    packed = max(1, archive.stat().st_size)
    max_bytes, max_ratio = MAX_EXTRACT_BYTES.value(), MAX_EXTRACT_RATIO.value()
    members, total = [], 0
    for member in tar:
        check_member(archive, member)
        total += max(BLOCK_BYTES, unpacked_size(member))
        if total > max_bytes:
            _refuse(archive, f"unpacks to more than {human_bytes(max_bytes)}", MAX_EXTRACT_BYTES)
        if total > RATIO_FLOOR_BYTES and total / packed > max_ratio:
            ratio = f"{human_bytes(total)} from {human_bytes(packed)}, ratio over {max_ratio:g}"
            _refuse(archive, f"unpacks to at least {ratio}", MAX_EXTRACT_RATIO)
        members.append(member)
    free = _free_bytes(dest)
    if free is not None and total > free:
        raise BenchError(
            f"{archive}: unpacks to {human_bytes(total)} but only {human_bytes(free)} are free "
            f"at {dest}; refused before writing"
        )
    return members


def _refuse(archive: Path, why: str, limit: Limit) -> None:
    """Refuse an archive over a cap, saying how to raise the cap."""
    raise BenchError(
        f"{archive}: {why}; refused before writing (a decompression bomb?). "
        f"If you trust it, raise the cap: {limit.variable}=<{limit.what}>"
    )


def unpacked_size(member: tarfile.TarInfo) -> int:
    """Bytes a member writes when unpacked (a sparse file's full size)."""
    return int(getattr(member, "origsize", None) or member.size) if member.isfile() else 0


def check_member(archive: Path, member: tarfile.TarInfo) -> None:
    """Raise BenchError for an archive member that would escape the destination or link."""
    name = member.name
    if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in Path(name).parts[0]:
        raise BenchError(f"{archive}: unsafe member {name!r} (absolute path or '..'); refused")
    if member.issym() or member.islnk():
        raise BenchError(f"{archive}: link member {name!r} refused")


def _free_bytes(dest: Path) -> int | None:
    """Free bytes where dest is (or would be) created."""
    folder = dest
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _extract(
    archive: Path, tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path
) -> None:
    """Unpack the members; on any failure remove what this call created, then re-raise."""
    created = _new_paths(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for member in members:
            created += _new_paths(dest / member.name)
            tar.extract(member, dest, filter="data")
    except BaseException as exc:
        remove_created(created)
        full = disk_full_error(dest / "x", exc) if isinstance(exc, Exception) else None
        if full is not None:
            raise BenchError(
                f"{archive}: no space left unpacking into {dest} ({full.reason}); "
                "the partial extraction was removed"
            ) from None
        raise


def _new_paths(target: Path) -> list[Path]:
    """`target` and its ancestors that do not exist yet, outermost first."""
    new = []
    path = target
    while path != path.parent and not path.exists():
        new.append(path)
        path = path.parent
    return new[::-1]


def remove_created(paths: list[Path]) -> None:
    """Remove files and (now empty) folders, innermost first; what cannot go is left."""
    for path in reversed(paths):
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        except OSError:
            continue
