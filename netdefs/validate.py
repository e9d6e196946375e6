"""Checks for builder keyword values: one-line ValueErrors naming the field, value and choices."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

MAX_SHOWN_CHARS = 80


def shown(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """`repr(value)` for messages, its middle cut out when longer than `limit` characters."""
    text = repr(value)
    if len(text) <= limit:
        return text
    keep = (limit - 20) // 2
    return f"{text[:keep]}...({len(text)} chars)...{text[-keep:]}"


def positive_int(field: str, value: Any) -> int:
    """`value` if it is an int > 0, else ValueError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"invalid {field}={shown(value)}; allowed: a positive integer")
    return value


def positive_number(field: str, value: Any, example: str = "1.0") -> float:
    """`value` as a float if it is a finite number > 0, else ValueError naming `field`."""
    real = isinstance(value, int | float) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"invalid {field}={shown(value)}; allowed: a finite positive number such as {example}"
        )
    return float(value)


def one_of(field: str, value: Any, allowed: Iterable[Any]) -> Any:
    """`value` if it is one of `allowed` (bools only match bools), else ValueError naming them."""
    choices = list(allowed)
    if not any(value == c and type(value) is type(c) for c in choices):
        listed = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)
        raise ValueError(f"invalid {field}={shown(value)}; allowed: {listed}")
    return value


def boolean(field: str, value: Any) -> bool:
    """`value` if it is a bool, else ValueError naming `field`."""
    return one_of(field, value, (True, False))


def divisible(field: str, value: int, divisor_field: str, divisor: int) -> None:
    """ValueError unless `value` is a multiple of `divisor`."""
    if value % divisor:
        raise ValueError(
            f"invalid {field}={value}: must be divisible by {divisor_field}={divisor}; "
            f"allowed: multiples of {divisor}"
        )


def head_options(num_classes: Any, include_top: Any) -> tuple[int, bool]:
    """The checked `num_classes` and `include_top` every network takes."""
    return positive_int("num_classes", num_classes), boolean("include_top", include_top)
