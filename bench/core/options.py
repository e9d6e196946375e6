"""Parsing of the options every command and suite shares: input shapes, dtypes, batch sizes."""

from __future__ import annotations

import re

import torch

from bench.errors import BenchError

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}

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
        raise BenchError(f"dtype {name!r} is not one of: {', '.join(DTYPES)}")
    return DTYPES[key]


def dtype_name(dtype: torch.dtype) -> str:
    """The canonical name of a dtype (float32, bfloat16, float16)."""
    return str(dtype).removeprefix("torch.")


def check_batch(batch: int) -> int:
    """Return batch if it is a positive int, else raise BenchError."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0:
        raise BenchError(f"batch {batch!r} must be a positive integer")
    return batch
