"""The runner: rows per case, error and skipped rows, resume after a real SIGKILL (whose run
folder lock is refused while it runs and taken over after it), run folders."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from bench.core.errors import BenchError
from bench.runs.folder import load_run
from bench.runs.locations import default_run_dir
from bench.runs.lock import run_folder_lock
from bench.runs.runner import Measurement, RunContext, run_suite
from bench.runs.schema import RESULTS_FORMAT_VERSION
from bench.runs.suite import Case

REPO = Path(__file__).resolve().parent.parent
TINY = """
name: tiny
defaults: {threads: 1, budget_s: 0.2}
cases:
  - name: g2
    group: G2
    models: ["g2:c=8,layers=2,size=8"]
    sweep: {groups: [1, 2, 4, 8]}
  - name: g1
    models: ["g1:c1=4,c2=8,blocks=1,size=8"]
    sweep: {batch: [1, 2]}
  - name: gpu
    devices: [cuda]
    models: ["g1:c1=4,c2=4,blocks=1,size=8"]
"""
N_CASES = 7


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    """The tiny suite as a file."""
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent(TINY).lstrip(), encoding="utf-8")
    return path


class Spy:
    """A fake measurement that records the cases it was asked for."""

    def __init__(self, fail_on: str | None = None, stop_after: int | None = None) -> None:
        self.calls: list[str] = []
        self.fail_on, self.stop_after = fail_on, stop_after

    def __call__(self, case: Case, ctx: RunContext) -> Measurement:
        if self.stop_after is not None and len(self.calls) == self.stop_after:
            raise KeyboardInterrupt  # stands in for the run being stopped
        self.calls.append(case.case_id)
        if self.fail_on and self.fail_on in case.case_id:
            raise RuntimeError(f"out of memory in {case.model}\n(second line)")
        row = {"params": 1, "mult_adds": 10 * case.batch, "throughput": 100.0, "n_samples": 2}
        return Measurement(row, [1.0, 2.0])


def run(suite_file: Path, out: Path, measure: Spy, **kwargs: object) -> Path:
    """run_suite without calibration or progress bar."""
    return run_suite(suite_file, out=out, calibrate=False, measure=measure, **kwargs)


def test_rows_env_suite_and_samples_are_written(suite_file: Path, tmp_path: Path) -> None:
    run_dir = run(suite_file, tmp_path / "run", Spy())
    loaded = load_run(run_dir)
    assert len(loaded.rows) == N_CASES and loaded.rows["case_id"].is_unique
    assert loaded.env["results_format_version"] == RESULTS_FORMAT_VERSION
    assert loaded.env["suite"] == "tiny" and loaded.env["calibration"] is None
    assert len(loaded.suite["cases"]) == N_CASES
    ok = loaded.rows[loaded.rows["status"] == "ok"]
    assert set(loaded.samples) == set(ok["case_id"])
    assert (run_dir / "results.parquet").exists()
    assert loaded.rows["hostname"].notna().all()
    assert list(ok["input"].unique()) == ["8x8x8", "4x8x8"]


def test_failing_case_becomes_an_error_row_and_the_run_goes_on(
    suite_file: Path, tmp_path: Path
) -> None:
    spy = Spy(fail_on="groups=2")
    rows = load_run(run(suite_file, tmp_path / "run", spy)).rows.set_index("case_id")
    bad = rows.loc["g2/g2:c=8,layers=2,size=8,groups=2/cpu/b1"]
    assert bad["status"] == "error"
    assert (
        bad["error"]
        == "RuntimeError: out of memory in g2:c=8,layers=2,size=8,groups=2 (second line)"
    )
    assert (rows["status"] == "ok").sum() == N_CASES - 1 - (not torch.cuda.is_available())
    assert len(spy.calls) == N_CASES - (not torch.cuda.is_available())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_cuda_case_is_skipped_without_cuda(suite_file: Path, tmp_path: Path) -> None:
    spy = Spy()
    rows = load_run(run(suite_file, tmp_path / "run", spy)).rows
    gpu = rows[rows["device"] == "cuda"].iloc[0]
    assert gpu["status"] == "skipped" and "CUDA is not available" in gpu["error"]
    assert not any("/cuda/" in call for call in spy.calls)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_case_is_measured_on_a_gpu(suite_file: Path, tmp_path: Path) -> None:
    run_dir = run_suite(suite_file, out=tmp_path / "run", filter="gpu/*", calibrate=False)
    row = load_run(run_dir).rows.iloc[0]
    assert row["status"] == "ok" and row["device"] == "cuda" and row["latency_ms_median"] > 0


def test_resume_measures_only_unfinished_cases_and_retries_errors(
    suite_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(suite_file, tmp_path / "run", Spy(fail_on="groups=1", stop_after=3))
    first = load_run(tmp_path / "run").rows
    assert len(first) == 3 and (first["status"] == "error").sum() == 1
    spy = Spy()
    run(suite_file, None, spy, resume=tmp_path / "run")
    rows = load_run(tmp_path / "run").rows
    assert len(rows) == N_CASES and rows["case_id"].is_unique
    done_before = set(first.loc[first["status"] == "ok", "case_id"])
    assert not done_before & set(spy.calls)
    assert "g2/g2:c=8,layers=2,size=8,groups=1/cpu/b1" in spy.calls  # the error row is retried
    assert (rows["status"] == "error").sum() == 0
    assert len(load_run(tmp_path / "run").env["resumes"]) == 1


def test_resume_refuses_another_suite_and_existing_out(suite_file: Path, tmp_path: Path) -> None:
    run_dir = run(suite_file, tmp_path / "run", Spy())
    with pytest.raises(BenchError, match="already holds a run"):
        run(suite_file, run_dir, Spy())
    other = suite_file.with_name("other.yaml")
    other.write_text(suite_file.read_text().replace("name: tiny", "name: other"))
    with pytest.raises(BenchError, match="run of suite 'tiny', not 'other'"):
        run(other, None, Spy(), resume=run_dir)


def test_resume_latest_finds_the_newest_run(
    suite_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BenchError, match="no run of suite 'tiny'"):
        run(suite_file, None, Spy(), resume="latest")
    with pytest.raises(KeyboardInterrupt):
        run(suite_file, None, Spy(stop_after=2))
    spy = Spy()
    run_dir = run(suite_file, None, spy, resume="latest")
    assert run_dir.parent == Path("results") / "tiny"
    assert len(load_run(run_dir).rows) == N_CASES


def test_default_run_dir_is_suite_timestamp_commit(tmp_path: Path) -> None:
    path = default_run_dir("tiny", (1, 4), root=tmp_path)
    stamp, commit, shard = path.name.split("-", 2)
    assert path.parent == tmp_path / "tiny"
    assert len(stamp) == 16 and stamp.endswith("Z") and shard == "shard1of4"
    assert len(commit) == 8 or commit == "unknown"
    path.mkdir(parents=True)
    assert default_run_dir("tiny", (1, 4), root=tmp_path) != path


def test_real_measurement_counts_and_times(suite_file: Path, tmp_path: Path) -> None:
    run_dir = run_suite(
        suite_file, out=tmp_path / "run", filter="g1/*", quick=True,
        calibrate=False,
    )  # fmt: skip
    loaded = load_run(run_dir)
    rows = loaded.rows.set_index("batch")
    assert (rows["status"] == "ok").all()
    assert rows.loc[1, "mult_adds"] == 2 * 8 * 8 * 4 * 8  # two 1x1 convs 4->8->4 on 8x8
    assert rows.loc[1, "flops"] == 2 * rows.loc[1, "mult_adds"]
    assert rows.loc[1, "params"] == 2 * 4 * 8
    assert rows.loc[2, "mult_adds"] == rows.loc[1, "mult_adds"]  # counts are per image
    for batch in (1, 2):
        row = rows.loc[batch]
        assert row["latency_ms_median"] > 0 and row["threads"] == 1
        assert row["batches_per_s"] == pytest.approx(row["throughput"] / batch)
        assert len(loaded.samples[row["case_id"]]) == row["n_samples"]


def wait_for_rows(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> int:
    """Poll results.csv until it has at least one row; return the row count seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists():
            rows = path.read_text().count("\n") - 1
            if rows >= 1:
                return rows
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.02)  # returns early if the run ends; else poll the file again
    raise AssertionError("no row landed before the subprocess ended or the timeout")


def test_sigkilled_run_resumes_without_duplicates_or_remeasuring(
    suite_file: Path, tmp_path: Path
) -> None:
    slow = suite_file.read_text().replace("budget_s: 0.2", "budget_s: 1.0")
    suite_file.write_text(slow)
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "bench", "run", str(suite_file), "--out", str(out)]
    argv += ["--no-calibrate", "--no-progress"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_rows(out / "results.csv", proc)
        refused = pytest.raises(BenchError, match=f"being written by pid {proc.pid} ")
        with refused, run_folder_lock(out):  # what a second writer (e.g. a resume) takes first
            pass
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed = load_run(out)  # every file is whole after the kill
    assert 1 <= len(killed.rows) < N_CASES
    spy = Spy()
    with pytest.warns(UserWarning, match=f"took over the lock of pid {proc.pid} "):
        run(suite_file, None, spy, resume=out)
    assert not list(out.glob(".*.tmp"))  # a temp file the kill left is gone too
    rows = load_run(out).rows
    assert len(rows) == N_CASES and rows["case_id"].is_unique
    assert not set(killed.rows["case_id"]) & set(spy.calls)
    survivors = rows[rows["case_id"].isin(killed.rows["case_id"]) & (rows["status"] == "ok")]
    assert (survivors["mult_adds"] > 0).all()  # the killed run's real rows are kept as they were
    assert json.loads((out / "env.json").read_text())["resumes"]


def test_finetune_case_runs_train_and_adds_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.runs.runner
    from bench.train import FinetuneOutcome, TrainOptions

    calls: list[tuple] = []

    def fake_finetune(
        spec: str, options: TrainOptions, run_dir: Path, device: str, data: str | None, **_: bool
    ) -> FinetuneOutcome:
        calls.append((spec, options.epochs, run_dir, device, data))
        row = {"best_val_acc": 0.75, "train_seconds": 1.5, "epochs": options.epochs}
        return FinetuneOutcome(row=row, epochs=[{"epoch": 1, "val_acc": 0.75}])

    monkeypatch.setattr(bench.runs.runner, "finetune", fake_finetune)
    suite = tmp_path / "ft.yaml"
    suite.write_text(
        "name: ft\ncases:\n  - name: tune\n    kind: finetune\n    metrics: [count]\n"
        "    models: ['g1:c1=4,c2=4,blocks=1,size=8']\n    train: {epochs: 2}\n"
    )
    run_dir = run_suite(suite, out=tmp_path / "run", data="/data/flowers", calibrate=False)
    loaded = load_run(run_dir)
    row = loaded.rows.iloc[0]
    assert calls == [("g1:c1=4,c2=4,blocks=1,size=8", 2, run_dir, "cpu", "/data/flowers")]
    assert row["status"] == "ok" and row["best_val_acc"] == 0.75 and row["epochs"] == 2
    assert row["mult_adds"] == 2 * 8 * 8 * 4 * 4
    assert loaded.epochs is not None and list(loaded.epochs["case_id"]) == [row["case_id"]]


def test_tensorboard_root_gives_each_finetune_case_its_own_log_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.runs.runner
    from bench.train import FinetuneOutcome, TrainOptions

    seen: list[str | None] = []

    def fake_finetune(
        spec: str, options: TrainOptions, run_dir: Path, device: str, data: str | None, **_: bool
    ) -> FinetuneOutcome:
        seen.append(options.tensorboard)
        return FinetuneOutcome(row={"best_val_acc": 50.0}, epochs=[])

    monkeypatch.setattr(bench.runs.runner, "finetune", fake_finetune)
    suite = tmp_path / "ft.yaml"
    suite.write_text(
        "name: ft\ncases:\n  - name: tune\n    kind: finetune\n    metrics: [count]\n"
        "    models: ['g1:c1=4,c2=4,blocks=1,size=8']\n    train: {epochs: 1}\n"
    )
    logs = tmp_path / "tb"
    run_suite(suite, out=tmp_path / "run", calibrate=False, tensorboard=str(logs))
    assert len(seen) == 1 and Path(seen[0]).parent == logs
    assert "/" not in Path(seen[0]).name and Path(seen[0]).name.startswith("tune_g1")
