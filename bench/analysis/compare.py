"""Did NEW get slower than BASE? Case-by-case ratios with bootstrap confidence intervals.

Statistics: for each case the ratio r = stat(new) / stat(base) of the chosen statistic (the
median by default) of the two raw sample sets, and a percentile-bootstrap confidence interval:
both sets are resampled with replacement (seeded, `BOOTSTRAP_RESAMPLES` times), the statistic's
ratio is taken per resample, and the interval is the (1-c)/2 and (1+c)/2 quantiles of those
ratios. The bootstrap makes no assumption about the shape of the timing distribution (skewed,
bimodal), and a median's interval widens by itself when the samples are few or spread out.

Verdict, with threshold t and the interval [low, high]:
- `insufficient samples`: either side has fewer than `MIN_SAMPLES` raw samples (never a
  regression on that little evidence);
- `regression`: low > 1 + t (slower by more than t, with the confidence asked);
- `slower`: low > 1 (significantly slower, but not surely by more than t);
- `faster`: high < 1; `unchanged`: otherwise.

The two sides (run folders, pytest-benchmark files) are read and checked by
`bench.analysis.sides`; a side with statistics only gets a normal approximation on log(r) from
each side's standard error.

Across machines the latencies are divided by each run's calibration (`env.calibration.
ref_workload_ms`, the same reference network timed on that machine) before the ratio is taken.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from scipy.stats import norm

from bench.analysis.sides import (
    MACHINE_KEYS,
    METRICS,
    CaseData,
    Metric,
    Reducer,
    Side,
    load_side,
)
from bench.core.choices import LatencyStat, Normalize
from bench.core.errors import BenchError

MIN_SAMPLES = 5
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20180730
CHUNK_ELEMENTS = 2_000_000
DEFAULT_METRIC = LatencyStat.latency_ms_median
DEFAULT_THRESHOLD = 0.10
DEFAULT_CONFIDENCE = 0.99
NORMALIZE_MODES = tuple(mode.value for mode in Normalize)
REF_DRIFT_LIMIT = 0.10
INSUFFICIENT = "insufficient samples"


@dataclass(frozen=True)
class Ratio:
    """new/base of a statistic with its confidence interval and how it was obtained."""

    ratio: float
    low: float
    high: float
    method: str  # "bootstrap" | "normal-approx" | "none"


@dataclass(frozen=True)
class CaseComparison:
    """The verdict on one case present in both sides."""

    case_id: str
    base: float
    new: float
    ratio: float
    low: float
    high: float
    n_base: int
    n_new: int
    method: str
    verdict: str


@dataclass(frozen=True)
class Comparison:
    """All matched cases plus what could not be compared; `regressions` drives the exit code."""

    base: str
    new: str
    metric: str
    threshold: float
    confidence: float
    normalized: bool
    normalize_note: str
    unit: str
    cases: list[CaseComparison]
    only_in_base: list[str]
    only_in_new: list[str]
    skipped: dict[str, str]

    @property
    def regressions(self) -> list[str]:
        """case_ids whose verdict is `regression`."""
        return [c.case_id for c in self.cases if c.verdict == "regression"]

    def to_dict(self) -> dict:
        """JSON-ready dict (non-finite interval bounds become None)."""
        data = asdict(self)
        data["cases"] = [_finite_fields(c) for c in data["cases"]]
        data["regressions"] = self.regressions
        return data


def _finite_fields(row: dict) -> dict:
    """Replace inf/nan floats by None for JSON."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


# ---- statistics (pure functions) ----


def bootstrap_ratio(
    base: np.ndarray,
    new: np.ndarray,
    reduce: Reducer,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Ratio:
    """Point ratio reduce(new)/reduce(base) and its percentile-bootstrap interval."""
    base, new = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    rng = np.random.default_rng(seed)
    ratios = _resampled(new, reduce, rng, resamples) / _resampled(base, reduce, rng, resamples)
    low, high = np.quantile(ratios, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return Ratio(float(reduce(new) / reduce(base)), float(low), float(high), "bootstrap")


def _resampled(
    samples: np.ndarray, reduce: Reducer, rng: np.random.Generator, count: int
) -> np.ndarray:
    """The statistic of `count` resamples (with replacement), drawn in memory-bounded chunks."""
    rows = max(1, CHUNK_ELEMENTS // samples.size)
    parts = []
    for start in range(0, count, rows):
        index = rng.integers(0, samples.size, size=(min(rows, count - start), samples.size))
        parts.append(reduce(samples[index]))
    return np.concatenate(parts)


def normal_ratio(base: CaseData, new: CaseData, confidence: float) -> Ratio:
    """Ratio of values with a normal-approximation interval on log(ratio) from standard errors."""
    ratio = new.value / base.value
    if base.se is None or new.se is None or min(base.n, new.n) < 2:
        return Ratio(ratio, -math.inf, math.inf, "none")
    z = float(norm.ppf((1.0 + confidence) / 2.0))
    factor = math.exp(z * math.hypot(base.se / base.value, new.se / new.value))
    return Ratio(ratio, ratio / factor, ratio * factor, "normal-approx")


def regression_verdict(ratio: Ratio, threshold: float, n_base: int, n_new: int) -> str:
    """faster / unchanged / slower / regression, or `insufficient samples` (see module doc)."""
    if min(n_base, n_new) < MIN_SAMPLES:
        return INSUFFICIENT
    if ratio.low > 1.0 + threshold:
        return "regression"
    if ratio.low > 1.0:
        return "slower"
    if ratio.high < 1.0:
        return "faster"
    return "unchanged"


def compare_case(
    case_id: str, base: CaseData, new: CaseData, metric: Metric, threshold: float, confidence: float
) -> CaseComparison:
    """Ratio, interval and verdict of one case (bootstrap when both sides have raw samples)."""
    if base.samples is not None and new.samples is not None:
        ratio = bootstrap_ratio(base.samples, new.samples, metric.reduce, confidence)
    else:
        ratio = normal_ratio(base, new, confidence)
    return CaseComparison(
        case_id=case_id,
        base=base.value,
        new=new.value,
        ratio=ratio.ratio,
        low=ratio.low,
        high=ratio.high,
        n_base=base.n,
        n_new=new.n,
        method=ratio.method,
        verdict=regression_verdict(ratio, threshold, base.n, new.n),
    )


# ---- option parsing ----


def parse_threshold(text: str | float) -> float:
    """`10%` or `0.1` -> 0.1; plain numbers must be fractions below 1 (write 150% for 1.5)."""
    raw = str(text).strip()
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(%?)", raw)
    if match is None:
        raise BenchError(f"threshold {raw!r} is not a percentage like 10% or a fraction like 0.1")
    value = float(match.group(1))
    if match.group(2):
        return value / 100.0
    if value >= 1.0:
        raise BenchError(f"threshold {raw!r} is ambiguous; write {raw}% or a fraction below 1")
    return value


def check_compare_options(metric: str, confidence: float, normalize: str) -> Metric:
    """Validate metric, confidence and normalisation mode; return the Metric."""
    if metric not in METRICS:
        raise BenchError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if not 0.5 <= confidence < 1.0:
        raise BenchError(f"confidence {confidence} must be in [0.5, 1), e.g. 0.99")
    if normalize not in NORMALIZE_MODES:
        choices = ", ".join(NORMALIZE_MODES)
        raise BenchError(f"unknown --normalize {normalize!r}; choose one of {choices}")
    return METRICS[metric]


# ---- the comparison ----


def resolve_normalization(base: Side, new: Side, mode: str) -> tuple[bool, str]:
    """Whether to divide by each side's calibration, and a sentence saying why (or why not).

    `auto` normalises when the machines differ by name, or when their reference workloads differ
    by more than REF_DRIFT_LIMIT (the same names can hide another, slower or busier machine).
    """
    differing = [key for key in MACHINE_KEYS if base.machine.get(key) != new.machine.get(key)]
    drift = calibration_drift(base, new)
    why = _normalization_reason(differing, drift, mode)
    if why is None:
        where = f"machines differ in {', '.join(differing)}" if differing else "same machine"
        return False, f"raw latency in ms ({where}; --normalize {mode})"
    missing = [side.path for side in (base, new) if not side.ref_workload_ms]
    if missing:
        raise BenchError(
            f"cannot normalise: no calibration (env.calibration.ref_workload_ms) in "
            f"{', '.join(missing)}; pass --normalize none to compare raw latency"
        )
    refs = f"ref_workload_ms BASE {base.ref_workload_ms:.4g}, NEW {new.ref_workload_ms:.4g}"
    return True, f"calibration-normalised latency = latency / ref_workload_ms ({why}; {refs})"


def calibration_drift(base: Side, new: Side) -> float | None:
    """NEW's reference workload over BASE's, minus 1 (None when either side has none)."""
    if not base.ref_workload_ms or not new.ref_workload_ms:
        return None
    return float(new.ref_workload_ms) / float(base.ref_workload_ms) - 1.0


def _normalization_reason(differing: list[str], drift: float | None, mode: str) -> str | None:
    """Why latencies are normalised under `mode`, or None when they are compared raw."""
    if mode == "none":
        return None
    if mode == "calibration":
        return "--normalize calibration"
    if differing:
        return f"machines differ in {', '.join(differing)}"
    if drift is not None and abs(drift) > REF_DRIFT_LIMIT:
        return (
            f"same machine names, but the reference workload moved {100 * drift:+.0f}% "
            f"(beyond the {100 * REF_DRIFT_LIMIT:.0f}% one machine varies): another machine "
            "or another load"
        )
    return None


def normalized(side: Side) -> Side:
    """The side with values, samples and standard errors divided by its ref_workload_ms."""
    scale = 1.0 / float(side.ref_workload_ms)
    cases = {
        case_id: CaseData(
            data.value * scale,
            None if data.samples is None else data.samples * scale,
            None if data.se is None else data.se * scale,
            data.n,
        )
        for case_id, data in side.cases.items()
    }
    return replace(side, cases=cases)


def compare(
    base_path: str | Path,
    new_path: str | Path,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    confidence: float = DEFAULT_CONFIDENCE,
    normalize: str = "auto",
) -> Comparison:
    """Compare NEW against BASE case by case; BenchError on bad input or no common cases."""
    spec = check_compare_options(metric, confidence, normalize)
    if threshold < 0:
        raise BenchError(f"threshold {threshold} must be >= 0")
    base, new = load_side(base_path, spec, "BASE"), load_side(new_path, spec, "NEW")
    scaled, note = resolve_normalization(base, new, normalize)
    if scaled:
        base, new = normalized(base), normalized(new)
    common = [case_id for case_id in base.cases if case_id in new.cases]
    if not common:
        raise BenchError(
            f"no common cases: BASE {base.path} has {len(base.cases)} comparable cases, "
            f"NEW {new.path} has {len(new.cases)}, none with the same case_id"
        )
    rows = [
        compare_case(c, base.cases[c], new.cases[c], spec, threshold, confidence) for c in common
    ]
    return _comparison(base, new, spec, threshold, confidence, scaled, note, rows)


def _comparison(
    base: Side,
    new: Side,
    metric: Metric,
    threshold: float,
    confidence: float,
    scaled: bool,
    note: str,
    rows: list[CaseComparison],
) -> Comparison:
    """Assemble the Comparison, including the cases that could not be matched or compared."""
    ids_base, ids_new = set(base.cases) | set(base.skipped), set(new.cases) | set(new.skipped)
    both = ids_base & ids_new
    skipped = {c: f"BASE {r}" for c, r in base.skipped.items() if c in both}
    skipped |= {c: f"NEW {r}" for c, r in new.skipped.items() if c in both and c not in skipped}
    return Comparison(
        base=base.path,
        new=new.path,
        metric=metric.name,
        threshold=threshold,
        confidence=confidence,
        normalized=scaled,
        normalize_note=note,
        unit="x ref" if scaled else "ms",
        cases=rows,
        only_in_base=sorted(ids_base - ids_new),
        only_in_new=sorted(ids_new - ids_base),
        skipped=skipped,
    )
