"""Whether a measured number can be trusted: the reasons a row is marked `noisy`.

A row is noisy when its raw samples vary too much (CV above CV_LIMIT), when it stopped on its
budget with the median's interval still wide (half-width above WIDE_INTERVAL), when its round-
paired ratio's interval is wide (half-width above PAIRED_LIMIT), or when the machine stayed busy
while it was measured (contention above the limit after the re-measurements). The reasons are
kept as short text (`noise` column), so every table can say why.
"""

from __future__ import annotations

import math

CV_LIMIT = 0.10
WIDE_INTERVAL = 0.05
PAIRED_LIMIT = 0.05


def _known(value: object) -> float | None:
    """A finite float, or None for missing values (None, NaN, '', text)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def paired_halfwidth(ratio: object, low: object, high: object) -> float | None:
    """Half the paired interval's width over the ratio (None when any part is missing)."""
    ratio_v, low_v, high_v = _known(ratio), _known(low), _known(high)
    if ratio_v is None or low_v is None or high_v is None or ratio_v <= 0:
        return None
    return (high_v - low_v) / 2.0 / ratio_v


def noise_reasons(
    cv: object,
    stop_reason: object,
    rel_halfwidth: object,
    paired: tuple[object, object, object] | None = None,
    contended: float | None = None,
) -> list[str]:
    """Why a row cannot be trusted ([] when it can); `contended` is a contention left too high."""
    reasons = []
    cv_v = _known(cv)
    if cv_v is not None and cv_v > CV_LIMIT:
        reasons.append(f"cv {cv_v:.0%}")
    halfwidth = _known(rel_halfwidth)
    if stop_reason == "budget" and (halfwidth is None or halfwidth > WIDE_INTERVAL):
        shown = "none" if halfwidth is None else f"+-{halfwidth:.0%}"
        reasons.append(f"budget spent, median interval {shown}")
    if paired is not None and paired[0] is not None:
        width = paired_halfwidth(*paired)
        if width is None or width > PAIRED_LIMIT:
            shown = "none" if width is None else f"+-{width:.0%}"
            reasons.append(f"paired ratio interval {shown}")
    if contended is not None:
        reasons.append(f"busy machine ({contended:.2f} CPUs taken)")
    return reasons
