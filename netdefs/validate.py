"""Checks for builder keyword values: one-line ValueErrors naming the field, value and choices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def positive_int(field: str, value: Any) -> int:
    """`value` if it is an int > 0, else ValueError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"invalid {field}={value!r}; allowed: a positive integer")
    return value


def one_of(field: str, value: Any, allowed: Iterable[Any]) -> Any:
    """`value` if it is one of `allowed` (bools only match bools), else ValueError naming them."""
    choices = list(allowed)
    if not any(value == c and type(value) is type(c) for c in choices):
        listed = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)
        raise ValueError(f"invalid {field}={value!r}; allowed: {listed}")
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
