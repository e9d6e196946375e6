"""The result-row schema: file names of a run folder, its columns, and the row builders.

Every other module names a run file or a result column through this one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench.core.values import is_missing
from bench.measure.categories import CATEGORIES

if TYPE_CHECKING:  # only for annotations: reading a run folder needs no torch
    from bench.measure.counting import CountResult
    from bench.measure.profile import ProfileResult
    from bench.measure.timing import LatencyResult

RESULTS_FORMAT_VERSION = 1
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
SAMPLES_JSONL = "samples.jsonl"
ENV_JSON = "env.json"
SUITE_YAML = "suite.yaml"
EPOCHS_CSV = "epochs.csv"
RUN_LOCK = ".lock"  # the advisory write lock of a run folder (holder's pid, host, start)
STATUSES = ("ok", "error", "skipped")

ID_COLUMNS = [
    "case_id", "suite", "group", "case", "model", "device", "dtype", "batch", "input",
    "threads", "channels_last", "mode", "runtime", "status", "error", "note",
]  # fmt: skip
COUNT_COLUMNS = ["params", "mult_adds", "flops", "mac_elements", "mac_bytes"]
LATENCY_COLUMNS = [
    "latency_ms_median", "latency_ms_mean", "latency_ms_p10", "latency_ms_p90",
    "latency_ms_p99", "latency_ms_iqr", "cv", "n_samples", "stop_reason", "throughput",
    "batches_per_s", "peak_mem_bytes", "peak_mem_kind", "prepare_s", "first_ms",
    "parity_max_abs",
]  # fmt: skip
TRUST_COLUMNS = [
    "rel_halfwidth", "paired_ratio", "paired_low", "paired_high", "rounds",
    "contention", "foreign_cpus", "load_avg", "remeasured", "noisy", "noise",
]  # fmt: skip
PAIRED_COLUMNS = ("paired_ratio", "paired_low", "paired_high", "rounds")
ENV_COLUMNS = ["hostname", "cpu_model", "gpu_name", "torch"]
FINETUNE_COLUMNS = ["best_val_acc", "train_seconds", "epochs", "checkpoint"]
RESULT_COLUMNS = ID_COLUMNS + COUNT_COLUMNS + LATENCY_COLUMNS + TRUST_COLUMNS + ENV_COLUMNS
INT_COLUMNS = (
    "batch", "threads", "n_samples", "peak_mem_bytes", "epochs", "rounds", "remeasured",
    *COUNT_COLUMNS,
)  # fmt: skip
FINISHED = ("ok", "skipped")
LATENCY_STATS = ("median", "mean", "p10", "p90", "p99", "iqr")


# `metrics: [..., profile]`: each category's shares, the profiled total and the top layers (JSON)
PROFILE_SHARES = ("time_share", "mult_adds_share", "mac_share")
PROFILE_COLUMNS = [
    *(f"{share}_{category}" for share in PROFILE_SHARES for category in CATEGORIES),
    "profile_total_ms", "profile_latency_ms", "profile_top_layers",
]  # fmt: skip
PROFILE_TOP_LAYERS = 10
TOP_LAYER_FIELDS = ("module", "op", "category", "conv_kind", "time_ms", "time_share",
                    "mult_adds", "mult_adds_share", "mac_bytes")  # fmt: skip

DEFAULT_RUNTIME = "eager"  # what rows written before the runtime column were measured in


def order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Schema columns first (all of them, empty where unknown), then ref_* and the rest."""
    extra = [c for c in frame.columns if c not in RESULT_COLUMNS]
    refs = sorted(c for c in extra if c.startswith("ref_"))
    others = [c for c in extra if not c.startswith("ref_")]
    frame = frame.reindex(columns=RESULT_COLUMNS + others + refs)
    for column in [*INT_COLUMNS, *refs]:
        if column in frame.columns:
            frame[column] = _as_nullable_int(frame[column])
    return frame


def _as_nullable_int(values: pd.Series) -> pd.Series:
    """Whole-number columns as pandas' nullable Int64 (so CSV cells read `12`, not `12.0`)."""
    numbers = pd.to_numeric(values, errors="coerce")
    present = numbers.dropna()
    if len(present) != values.notna().sum() or not (present == present.round()).all():
        return values
    return numbers.astype("Int64")


def rows_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """A DataFrame of result rows in schema column order."""
    return order_columns(pd.DataFrame(list(rows)))


def count_row(result: CountResult) -> dict[str, Any]:
    """The count columns of a row, plus the ops without a cost rule (comma-separated)."""
    row: dict[str, Any] = {key: getattr(result, key) for key in COUNT_COLUMNS}
    row["unhandled_ops"] = ",".join(sorted(result.unhandled)) or None
    return row


def latency_row(result: LatencyResult) -> dict[str, Any]:
    """The latency columns of a row: statistics (ms), throughput, batches/s, threads."""
    row: dict[str, Any] = {f"latency_ms_{k}": getattr(result, f"{k}_ms") for k in LATENCY_STATS}
    row.update(
        cv=result.cv,
        n_samples=result.n_samples,
        stop_reason=result.stop_reason,
        throughput=result.throughput,
        batches_per_s=result.throughput / result.batch,
        peak_mem_bytes=result.peak_mem_bytes,
        peak_mem_kind=result.peak_mem_kind,
        threads=result.threads,
        runtime=result.runtime,
        prepare_s=result.prepare_s,
        first_ms=result.first_ms,
        parity_max_abs=result.parity_max_abs,
        rel_halfwidth=None if math.isinf(result.rel_halfwidth) else result.rel_halfwidth,
    )
    row.update({key: getattr(result, key) for key in PAIRED_COLUMNS})
    return row


def profile_row(result: ProfileResult) -> dict[str, Any]:
    """The profile columns of a row: category shares, totals, the top layers by time as JSON."""
    row: dict[str, Any] = {
        f"{share}_{category}": result.categories[category][share]
        for share in PROFILE_SHARES
        for category in CATEGORIES
    }
    top = result.layers.sort_values("time_ms", ascending=False).head(PROFILE_TOP_LAYERS)
    row.update(
        profile_total_ms=result.total_profiled_ms,
        profile_latency_ms=result.latency_median_ms,
        profile_top_layers=json.dumps(top[list(TOP_LAYER_FIELDS)].to_dict(orient="records")),
    )
    return row


def env_row(env: dict) -> dict[str, Any]:
    """The environment columns every row of a run carries."""
    return {key: env.get(key) for key in ENV_COLUMNS}


# ---- reading cells of result rows (CSV gives NaN, 'nan', '' or None for missing) ----


def has_values(rows: pd.DataFrame, source: str) -> bool:
    """Whether the column exists and holds at least one non-missing value."""
    return source in rows and not rows[source].map(is_missing).all()


def calibration_of(env: dict) -> dict:
    """A run's calibration record from its env ({} when it was not calibrated)."""
    return env.get("calibration") or {}
