"""Committed baselines for the regression gate: a run's files copied into results/baselines/."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.core.errors import BenchError
from bench.core.io import disk_full_error
from bench.runs.folder import read_json
from bench.runs.schema import ENV_JSON, RESULTS_CSV, SAMPLES_JSONL, SUITE_YAML

BASELINE_FILES = (RESULTS_CSV, SAMPLES_JSONL, ENV_JSON, SUITE_YAML)
BASELINES_ROOT = Path("results/baselines")


def baseline_dir(run_dir: Path, suite: Path) -> Path:
    """results/baselines/<suite name> (the name recorded in env.json, else the file's stem)."""
    return BASELINES_ROOT / str(read_json(run_dir / ENV_JSON).get("suite") or suite.stem)


def copy_baseline(run_dir: Path, target: Path) -> None:
    """Replace `target` by a copy of the run's baseline files (built aside, then swapped in)."""
    if not (run_dir / RESULTS_CSV).is_file():
        raise BenchError(f"{run_dir} has no {RESULTS_CSV}; the suite produced no results")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a committed baseline is plain files
    for name in BASELINE_FILES:
        if (run_dir / name).is_file():
            try:
                shutil.copyfile(run_dir / name, staging / name)
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise disk_full_error(target / name, exc) or exc from None
            (staging / name).chmod(0o644)
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old)
    else:
        staging.rename(target)
