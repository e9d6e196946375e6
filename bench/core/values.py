"""Whether a cell of a result row holds a value (CSV gives NaN, 'nan', '' or None for missing), and
counts and byte sizes as short text.

Free of pandas and numpy on purpose: the CLI's number formatting uses it before they load.
"""

from __future__ import annotations

import math
import sys
from typing import Any

COUNT_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))
BYTE_PREFIXES = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def is_missing(value: Any) -> bool:
    """True for None, NaN, inf, pandas NA, blank strings and strings naming NaN, inf or none."""
    pandas = sys.modules.get("pandas")  # a pandas NA can only exist once pandas is loaded
    if value is None or (pandas is not None and value is pandas.NA):
        return True
    if isinstance(value, str) and value.strip().lower() in ("", "none", "null"):
        return True
    try:  # also catches the strings 'nan', 'inf', 'Infinity'
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def as_float(value: Any) -> float | None:
    """The value as a finite float; None when missing, infinite or not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _three_digits(value: float) -> str:
    """About three significant digits, never in exponent notation (1016, 97.5, 4.09)."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def human_count(value: float) -> str:
    """A count with an SI prefix (4.09 G)."""
    for scale, prefix in COUNT_PREFIXES:
        if abs(value) >= scale:
            return f"{_three_digits(value / scale)} {prefix}"
    return f"{value:g}"


def human_bytes(value: float) -> str:
    """A byte count with a binary prefix (97.5 MiB)."""
    for scale, prefix in BYTE_PREFIXES:
        if abs(value) >= scale:
            return f"{_three_digits(value / scale)} {prefix}"
    return f"{value:g} B"
