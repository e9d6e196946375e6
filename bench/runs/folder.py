"""Run folders: the row schema, atomic writes, and `load_run` (what compare and report read).

A run folder holds `results.csv` + `results.parquet` (one row per case), `samples.jsonl` (raw
latency samples per case), `env.json`, `suite.yaml` and, for fine-tunes, `epochs.csv`. Every file
is written to a temporary name in the same folder and moved into place with `os.replace`, so a
killed run leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from bench.errors import BenchError

RESULTS_FORMAT_VERSION = 1
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
SAMPLES_JSONL = "samples.jsonl"
ENV_JSON = "env.json"
SUITE_YAML = "suite.yaml"
EPOCHS_CSV = "epochs.csv"
STATUSES = ("ok", "error", "skipped")

ID_COLUMNS = [
    "case_id", "suite", "group", "case", "model", "device", "dtype", "batch", "input",
    "threads", "channels_last", "mode", "status", "error", "note",
]  # fmt: skip
COUNT_COLUMNS = ["params", "mult_adds", "flops", "mac_elements", "mac_bytes"]
LATENCY_COLUMNS = [
    "latency_ms_median", "latency_ms_mean", "latency_ms_p10", "latency_ms_p90",
    "latency_ms_p99", "latency_ms_iqr", "cv", "n_samples", "stop_reason", "throughput",
    "batches_per_s", "peak_mem_bytes",
]  # fmt: skip
ENV_COLUMNS = ["hostname", "cpu_model", "gpu_name", "torch"]
FINETUNE_COLUMNS = ["best_val_acc", "train_seconds", "epochs", "checkpoint"]
RESULT_COLUMNS = ID_COLUMNS + COUNT_COLUMNS + LATENCY_COLUMNS + ENV_COLUMNS
INT_COLUMNS = ("batch", "threads", "n_samples", "peak_mem_bytes", "epochs", *COUNT_COLUMNS)


@dataclass(frozen=True)
class Run:
    """One run folder read back: rows, environment, raw samples, resolved suite, epochs."""

    path: Path
    rows: pd.DataFrame
    env: dict
    samples: dict[str, list[float]]
    suite: dict
    epochs: pd.DataFrame | None


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to `path` via a temporary file in the same folder and os.replace."""
    atomic_write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_with(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp_path)` on a fresh temporary path, then move it onto `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, payload: dict) -> None:
    """Write a JSON document atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def write_yaml(path: Path, payload: dict) -> None:
    """Write a YAML document atomically."""
    atomic_write_text(path, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))


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


def write_rows(run_dir: Path, rows: Iterable[dict]) -> pd.DataFrame:
    """Write all rows so far to results.parquet and results.csv (each atomically)."""
    frame = rows_frame(rows)
    parquet_ready = _parquet_safe(frame)
    atomic_write_with(run_dir / RESULTS_PARQUET, lambda tmp: parquet_ready.to_parquet(tmp))
    atomic_write_with(run_dir / RESULTS_CSV, lambda tmp: frame.to_csv(tmp, index=False))
    return frame


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding mixed value types become strings (parquet needs one type)."""
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_object_dtype(frame[column]):
            continue
        values = frame[column].dropna()
        if values.map(type).nunique() > 1:
            frame[column] = frame[column].map(lambda v: v if pd.isna(v) else str(v))
    return frame


def write_samples(run_dir: Path, samples: dict[str, list[float]]) -> None:
    """Rewrite samples.jsonl atomically: one {"case_id", "samples_ms"} object per line."""
    lines = (json.dumps({"case_id": k, "samples_ms": v}) for k, v in samples.items())
    atomic_write_text(run_dir / SAMPLES_JSONL, "".join(line + "\n" for line in lines))


def write_epochs(run_dir: Path, epochs: list[dict]) -> None:
    """Write the fine-tunes' per-epoch rows to epochs.csv atomically."""
    frame = pd.DataFrame(epochs)
    atomic_write_with(run_dir / EPOCHS_CSV, lambda tmp: frame.to_csv(tmp, index=False))


def read_rows(run_dir: Path) -> pd.DataFrame:
    """The rows of results.csv (empty frame with the schema columns if none yet)."""
    path = Path(run_dir) / RESULTS_CSV
    if not path.exists():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: not a readable results table ({exc})") from None
    if "case_id" not in frame.columns:
        raise BenchError(f"{path}: no 'case_id' column; not a bench results table")
    return order_columns(frame)


def read_samples(run_dir: Path) -> dict[str, list[float]]:
    """case_id -> raw latency samples (ms) from samples.jsonl ({} if absent)."""
    path = Path(run_dir) / SAMPLES_JSONL
    if not path.exists():
        return {}
    samples: dict[str, list[float]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            samples[str(record["case_id"])] = [float(v) for v in record["samples_ms"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"{path}:{number}: bad samples line ({exc})") from None
    return samples


def read_json(path: Path) -> dict:
    """A JSON object from `path` ({} if absent); BenchError if unreadable."""
    if not path.exists():
        return {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise BenchError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise BenchError(f"{path}: expected a JSON object")
    return payload


def read_suite(run_dir: Path) -> dict:
    """The resolved suite stored with a run ({} if absent)."""
    path = Path(run_dir) / SUITE_YAML
    if not path.exists():
        return {}
    try:
        payload = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BenchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return payload if isinstance(payload, dict) else {}


def check_format_version(path: Path, env: dict) -> None:
    """BenchError unless the run's results_format_version is the one this code reads."""
    version = env.get("results_format_version")
    if version != RESULTS_FORMAT_VERSION:
        raise BenchError(
            f"{path}: results_format_version {version!r} is not supported "
            f"(this bench reads version {RESULTS_FORMAT_VERSION})"
        )


def latest_run(folder: Path) -> Path:
    """The folder itself when it is a run folder, else its newest run subfolder (by name)."""
    if (folder / RESULTS_CSV).is_file():
        return folder
    runs = sorted(p for p in folder.glob("*") if (p / ENV_JSON).is_file())
    if not runs:
        raise BenchError(f"{folder} holds no results.csv and no run folders")
    return runs[-1]


def load_run(path: str | Path) -> Run:
    """Read a run folder: rows, env, samples, suite and epochs; BenchError if it is not one."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise BenchError(f"run folder {str(run_dir)!r} does not exist")
    if not (run_dir / RESULTS_CSV).exists() and not (run_dir / ENV_JSON).exists():
        raise BenchError(f"{run_dir}: not a run folder (no {RESULTS_CSV} or {ENV_JSON})")
    env = read_json(run_dir / ENV_JSON)
    check_format_version(run_dir / ENV_JSON, env)
    epochs_path = run_dir / EPOCHS_CSV
    epochs = pd.read_csv(epochs_path) if epochs_path.exists() else None
    return Run(
        path=run_dir,
        rows=read_rows(run_dir),
        env=env,
        samples=read_samples(run_dir),
        suite=read_suite(run_dir),
        epochs=epochs,
    )


def merge_runs(paths: list[str | Path], out: str | Path) -> Path:
    """Join run folders (e.g. the shards of one suite) into `out`; refuses mixed formats/ids."""
    if not paths:
        raise BenchError("merge: name at least one run folder")
    runs = [load_run(p) for p in paths]
    out_dir = Path(out)
    if (out_dir / ENV_JSON).exists() or (out_dir / RESULTS_CSV).exists():
        raise BenchError(f"merge --out {str(out_dir)!r} already holds a run; choose a new folder")
    rows = pd.concat([r.rows for r in runs if not r.rows.empty], ignore_index=True)
    duplicated = rows["case_id"][rows["case_id"].duplicated()] if not rows.empty else []
    if len(duplicated):
        raise BenchError(f"merge: case id {duplicated.iloc[0]!r} occurs in more than one run")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_rows(out_dir, rows.to_dict("records"))
    write_samples(out_dir, {k: v for r in runs for k, v in r.samples.items()})
    epochs = [r.epochs for r in runs if r.epochs is not None]
    if epochs:
        write_epochs(out_dir, pd.concat(epochs, ignore_index=True).to_dict("records"))
    write_json(out_dir / ENV_JSON, merged_env(runs))
    if runs[0].suite:
        write_yaml(out_dir / SUITE_YAML, runs[0].suite)
    return out_dir


def merged_env(runs: list[Run]) -> dict:
    """env.json of a merged run: the first run's env plus every source's path, host and shard."""
    sources = [
        {"path": str(r.path), "hostname": r.env.get("hostname"), "shard": r.env.get("shard")}
        for r in runs
    ]
    suites = sorted({str(r.env.get("suite")) for r in runs})
    return {
        **runs[0].env,
        "results_format_version": RESULTS_FORMAT_VERSION,
        "suite": suites[0] if len(suites) == 1 else "+".join(suites),
        "shard": None,
        "merged_from": sources,
        "envs": [r.env for r in runs],
    }
