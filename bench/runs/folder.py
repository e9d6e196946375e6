"""Run folders: write rows, samples and epochs, and `load_run` (what compare and report read).

A run folder holds `results.csv` + `results.parquet` (one row per case), `samples.jsonl` (raw
latency samples per case), `env.json`, `suite.yaml` and, for fine-tunes, `epochs.csv`. Every file
is written atomically (`bench.core.io`), so a killed run leaves either the old or the new file,
never a torn one. A case's samples (and epochs) are written before its row: a row is the commit of
its case. What arrives damaged anyway (a results.csv cut mid-line by a copy, an ok row whose raw
samples are missing) is detected here: a cut last row is left out with one warning, and
`incomplete_cases` names the rows a resume must measure again.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from bench.core.errors import BenchError
from bench.core.io import atomic_write_text, atomic_write_with, escape_unencodable
from bench.core.values import as_float
from bench.runs.schema import (
    DEFAULT_RUNTIME,
    ENV_JSON,
    EPOCHS_CSV,
    RESULT_COLUMNS,
    RESULTS_CSV,
    RESULTS_FORMAT_VERSION,
    RESULTS_PARQUET,
    SAMPLES_JSONL,
    STATUSES,
    SUITE_YAML,
    order_columns,
    rows_frame,
)


@dataclass(frozen=True)
class Run:
    """One run folder read back: rows, environment, raw samples, resolved suite, epochs."""

    path: Path
    rows: pd.DataFrame
    env: dict
    samples: dict[str, list[float]]
    suite: dict
    epochs: pd.DataFrame | None


def write_rows(run_dir: Path, rows: Iterable[dict]) -> pd.DataFrame:
    """Write all rows so far to results.parquet and then results.csv (each atomically)."""
    frame = rows_frame(_encodable(rows))
    parquet_ready = _parquet_safe(frame)
    atomic_write_with(run_dir / RESULTS_PARQUET, lambda tmp: parquet_ready.to_parquet(tmp))
    atomic_write_with(run_dir / RESULTS_CSV, lambda tmp: frame.to_csv(tmp, index=False))
    return frame


def _encodable(rows: Iterable[dict]) -> list[dict]:
    """Rows whose text cannot be written as UTF-8 (non-UTF-8 file names) escaped as `\\xNN`."""
    return [
        {key: escape_unencodable(v) if isinstance(v, str) else v for key, v in row.items()}
        for row in rows
    ]


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


def write_samples(
    run_dir: Path, samples: dict[str, list[float]], rounds: dict[str, list[int]] | None = None
) -> None:
    """Rewrite samples.jsonl atomically: one {"case_id", "samples_ms"} object per line, plus
    "rounds" (the round of each sample) for cases measured in interleaved rounds."""
    rounds = rounds or {}
    records = (
        {"case_id": k, "samples_ms": v, **({"rounds": rounds[k]} if k in rounds else {})}
        for k, v in samples.items()
    )
    lines = (json.dumps(record) for record in records)
    atomic_write_text(run_dir / SAMPLES_JSONL, "".join(line + "\n" for line in lines))


def write_epochs(run_dir: Path, epochs: list[dict]) -> None:
    """Write the fine-tunes' per-epoch rows to epochs.csv atomically."""
    frame = pd.DataFrame(_encodable(epochs))
    atomic_write_with(run_dir / EPOCHS_CSV, lambda tmp: frame.to_csv(tmp, index=False))


def read_rows(run_dir: Path) -> pd.DataFrame:
    """The rows of results.csv (empty frame with the schema columns if none yet)."""
    path = Path(run_dir) / RESULTS_CSV
    if not path.exists():
        return pd.DataFrame(columns=RESULT_COLUMNS)
    whole = _whole_lines(path, path.read_bytes())
    if not whole:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    try:
        frame = pd.read_csv(io.BytesIO(whole), keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: not a readable results table ({exc})") from None
    if "case_id" not in frame.columns:
        raise BenchError(f"{path}: no 'case_id' column; not a bench results table")
    frame = order_columns(_known_statuses(path, frame))
    runtime = frame["runtime"].astype(object)
    frame["runtime"] = runtime.where(runtime.notna(), DEFAULT_RUNTIME)  # runs before runtimes
    return frame


def _whole_lines(path: Path, raw: bytes) -> bytes:
    """The file's whole lines: a last line cut mid-way (no final newline) is left out, said once."""
    if not raw or raw.endswith(b"\n"):
        return raw
    cut = raw.rfind(b"\n") + 1
    if cut == 0:
        warnings.warn(f"{path}: holds only a cut header line; read as no rows", stacklevel=3)
        return b""
    fields = next(csv.reader([raw[cut:].decode("utf-8", "replace")]), [])
    case = f" (case {fields[0]!r})" if fields and fields[0] else ""
    warnings.warn(
        f"{path}: its last row{case} is torn (cut mid-line) and is ignored; "
        "`bench run --resume` measures that case again",
        stacklevel=3,
    )
    return raw[:cut]


def _known_statuses(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose status is ok, error or skipped; others (damaged) are left out, said once."""
    if "status" not in frame.columns:
        return frame
    bad = ~frame["status"].isin(STATUSES)
    if bad.any():
        cases = ", ".join(map(str, frame.loc[bad, "case_id"].head(3)))
        warnings.warn(
            f"{path}: {int(bad.sum())} row(s) with no valid status ({cases}) are damaged and "
            "ignored; `bench run --resume` measures them again",
            stacklevel=3,
        )
    return frame[~bad].reset_index(drop=True)


def incomplete_cases(rows: Iterable[dict], samples: dict[str, list[float]]) -> dict[str, str]:
    """case_id -> why, for ok rows whose stored data is incomplete (raw samples missing, short)."""
    problems = {}
    for row in rows:
        expected = as_float(row.get("n_samples"))
        if row.get("status") != "ok" or not expected:
            continue
        got = len(samples.get(str(row["case_id"]), []))
        if got != int(expected):
            problems[str(row["case_id"])] = f"{got} of its {int(expected)} raw samples stored"
    return problems


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


def read_sample_rounds(run_dir: Path) -> dict[str, list[int]]:
    """case_id -> the round of each raw sample, for cases measured in interleaved rounds."""
    path = Path(run_dir) / SAMPLES_JSONL
    if not path.exists():
        return {}
    found: dict[str, list[int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            found[str(record["case_id"])] = [int(v) for v in record["rounds"]]
        except (ValueError, KeyError, TypeError):
            continue  # no rounds (a sequential case), or a line read_samples reports
    return found


def read_epochs(run_dir: Path) -> pd.DataFrame | None:
    """The fine-tunes' per-epoch rows (None when the run has none)."""
    path = Path(run_dir) / EPOCHS_CSV
    return pd.read_csv(path) if path.exists() else None


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
    return Run(
        path=run_dir,
        rows=read_rows(run_dir),
        env=env,
        samples=read_samples(run_dir),
        suite=read_suite(run_dir),
        epochs=read_epochs(run_dir),
    )
