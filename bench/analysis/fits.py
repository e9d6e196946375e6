"""Fits over a run's rows: what explains latency (R^2), and the accuracy-latency Pareto front."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bench.core.values import is_missing
from bench.runs.schema import has_values

MIN_FIT_CASES = 4


@dataclass(frozen=True)
class LatencyFit:
    """R^2 of least-squares fits of latency on mult-adds, and on mult-adds + MAC."""

    suite: str
    device: str
    batch: int
    cases: int
    r2_mult_adds: float
    r2_mult_adds_mac: float
    runtime: str = "eager"


def r_squared(features: np.ndarray, target: np.ndarray) -> float:
    """R^2 of the least-squares fit target ~ intercept + features (numpy lstsq); NaN if flat."""
    columns = features.reshape(len(target), -1)
    columns = columns / np.where(np.abs(columns).max(axis=0) > 0, np.abs(columns).max(axis=0), 1)
    design = np.column_stack([np.ones(len(target)), columns])
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = float(((target - design @ coefficients) ** 2).sum())
    total = float(((target - target.mean()) ** 2).sum())
    return 1.0 - residual / total if total > 0 else math.nan


def timed_cases(rows: pd.DataFrame) -> pd.DataFrame:
    """Ok inference rows with finite positive latency, mult-adds and MAC bytes."""
    needed = ("latency_ms_median", "mult_adds", "mac_bytes")
    if not all(has_values(rows, column) for column in needed):
        return rows.iloc[0:0]
    keep = rows["status"] == "ok"
    if "mode" in rows:
        keep &= rows["mode"].map(lambda m: is_missing(m) or m == "infer")
    for column in needed:
        keep &= rows[column].map(lambda v: not is_missing(v) and float(v) > 0)
    return rows[keep]


def latency_fits(rows: pd.DataFrame) -> list[LatencyFit]:
    """Per suite, device, runtime and batch: R^2 of latency on mult-adds, and on + MAC bytes.

    Counts are per image and latency per batch, so cases of different batch sizes are fitted apart;
    each runtime is fitted on its own (a fusing runtime changes what latency depends on).
    """
    fits = []
    cases = timed_cases(rows)
    runtimes = cases["runtime"].fillna("eager") if "runtime" in cases else "eager"
    cases = cases.assign(batch=cases.get("batch", 1), runtime=runtimes)
    keys = ["suite", "device", "runtime", "batch"]
    for (suite, device, runtime, batch), frame in cases.groupby(keys, sort=True):
        latency = frame["latency_ms_median"].astype(float).to_numpy()
        mult_adds = frame["mult_adds"].astype(float).to_numpy()
        both = np.column_stack([mult_adds, frame["mac_bytes"].astype(float).to_numpy()])
        enough = len(frame) >= MIN_FIT_CASES
        r2_one = r_squared(mult_adds, latency) if enough else math.nan
        r2_two = r_squared(both, latency) if enough else math.nan
        fit = LatencyFit(str(suite), str(device), int(batch), len(frame), r2_one, r2_two)
        fits.append(replace(fit, runtime=str(runtime)))
    return fits


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Points not beaten by any other point that is both faster (lower x) and more accurate."""
    ordered = points.sort_values(["x", "y"], ascending=[True, False])
    best_before = ordered["y"].cummax().shift(fill_value=-math.inf)
    return ordered[ordered["y"] > best_before]
