"""Statistics over raw timing samples: percentiles, a distribution-free CI of the median.

Percentiles use linear interpolation between order statistics (numpy's default "linear").
The confidence interval of the median is the classic order-statistic interval: with n samples
sorted, [x_(k+1), x_(n-k)] covers the population median with probability
1 - 2 * P(B <= k), B ~ Binomial(n, 1/2); k is the largest rank keeping that at least the
requested confidence. Exact binomial sums up to 1000 samples, normal approximation above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

EXACT_BINOMIAL_LIMIT = 1000


@dataclass(frozen=True)
class Summary:
    """Statistics derived from one set of raw samples (same unit as the samples)."""

    n: int
    median: float
    mean: float
    p10: float
    p90: float
    p99: float
    iqr: float
    cv: float


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics."""
    if not samples:
        raise ValueError("percentile of an empty sample set")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q={q} is outside 0..100")
    return float(np.percentile(np.asarray(samples, dtype=float), q))


def coefficient_of_variation(samples: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1) over the mean; 0.0 for fewer than two samples."""
    values = np.asarray(samples, dtype=float)
    if values.size < 2 or values.mean() == 0.0:
        return 0.0
    return float(values.std(ddof=1) / values.mean())


def summarize(samples: Sequence[float]) -> Summary:
    """Median, mean, p10/p90/p99, interquartile range and CV of the samples."""
    if not samples:
        raise ValueError("cannot summarise an empty sample set")
    values = np.asarray(samples, dtype=float)
    p10, p25, p50, p75, p90, p99 = np.percentile(values, [10, 25, 50, 75, 90, 99])
    return Summary(
        n=int(values.size),
        median=float(p50),
        mean=float(values.mean()),
        p10=float(p10),
        p90=float(p90),
        p99=float(p99),
        iqr=float(p75 - p25),
        cv=coefficient_of_variation(samples),
    )


@lru_cache(maxsize=4096)
def median_ci_rank(n: int, confidence: float = 0.95) -> int:
    """Largest k with 1 - 2*P(Bin(n, 1/2) <= k-1) >= confidence; 0 means no interval exists."""
    tail = (1.0 - confidence) / 2.0
    if n > EXACT_BINOMIAL_LIMIT:
        z = _normal_quantile(1.0 - tail)
        return max(0, math.floor((n - z * math.sqrt(n)) / 2.0))
    cumulative, total, k = 0, 2**n, 0
    while True:
        cumulative += math.comb(n, k)
        if cumulative / total > tail:
            return k
        k += 1


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median; (-inf, inf) when n is too small."""
    ordered = sorted(samples)
    k = median_ci_rank(len(ordered), confidence)
    if k == 0:
        return (-math.inf, math.inf)
    return (ordered[k - 1], ordered[len(ordered) - k])


def median_rel_halfwidth(samples: Sequence[float], confidence: float = 0.95) -> float:
    """Half-width of the median's confidence interval over the median (inf when undefined)."""
    if not samples:
        return math.inf
    low, high = median_ci(samples, confidence)
    center = float(np.median(np.asarray(samples, dtype=float)))
    if math.isinf(low) or center <= 0.0:
        return math.inf
    return (high - low) / 2.0 / center


def _normal_quantile(p: float) -> float:
    """Standard normal quantile by bisection on erf (enough precision for CI ranks)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2.0
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0
