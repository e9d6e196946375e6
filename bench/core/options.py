"""The options every command and suite shares: shapes, dtypes, batch sizes, devices, threads."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from bench.core.choices import DEVICES, DTYPE_ALIASES, DTYPE_NAMES, Dtype
from bench.core.errors import BenchError

DTYPES: dict[str, torch.dtype] = {
    Dtype.float32: torch.float32,
    Dtype.bfloat16: torch.bfloat16,
    Dtype.float16: torch.float16,
}
DTYPES.update({alias: DTYPES[name] for alias, name in DTYPE_ALIASES.items()})

_SHAPE = re.compile(r"^\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*$")


def parse_input_shape(text: str | list | tuple) -> tuple[int, int, int]:
    """Turn `CxHxW` (or a 3-item list) into a tuple of three positive ints."""
    if isinstance(text, list | tuple):
        values = tuple(text)
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        ok = len(values) == 3 and ints
    else:
        match = _SHAPE.match(str(text))
        ok = match is not None
        values = tuple(int(v) for v in match.groups()) if match else ()
    if not ok or min(values) <= 0:
        raise BenchError(f"input {text!r} is not a shape CxHxW of positive ints (e.g. 3x224x224)")
    return values  # type: ignore[return-value]


def format_input_shape(shape: tuple[int, ...]) -> str:
    """Write a shape as `CxHxW`."""
    return "x".join(str(int(v)) for v in shape)


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """Map a dtype name (float32, bfloat16, float16 or fp32/bf16/fp16) to a torch.dtype."""
    if isinstance(name, torch.dtype):
        return name
    key = str(name).strip().lower().removeprefix("torch.")
    if key not in DTYPES:
        raise BenchError(f"dtype {name!r} is not one of: {', '.join(DTYPE_NAMES)}")
    return DTYPES[key]


def dtype_name(dtype: torch.dtype) -> str:
    """The canonical name of a dtype (float32, bfloat16, float16, ...)."""
    return str(dtype).removeprefix("torch.")


def check_supported_dtype(dtype: torch.dtype) -> str:
    """The dtype's name if timing supports it, else BenchError listing the choices."""
    name = dtype_name(dtype)
    if name not in DTYPES:
        choices = ", ".join(member.value for member in Dtype)
        raise BenchError(f"unsupported dtype {dtype}; choose one of {choices}")
    return name


def check_batch(batch: int) -> int:
    """Return batch if it is a positive int, else raise BenchError."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
        raise BenchError(f"batch {batch!r} must be a positive integer")
    return batch


def auto_device() -> str:
    """What `auto` means on this machine: cuda when CUDA is available, else cpu."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str) -> str:
    """Map cpu|cuda|auto to a concrete device; BenchError when CUDA is asked for and absent."""
    device = str(device)
    if device not in DEVICES:
        raise BenchError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return auto_device()
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchError("device 'cuda' requested but CUDA is not available on this machine")
    return device


@contextmanager
def fixed_threads(threads: int | None) -> Iterator[int]:
    """Set torch's intra-op thread count for the block (restored afterwards); yield it."""
    previous = torch.get_num_threads()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0:
            raise BenchError(f"threads must be a positive integer, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on (all CPUs where affinity is not supported)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def parse_cpu_list(text: str) -> list[int]:
    """`0,2-3` -> [0, 2, 3]: CPUs this process may use; BenchError naming the bad part."""
    allowed = allowed_cpus()
    choices = _format_cpu_list(sorted(allowed))
    cpus: set[int] = set()
    for part in str(text).split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            first, last = -1, -2
        if first < 0 or last < first:
            raise BenchError(f"--cpus {text!r}: {part.strip()!r} is not a CPU or a range A-B")
        cpus.update(range(first, last + 1))
    outside = sorted(cpus - allowed)
    if outside:
        raise BenchError(f"--cpus {text!r}: CPU {outside[0]} is not available here ({choices})")
    return sorted(cpus)


def _format_cpu_list(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    spans: list[list[int]] = []
    for cpu in cpus:
        if spans and cpu == spans[-1][1] + 1:
            spans[-1][1] = cpu
        else:
            spans.append([cpu, cpu])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)


def pin_cpus(cpus: list[int]) -> None:
    """Pin this process and every thread it already has to `cpus` (new threads inherit it)."""
    if not hasattr(os, "sched_setaffinity"):
        raise BenchError("--cpus: this system cannot pin a process to CPUs")
    tasks = Path("/proc/self/task")
    tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            continue  # the thread ended meanwhile
