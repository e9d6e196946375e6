"""Where run folders go: the default folder of a new run, and the folder a resume continues."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.core.errors import BenchError
from bench.measure.env import git_commit
from bench.runs.folder import check_format_version, latest_run, read_json
from bench.runs.schema import ENV_JSON
from bench.runs.suite import Suite

RESULTS_DIR = Path("results")


def default_run_dir(suite: str, shard: tuple[int, int] | None, root: Path = RESULTS_DIR) -> Path:
    """results/<suite>/<UTC timestamp>-<commit8>[-shardKofN], made unique if taken."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{git_commit()[:8]}" + (f"-shard{shard[0]}of{shard[1]}" if shard else "")
    path, n = root / suite / name, 2
    while path.exists():
        path, n = root / suite / f"{name}-{n}", n + 1
    return path


def latest_run_dir(suite: str, root: Path = RESULTS_DIR) -> Path:
    """The newest run folder of a suite under results/ (BenchError if there is none)."""
    if not any((p / ENV_JSON).is_file() for p in (root / suite).glob("*")):
        raise BenchError(f"--resume latest: no run of suite {suite!r} under {root / suite}")
    return latest_run(root / suite)


def resume_dir(suite: Suite, resume: str | Path) -> Path:
    """The run folder to resume ('latest' or a path), checked to be a run of this suite."""
    run_dir = latest_run_dir(suite.name) if str(resume) == "latest" else Path(resume)
    env = read_json(run_dir / ENV_JSON)
    if not env:
        raise BenchError(f"--resume {str(run_dir)!r}: not a run folder (no {ENV_JSON})")
    check_format_version(run_dir / ENV_JSON, env)
    if env.get("suite") != suite.name:
        raise BenchError(
            f"--resume {str(run_dir)!r}: that is a run of suite {env.get('suite')!r}, "
            f"not {suite.name!r}"
        )
    return run_dir
