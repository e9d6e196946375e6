"""Run folders: atomic writes, load_run, merge, and the guideline summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.analysis.guidelines import SPEARMAN_MIN, guideline_summaries, guideline_verdicts
from bench.core.errors import BenchError
from bench.core.io import atomic_write_text, atomic_write_with, write_json
from bench.runs.folder import load_run, write_rows, write_samples
from bench.runs.merge import merge_runs
from bench.runs.schema import RESULT_COLUMNS, RESULTS_FORMAT_VERSION


def make_run(path: Path, case_ids: list[str], host: str = "a", version: int = 1) -> Path:
    """A minimal run folder with one ok row per case id."""
    rows = [
        {"case_id": cid, "suite": "s", "status": "ok", "params": 10, "hostname": host}
        for cid in case_ids
    ]
    write_rows(path, rows)
    write_samples(path, {cid: [1.0, 2.0] for cid in case_ids})
    write_json(path / "env.json", {"results_format_version": version, "suite": "s", "shard": None})
    return path


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    atomic_write_text(target, "old,complete\n")

    def torn(tmp: Path) -> None:
        tmp.write_text("new,half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(target, torn)
    assert target.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_rows_round_trip_with_schema_order_and_whole_numbers(tmp_path: Path) -> None:
    rows = [
        {"case_id": "a", "status": "ok", "params": 12, "ref_z": 1.5, "extra": "x", "batch": 1},
        {"case_id": "b", "status": "error", "error": "boom", "batch": 8, "threads": None},
    ]
    write_rows(tmp_path, rows)
    loaded = load_run(make_env(tmp_path)).rows
    assert list(loaded.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert list(loaded.columns[len(RESULT_COLUMNS) :]) == ["extra", "ref_z"]
    assert "12," in (tmp_path / "results.csv").read_text()  # not 12.0
    assert loaded["params"].iloc[0] == 12 and pd.isna(loaded["params"].iloc[1])
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 2


def make_env(path: Path, version: int = RESULTS_FORMAT_VERSION) -> Path:
    """Add an env.json to a folder."""
    write_json(path / "env.json", {"results_format_version": version, "suite": "s"})
    return path


def test_parquet_accepts_mixed_value_columns(tmp_path: Path) -> None:
    write_rows(tmp_path, [{"case_id": "a", "ref_x": 1}, {"case_id": "b", "ref_x": "n/a"}])
    assert list(pd.read_parquet(tmp_path / "results.parquet")["ref_x"]) == ["1", "n/a"]


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(BenchError, match="not a run folder"):
        load_run(tmp_path)
    make_run(tmp_path / "old", ["a"], version=0)
    with pytest.raises(BenchError, match="results_format_version 0 is not supported"):
        load_run(tmp_path / "old")
    run_dir = make_run(tmp_path / "bad", ["a"])
    (run_dir / "samples.jsonl").write_text('{"case_id": "a"}\n')
    with pytest.raises(BenchError, match=r"samples.jsonl:1: bad samples line"):
        load_run(run_dir)


def test_load_run_reads_samples_env_and_epochs(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "r", ["a", "b"])
    pd.DataFrame([{"case_id": "a", "epoch": 1, "val_acc": 0.5}]).to_csv(run_dir / "epochs.csv")
    run = load_run(run_dir)
    assert run.samples == {"a": [1.0, 2.0], "b": [1.0, 2.0]}
    assert run.env["suite"] == "s" and run.suite == {}
    assert run.epochs is not None and run.epochs["val_acc"].iloc[0] == 0.5


def test_merge_joins_shards_and_records_sources(tmp_path: Path) -> None:
    one = make_run(tmp_path / "one", ["a", "c"], host="h1")
    two = make_run(tmp_path / "two", ["b"], host="h2")
    merged = load_run(merge_runs([one, two], tmp_path / "merged"))
    assert sorted(merged.rows["case_id"]) == ["a", "b", "c"]
    assert set(merged.rows["hostname"]) == {"h1", "h2"}
    assert set(merged.samples) == {"a", "b", "c"}
    sources = json.loads((tmp_path / "merged" / "env.json").read_text())["merged_from"]
    assert [s["hostname"] for s in sources] == [None, None]  # env.json here has no hostname
    assert [Path(s["path"]).name for s in sources] == ["one", "two"]


def test_merge_refusals(tmp_path: Path) -> None:
    one = make_run(tmp_path / "one", ["a"])
    with pytest.raises(BenchError, match="case id 'a' occurs in more than one run"):
        merge_runs([one, make_run(tmp_path / "dup", ["a"])], tmp_path / "m1")
    with pytest.raises(BenchError, match="results_format_version 2"):
        merge_runs([one, make_run(tmp_path / "v2", ["b"], version=2)], tmp_path / "m2")
    with pytest.raises(BenchError, match="already holds a run"):
        merge_runs([one], one)
    with pytest.raises(BenchError, match="at least one"):
        merge_runs([], tmp_path / "m3")


def guideline_frame(ours: list[float], paper: list[float], unit: str = "images/s") -> pd.DataFrame:
    """Rows of one guideline column: configs c0.. with our and the paper's throughput."""
    batch = 8 if unit == "batches/s" else 1
    return pd.DataFrame(
        {
            "case_id": [f"g/c{i}" for i in range(len(ours))],
            "group": "G1",
            "device": "cpu",
            "status": "ok",
            "batch": batch,
            "throughput": [v * batch for v in ours],
            "batches_per_s": ours,
            "ref_throughput": paper,
            "ref_unit": unit,
            "ref_config": [f"c{i}" for i in range(len(ours))],
            "ref_column": "x1",
            "ref_platform": "arm",
        }
    )


def test_summary_reproduced_when_orderings_agree() -> None:
    (summary,) = guideline_summaries(guideline_frame([40.0, 30.0, 20.0, 10.0], [4, 3, 2.5, 1]))
    assert summary.spearman == pytest.approx(1.0) and summary.reproduced is True
    assert summary.ratio_ours == pytest.approx(4.0) and summary.ratio_paper == pytest.approx(4.0)
    assert list(summary.table.columns) == [
        "config",
        "ours",
        "paper",
        "ours_norm",
        "paper_norm",
        "unit",
        "doubtful",
        "ours_norm_low",
        "ours_norm_high",
    ]
    assert list(summary.table["ours_norm"]) == [1.0, 0.75, 0.5, 0.25]
    assert not summary.table["doubtful"].any()
    assert "reproduced" in summary.sentence and "c0 is fastest" in summary.sentence
    assert (summary.guideline, summary.device, summary.column) == ("G1", "cpu", "x1")


def test_summary_not_reproduced_when_fastest_differs() -> None:
    (summary,) = guideline_summaries(guideline_frame([10.0, 30.0, 20.0, 5.0], [4, 3, 2, 1]))
    assert summary.spearman is not None and summary.spearman < SPEARMAN_MIN
    assert summary.reproduced is False
    assert "not reproduced" in summary.sentence and "fastest here c1" in summary.sentence


def test_summary_uses_batches_per_s_for_gpu_tables() -> None:
    (summary,) = guideline_summaries(guideline_frame([3.0, 2.0, 1.0], [3, 2, 1], "batches/s"))
    assert list(summary.table["ours"]) == [3.0, 2.0, 1.0]
    assert set(summary.table["unit"]) == {"batches/s"}


def test_summary_undecided_with_too_few_measurements() -> None:
    frame = guideline_frame([3.0, 2.0, 1.0], [3, 2, 1])
    frame.loc[1:, "status"] = "skipped"
    (summary,) = guideline_summaries(frame)
    assert summary.spearman is None and summary.reproduced is None
    assert "undecided" in summary.sentence
    assert guideline_verdicts([summary]) == ["G1 on cpu: undecided (too few measured configs)."]
    frame["status"] = "skipped"
    (skipped,) = guideline_summaries(frame)
    assert guideline_verdicts([skipped]) == ["G1 on cpu: not measured (every case skipped/failed)."]


def test_summary_ignores_non_guideline_rows() -> None:
    frame = guideline_frame([3.0, 2.0, 1.0], [3, 2, 1])
    frame["group"] = "ResNet"
    assert guideline_summaries(frame) == []
    assert guideline_summaries(pd.DataFrame({"case_id": ["a"]})) == []


def test_verdicts_count_columns_per_guideline() -> None:
    good = guideline_frame([3.0, 2.0, 1.0], [3, 2, 1])
    bad = guideline_frame([1.0, 2.0, 3.0], [3, 2, 1]).assign(ref_column="x2")
    (sentence,) = guideline_verdicts(guideline_summaries(pd.concat([good, bad])))
    assert sentence.startswith("G1 on cpu: partly reproduced: 1 of 2 columns (x1)")
