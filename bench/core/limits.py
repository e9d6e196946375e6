"""Caps on what an input may cost (archive sizes, suite sizes), each overridable by a variable.

A cap protects against hostile or mistaken input (an archive bomb, a sweep of millions of cases);
a user who means it raises the cap with the environment variable the refusal names.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from bench.core.errors import BenchError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class Limit:
    """A cap with its default and the environment variable that overrides it."""

    variable: str
    default: float
    what: str

    def value(self) -> float:
        """The cap in force: the variable's value (`64G`, `500M`, `1000`, `1e6`) or the default."""
        text = os.environ.get(self.variable)
        if text is None or not text.strip():
            return self.default
        match = _SIZE.match(text)
        number = float(match[1]) * _UNITS[match[2].lower()] if match else math.nan
        if not math.isfinite(number) or number <= 0:
            raise BenchError(
                f"{self.variable}={text!r}: expected a positive number such as 1000 or 64G "
                f"({self.what})"
            )
        return number


MAX_EXTRACT_BYTES = Limit("BENCH_MAX_EXTRACT_BYTES", 64 * (1 << 30), "bytes an archive may unpack")
MAX_EXTRACT_RATIO = Limit("BENCH_MAX_EXTRACT_RATIO", 100.0, "unpacked size / archive size")
MAX_SUITE_CASES = Limit("BENCH_MAX_CASES", 10_000, "cases a suite file may expand to")
