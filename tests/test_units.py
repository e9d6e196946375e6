"""Interleaved units in the runner: grouping, whole units on shards and resume, re-measurement
under contention (a fake probe), trust columns, and the round of every raw sample on disk."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from bench.measure.contention import Contention
from bench.runs.folder import load_run, read_sample_rounds
from bench.runs.runner import Measurement, RunContext, run_suite
from bench.runs.suite import Case, load_suite
from bench.runs.units import plan_units, shard_units, trust_columns, with_remeasures

SUITE = """
name: units
defaults: {threads: 1, budget_s: 0.2, interleave: true}
cases:
  - name: col
    group: G2
    models:
      - {model: "g2:c=8,layers=2,size=8,groups=1", ref: {column: x1, config: g1}}
      - {model: "g2:c=8,layers=2,size=8,groups=2", ref: {column: x1, config: g2}}
      - {model: "g2:c=8,layers=2,size=8,groups=4", ref: {column: x1, config: g4}}
      - {model: "g2:c=16,layers=2,size=8,groups=1", ref: {column: x2, config: g1}}
      - {model: "g2:c=16,layers=2,size=8,groups=2", ref: {column: x2, config: g2}}
  - name: alone
    interleave: false
    models: ["g1:c1=4,c2=8,blocks=1,size=8"]
"""


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "units.yaml"
    path.write_text(textwrap.dedent(SUITE).lstrip(), encoding="utf-8")
    return path


class FakeProbe:
    """Hands out watches that report the given contention figures in turn."""

    def __init__(self, figures: list[float]) -> None:
        self.figures = list(figures)
        self.used = 0

    def __call__(self) -> FakeWatch:
        figure = self.figures[min(self.used, len(self.figures) - 1)]
        self.used += 1
        return FakeWatch(figure)


class FakeWatch:
    def __init__(self, figure: float) -> None:
        self.figure, self.result = figure, None

    def __enter__(self) -> FakeWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = Contention(self.figure, self.figure, 0.0, self.figure, 1.5, 2)


def latency(cv: float = 0.01, ratio: float | None = None) -> dict:
    row = {"latency_ms_median": 1.0, "cv": cv, "stop_reason": "converged", "n_samples": 3}
    if ratio is not None:
        row.update(paired_ratio=ratio, paired_low=ratio * 0.99, paired_high=ratio * 1.01, rounds=1)
    return row


class Recorder:
    """Fake measurements of single cases and of units; records what it was asked for."""

    def __init__(self) -> None:
        self.singles: list[str] = []
        self.groups: list[list[str]] = []

    def single(self, case: Case, ctx: RunContext) -> Measurement:
        self.singles.append(case.case_id)
        return Measurement(latency(cv=0.3), [1.0, 1.0, 1.0])

    def group(self, cases: list[Case], ctx: RunContext) -> list[Measurement]:
        self.groups.append([c.case_id for c in cases])
        return [
            Measurement(latency(ratio=1.0 / (i + 1)), [1.0, 1.1, 1.2], [], [0, 0, 1])
            for i in range(len(cases))
        ]


def run(suite_file: Path, out: Path, rec: Recorder, probe: FakeProbe, **kw: object) -> Path:
    return run_suite(
        suite_file, out=out, calibrate=False, measure=rec.single, group=rec.group,
        probe=probe, **kw,
    )  # fmt: skip


def test_units_are_table_columns_of_interleaved_cases(suite_file: Path) -> None:
    units = plan_units(load_suite(suite_file).cases)
    assert [len(u) for u in units] == [3, 2, 1]
    assert {dict(c.ref)["column"] for c in units[0]} == {"x1"}


def test_the_guidelines_suite_has_one_unit_per_table_column_and_device() -> None:
    units = plan_units(load_suite("suites/guidelines.yaml").cases)
    assert len(units) == 24 and sum(len(u) for u in units) == 102
    assert sorted({len(u) for u in units}) == [4, 5]


def test_shards_never_split_a_unit(suite_file: Path) -> None:
    units = plan_units(load_suite(suite_file).cases)
    shard0 = [c.case_id for c in shard_units(units, (0, 2))]
    shard1 = [c.case_id for c in shard_units(units, (1, 2))]
    assert len(shard0) == 4 and len(shard1) == 2 and not set(shard0) & set(shard1)


def test_rows_carry_paired_ratios_trust_and_the_rounds_of_samples(
    suite_file: Path, tmp_path: Path
) -> None:
    rec = Recorder()
    run_dir = run(suite_file, tmp_path / "run", rec, FakeProbe([0.0]))
    assert [len(g) for g in rec.groups] == [3, 2] and len(rec.singles) == 1
    rows = load_run(run_dir).rows.set_index("model")
    first = rows.loc["g2:c=8,layers=2,size=8,groups=1"]
    third = rows.loc["g2:c=8,layers=2,size=8,groups=4"]
    assert first["paired_ratio"] == 1.0 and third["paired_ratio"] == pytest.approx(1 / 3)
    assert third["rounds"] == 1 and third["remeasured"] == 0 and not third["noisy"]
    alone = rows.loc["g1:c1=4,c2=8,blocks=1,size=8"]
    assert alone["noisy"] and alone["noise"] == "cv 30%"  # a CV of 30% is marked
    assert pd.isna(alone["paired_ratio"])
    rounds = read_sample_rounds(run_dir)
    assert len(rounds) == 5 and all(r == [0, 0, 1] for r in rounds.values())


def test_a_contended_unit_is_measured_again_and_stays_noisy(
    suite_file: Path, tmp_path: Path
) -> None:
    rec = Recorder()
    probe = FakeProbe([0.9, 0.5, 0.7, 0.0])  # the first unit: three tries, all busy
    run_dir = run(suite_file, tmp_path / "run", rec, probe, filter="col/*")
    rows = load_run(run_dir).rows
    busy = rows[rows["model"].str.contains("c=8,")]
    assert len(rec.groups) == 4  # the first unit 3 times, the second once
    assert (busy["remeasured"] == 2).all() and busy["noisy"].all()
    assert (busy["contention"] == 0.5).all()  # the least contended attempt is kept
    assert busy["noise"].str.contains("busy machine").all()
    quiet = rows[rows["model"].str.contains("c=16,")]
    assert (quiet["remeasured"] == 0).all() and not quiet["noisy"].any()


def test_resume_measures_a_whole_unit_when_one_member_is_pending(
    suite_file: Path, tmp_path: Path
) -> None:
    rec = Recorder()
    run_dir = run(suite_file, tmp_path / "run", rec, FakeProbe([0.0]))
    csv = run_dir / "results.csv"
    frame = pd.read_csv(csv)
    frame = frame[frame["model"] != "g2:c=8,layers=2,size=8,groups=2"]
    frame.to_csv(csv, index=False)
    again = Recorder()
    run(suite_file, None, again, FakeProbe([0.0]), resume=run_dir)
    assert [len(g) for g in again.groups] == [3] and again.singles == []
    assert len(load_run(run_dir).rows) == 6


def test_a_failing_unit_is_measured_one_case_at_a_time(suite_file: Path, tmp_path: Path) -> None:
    rec = Recorder()

    def broken(cases: list[Case], ctx: RunContext) -> list[Measurement]:
        raise RuntimeError("one model cannot be built")

    run_suite(
        suite_file, out=tmp_path / "run", calibrate=False, measure=rec.single, group=broken,
        probe=FakeProbe([0.0]),
    )  # fmt: skip
    assert len(rec.singles) == 6


def test_remeasures_are_bounded_and_keep_the_least_contended() -> None:
    calls = []
    outcome, found, remeasured, contended = with_remeasures(
        lambda: calls.append(1) or len(calls), FakeProbe([0.9, 0.3, 0.6]), limit=0.25
    )
    assert (outcome, found.contention, remeasured, contended) == (2, 0.3, 2, True)
    outcome, found, remeasured, contended = with_remeasures(
        lambda: "x", FakeProbe([0.9, 0.1]), limit=0.25
    )
    assert (found.contention, remeasured, contended) == (0.1, 1, False)


def test_trust_columns_of_error_rows_carry_no_verdict() -> None:
    found = Contention(0.1, 0.2, 0.0, 0.1, 1.0, 1)
    columns = trust_columns({"status": "error"}, found, 0, False)
    assert columns == {"remeasured": 0, "contention": 0.1, "foreign_cpus": 0.2, "load_avg": 1.0}
    wide = {**latency(), "status": "ok", "stop_reason": "budget", "rel_halfwidth": 0.2}
    assert trust_columns(wide, None, 0, False)["noise"] == "budget spent, median interval +-20%"
    paired = {**latency(ratio=0.5), "status": "ok"}
    assert trust_columns(paired, found, 0, False)["noisy"] is False
    paired["paired_high"] = 0.555  # half-width 6%
    assert trust_columns(paired, found, 0, False)["noise"] == "paired ratio interval +-6%"


def test_merging_shards_keeps_the_rounds_of_samples(suite_file: Path, tmp_path: Path) -> None:
    from bench.runs.merge import merge_runs

    shards = [
        run(suite_file, tmp_path / f"s{k}", Recorder(), FakeProbe([0.0]), shard=f"{k}/2")
        for k in range(2)
    ]
    merged = merge_runs(shards, tmp_path / "all")
    assert len(load_run(merged).rows) == 6 and len(read_sample_rounds(merged)) == 5
