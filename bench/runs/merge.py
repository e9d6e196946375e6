"""Joining run folders: the shards of one suite, or runs of one suite on several machines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.core.errors import BenchError
from bench.core.io import write_json, write_yaml
from bench.runs.folder import (
    Run,
    load_run,
    read_sample_rounds,
    write_epochs,
    write_rows,
    write_samples,
)
from bench.runs.schema import ENV_JSON, RESULTS_CSV, RESULTS_FORMAT_VERSION, SUITE_YAML


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
    rounds = {k: v for r in runs for k, v in read_sample_rounds(r.path).items()}
    write_samples(out_dir, {k: v for r in runs for k, v in r.samples.items()}, rounds)
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
