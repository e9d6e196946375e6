"""The two sides of a comparison, read and checked: run folders and pytest-benchmark JSON files.

A run folder gives its ok rows and their raw samples (ms). A pytest-benchmark file gives every
round's time when saved with `--benchmark-save-data` (`stats.data`, seconds per iteration), else
statistics only: the median or mean with a standard error (median: 1.2533 * IQR / 1.349 /
sqrt(rounds); mean: stddev / sqrt(rounds)). A benchmark's case id is its `extra_info["case_id"]`
(else its fullname); the one with `extra_info["role"] == "calibration"` is the reference workload.

Everything a verdict rests on is checked: a raw sample that is not a positive finite number
(NaN, inf, zero, negative) or a malformed pytest-benchmark entry is a BenchError naming the file
and the case, never a NaN ratio judged `unchanged`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.choices import LatencyStat
from bench.core.errors import BenchError
from bench.core.values import as_float
from bench.runs.folder import latest_run, load_run
from bench.runs.schema import SAMPLES_JSONL

MACHINE_KEYS = ("hostname", "cpu_model", "gpu_name")
CALIBRATION_ROLE = "calibration"
MEDIAN_SE_FACTOR = 1.2533 / 1.349

Reducer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """A latency statistic: how to reduce raw samples (last axis) and its pytest-benchmark key."""

    name: str
    reduce: Reducer
    pytest_stat: str | None = None


def _percentile(q: float) -> Reducer:
    """Reducer for the q-th percentile along the last axis (linear interpolation)."""
    return lambda values: np.percentile(values, q, axis=-1)


_REDUCERS: dict[LatencyStat, tuple[Reducer, str | None]] = {
    LatencyStat.latency_ms_median: (lambda v: np.median(v, axis=-1), "median"),
    LatencyStat.latency_ms_mean: (lambda v: np.mean(v, axis=-1), "mean"),
    LatencyStat.latency_ms_p10: (_percentile(10), None),
    LatencyStat.latency_ms_p90: (_percentile(90), None),
    LatencyStat.latency_ms_p99: (_percentile(99), None),
}
METRICS: dict[str, Metric] = {
    stat.value: Metric(stat.value, reduce, pytest_stat)
    for stat, (reduce, pytest_stat) in _REDUCERS.items()
}


@dataclass(frozen=True)
class CaseData:
    """One case on one side: the metric's value (ms or x ref) and what backs it."""

    value: float
    samples: np.ndarray | None = None  # raw samples, same unit as value
    se: float | None = None  # standard error of value when only statistics exist
    n: int = 0


@dataclass(frozen=True)
class Side:
    """One side of a comparison (a run folder or a pytest-benchmark JSON file)."""

    path: str
    kind: str  # "run" | "pytest-benchmark"
    machine: dict
    ref_workload_ms: float | None
    cases: dict[str, CaseData]
    skipped: dict[str, str] = field(default_factory=dict)  # case_id -> reason


def checked_samples(values: Any, where: str) -> np.ndarray:
    """Latency samples as a float array; BenchError unless all are positive finite numbers."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        array = np.empty((0, 0))
    if array.ndim != 1 or array.size == 0:
        raise BenchError(f"{where}: latency samples are not a non-empty list of numbers")
    bad = ~(np.isfinite(array) & (array > 0))
    if bad.any():
        raise BenchError(
            f"{where}: {int(bad.sum())} of {array.size} latency samples are not positive finite "
            f"numbers (e.g. {array[bad][0]!r}); refusing to judge it"
        )
    return array


def load_side(path: str | Path, metric: Metric, label: str) -> Side:
    """Read a run folder (or a suite folder: its latest run) or a pytest-benchmark JSON file."""
    target = Path(path)
    if not target.exists():
        raise BenchError(f"{label} {target} does not exist")
    if target.is_dir():
        return load_run_side(latest_run(target), metric)
    if target.suffix == ".json":
        return load_pytest_side(target, metric)
    raise BenchError(f"{label} {target} is neither a run folder nor a pytest-benchmark .json file")


def load_run_side(folder: Path, metric: Metric) -> Side:
    """One side from a run folder (load_run checks results_format_version): ok rows, samples."""
    run = load_run(folder)
    cases: dict[str, CaseData] = {}
    skipped: dict[str, str] = {}
    for row in run.rows.to_dict("records"):
        case_id = str(row["case_id"])
        reason = _row_problem(row, metric)
        if reason:
            skipped[case_id] = reason
            continue
        where = f"{folder / SAMPLES_JSONL}: case {case_id!r}"
        cases[case_id] = _run_case(row, run.samples.get(case_id), metric, where)
    env = run.env or {}
    return Side(
        path=str(folder),
        kind="run",
        machine={key: env.get(key) for key in MACHINE_KEYS},
        ref_workload_ms=(env.get("calibration") or {}).get("ref_workload_ms"),
        cases=cases,
        skipped=skipped,
    )


def _row_problem(row: dict, metric: Metric) -> str:
    """Why a row cannot be compared ('' when it can)."""
    status = str(row.get("status", "ok"))
    if status != "ok":
        error = row.get("error")
        return f"status {status}" + (f": {error}" if isinstance(error, str) and error else "")
    value = as_float(row.get(metric.name))
    if value is None or value <= 0.0:
        return f"no positive {metric.name}"
    return ""


def _run_case(row: dict, samples: list[float] | None, metric: Metric, where: str) -> CaseData:
    """CaseData from a row and its raw samples (without samples: the row's value, n = 0)."""
    if not samples:
        return CaseData(value=float(row[metric.name]))
    values = checked_samples(samples, where)
    return CaseData(float(metric.reduce(values)), samples=values, n=int(values.size))


def load_pytest_side(path: Path, metric: Metric) -> Side:
    """One side from a pytest-benchmark JSON file (seconds converted to ms)."""
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise BenchError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    cases: dict[str, CaseData] = {}
    skipped: dict[str, str] = {}
    ref_ms = None
    for index, entry in enumerate(doc["benchmarks"]):
        case_id, stats, role = _entry_parts(path, index, entry)
        where = f"{path}: case {case_id!r}"
        if role == CALIBRATION_ROLE:
            ref_ms = 1000.0 * _stat(stats, "median", where)
        elif metric.pytest_stat is None and not stats.get("data"):
            needed = f"needed for {metric.name}; save it with --benchmark-save-data"
            skipped[case_id] = f"no raw data in its stats ({needed})"
        else:
            cases[case_id] = _pytest_case(stats, metric, where)
    return Side(str(path), "pytest-benchmark", _pytest_machine(doc), ref_ms, cases, skipped)


def _entry_parts(path: Path, index: int, entry: Any) -> tuple[str, dict, Any]:
    """(case id, stats, role) of one benchmark entry; BenchError when it is malformed."""
    where = f"{path}: benchmarks[{index}]"
    if not isinstance(entry, dict):
        raise BenchError(f"{where}: expected an object, got {type(entry).__name__}")
    stats, extra = entry.get("stats"), entry.get("extra_info") or {}
    if not isinstance(extra, dict):
        raise BenchError(f"{where}: extra_info is not an object")
    name = extra.get("case_id") or entry.get("fullname") or entry.get("name") or where
    if not isinstance(stats, dict):
        raise BenchError(f"{path}: case {str(name)!r}: no 'stats' object")
    return str(name), stats, extra.get("role")


def _pytest_machine(doc: dict) -> dict:
    """hostname, cpu_model and gpu_name of a pytest-benchmark file's machine_info."""
    info = doc.get("machine_info") if isinstance(doc.get("machine_info"), dict) else {}
    cpu = info.get("cpu") if isinstance(info.get("cpu"), dict) else {}
    return {"hostname": info.get("node"), "cpu_model": cpu.get("brand_raw"), "gpu_name": None}


def _stat(stats: dict, key: str, where: str, positive: bool = True) -> float:
    """A statistic of a benchmark: a finite number, > 0 (or >= 0 when not `positive`)."""
    value = stats.get(key)
    real = isinstance(value, int | float) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or value < 0 or (positive and value == 0):
        expected = "a positive" if positive else "a non-negative"
        raise BenchError(f"{where}: stats.{key} is {value!r}; expected {expected} finite number")
    return float(value)


def _pytest_case(stats: dict, metric: Metric, where: str) -> CaseData:
    """CaseData from one benchmark's stats: raw `data` when saved, else value + standard error."""
    if stats.get("data"):
        values = checked_samples(stats["data"], where) * 1000.0
        return CaseData(float(metric.reduce(values)), samples=values, n=int(values.size))
    rounds = max(1, int(_stat(stats, "rounds", where)))
    value = _stat(stats, str(metric.pytest_stat), where)
    if metric.pytest_stat == "median":
        spread = MEDIAN_SE_FACTOR * _stat(stats, "iqr", where, positive=False)
    else:
        spread = _stat(stats, "stddev", where, positive=False)
    se = 1000.0 * spread / math.sqrt(rounds)
    return CaseData(1000.0 * value, se=se, n=rounds)


def _read_json(path: Path) -> object:
    """Parse a JSON file; BenchError naming the file when it is not valid JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path} is not readable JSON: {exc}") from None
