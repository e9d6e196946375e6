"""The write lock of a run folder: one writer at a time; a dead writer's lock is taken over.

An advisory `flock` on `<run folder>/.lock`, a file that names the holder (pid, host, start).
The kernel drops a flock when its process ends, however it ends (even SIGKILL), so a free flock
on a file that still names a holder was left by a dead process: it is taken over with a warning
naming that process. Where the file system offers no flock (some network mounts), the recorded
pid decides: a live pid on this host holds the lock, a dead one is stale; a holder on another
host is assumed alive.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.io import disk_full_error
from bench.runs.schema import RUN_LOCK


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a run folder's lock, as its lock file says."""

    pid: int | None
    host: str
    since: str

    def describe(self) -> str:
        """`pid 123 on host (since 2026-...)`."""
        who = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        return f"{who} on {self.host or 'an unknown host'} (since {self.since or 'unknown'})"

    def alive(self) -> bool:
        """Whether the holder may still run (a holder on another host is assumed to)."""
        if self.pid is None or self.host != socket.gethostname():
            return self.pid is not None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by someone else
            return True
        return True


def read_holder(fd: int) -> LockHolder | None:
    """The holder a lock file names (None when it names none)."""
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
        return LockHolder(int(data["pid"]), str(data["host"]), str(data["since"]))
    except (ValueError, KeyError, TypeError):  # cut while being written
        return LockHolder(None, "", "")


def _write_holder(fd: int) -> None:
    """Name this process as the holder."""
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode() + b"\n")


def _acquire(fd: int) -> bool:
    """Take the flock without waiting; without flock support, judge by the recorded pid."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # this file system has no flock
        holder = read_holder(fd)
        return holder is None or not holder.alive()
    return True


@contextmanager
def run_folder_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's write lock while the block runs; BenchError if another writer does."""
    path = Path(run_dir) / RUN_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BenchError(f"run folder {run_dir}: cannot open its lock ({exc.strerror})") from None
    held = False
    try:
        if not _acquire(fd):
            holder = read_holder(fd)
            raise BenchError(
                f"run folder {run_dir} is being written by "
                f"{holder.describe() if holder else 'another process'}; two writers would "
                "overwrite each other's rows: wait for it to end or use another folder"
            )
        held = True
        stale = read_holder(fd)
        if stale is not None:
            warnings.warn(
                f"run folder {run_dir}: took over the lock of {stale.describe()}, "
                "which ended without releasing it",
                stacklevel=3,
            )
        try:
            _write_holder(fd)
        except OSError as exc:
            raise disk_full_error(path, exc) or exc from None
        yield
    finally:
        if held:
            with suppress(OSError):
                os.ftruncate(fd, 0)  # released cleanly: the file names no holder
        os.close(fd)
