"""Whether a cell of a result row holds a value: CSV gives NaN, 'nan', '' or None for missing.

Free of pandas and numpy on purpose: the CLI's number formatting uses it before they load.
"""

from __future__ import annotations

import math
import sys
from typing import Any


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
