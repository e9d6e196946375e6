"""The progress bar's ETA: from the budgets of the cases left (fake clock), and case plans."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from bench.cli.progress import BudgetEta, EtaColumn
from bench.runs.runner import CasePlan, Measurement, RunContext, case_plan, run_suite
from bench.runs.suite import Case, load_suite

SUITE = """
name: eta
defaults: {threads: 1, budget_s: 5}
cases:
  - name: blocks
    models: ["g1:c1=4,c2=8,blocks=1,size=8"]
    sweep: {batch: [1, 2]}
  - name: gpu
    devices: [cuda]
    models: ["g1:c1=4,c2=4,blocks=1,size=8"]
"""


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cases(tmp_path: Path) -> list[Case]:
    """Two CPU cases with a 5 s budget and one CUDA case."""
    path = tmp_path / "eta.yaml"
    path.write_text(textwrap.dedent(SUITE).lstrip(), encoding="utf-8")
    return list(load_suite(path).cases)


def test_eta_is_the_sum_of_the_remaining_budgets_before_any_case() -> None:
    clock = FakeClock()
    plans = {"a": CasePlan(60.0), "b": CasePlan(60.0), "c": CasePlan(60.0)}
    assert BudgetEta(plans, clock).remaining() == 180.0


def test_fast_early_cases_do_not_shrink_the_eta_of_long_ones() -> None:
    clock = FakeClock()
    plans = {f"fast{k}": CasePlan(1.0) for k in range(10)}
    plans |= {"slow1": CasePlan(60.0), "slow2": CasePlan(60.0)}
    eta = BudgetEta(plans, clock)
    for k in range(10):  # each fast case takes 0.5 s: half its budget
        clock.now += 0.5
        eta.done(f"fast{k}")
    assert eta.remaining() == pytest.approx(120.0)  # a pace-based ETA would say 1 s


def test_overhead_beyond_the_budget_is_learnt_and_the_running_case_counts_down() -> None:
    clock = FakeClock()
    eta = BudgetEta({"a": CasePlan(10.0), "b": CasePlan(10.0), "c": CasePlan(10.0)}, clock)
    clock.now += 12.0  # 2 s of building and counting beyond the budget
    eta.done("a")
    assert eta.remaining() == pytest.approx(24.0)
    clock.now += 5.0  # half-way through b
    assert eta.remaining() == pytest.approx(19.0)
    clock.now += 30.0  # b overruns: its part never goes below zero
    assert eta.remaining() == pytest.approx(12.0)


def test_skipped_cases_cost_nothing_and_unknown_fine_tunes_are_learnt() -> None:
    clock = FakeClock()
    plans = {"gpu": CasePlan(0.0, skipped=True), "tune1": CasePlan(None), "tune2": CasePlan(None)}
    eta = BudgetEta(plans, clock)
    assert eta.remaining() is None  # no fine-tune seen yet: unknown
    clock.now += 0.1
    eta.done("gpu")
    clock.now += 40.0
    eta.done("tune1")
    assert eta.remaining() == pytest.approx(40.0)
    assert eta.overheads == []  # a skipped case teaches nothing about overhead


def test_eta_column_renders_whole_seconds_and_unknown() -> None:
    column = EtaColumn()
    assert column.render(None).plain == "ETA ?"  # type: ignore[arg-type]
    column.eta = BudgetEta({"a": CasePlan(190.4)}, FakeClock())
    assert column.render(None).plain == "ETA 0:03:10"  # type: ignore[arg-type]


def test_case_plans_use_budgets_quick_and_cuda(cases: list[Case]) -> None:
    cpu, _, gpu = cases
    assert case_plan(cpu, quick=False, cuda=False) == CasePlan(5.0)
    assert case_plan(cpu, quick=True, cuda=False).budget_s == pytest.approx(0.3)
    assert case_plan(gpu, quick=False, cuda=False) == CasePlan(0.0, skipped=True)
    assert case_plan(gpu, quick=False, cuda=True) == CasePlan(5.0)
    tune = dataclasses.replace(cpu, kind="finetune", metrics=(), train=(("epochs", 2),))
    assert case_plan(tune, quick=False, cuda=False) == CasePlan(None)
    timed = dataclasses.replace(tune, train=(("time_budget_s", 30.0),))
    assert case_plan(timed, quick=False, cuda=False) == CasePlan(30.0)


class Recorder:
    """An observer that keeps what the runner told it."""

    def __init__(self) -> None:
        self.plans: dict[str, CasePlan] = {}
        self.done: list[str] = []

    def started(self, run_dir: Path, pending: int, total: int, plans: dict) -> None:
        self.plans = plans

    def case_done(self, case: Case, row: dict[str, Any]) -> None:
        self.done.append(case.case_id)


def test_the_runner_tells_the_observer_every_pending_plan(tmp_path: Path) -> None:
    path = tmp_path / "eta.yaml"
    path.write_text(textwrap.dedent(SUITE).lstrip(), encoding="utf-8")

    def measure(case: Case, ctx: RunContext) -> Measurement:
        return Measurement({"params": 1}, None)

    observer = Recorder()
    run_suite(path, out=tmp_path / "run", calibrate=False, measure=measure, observer=observer)
    assert list(observer.plans) == observer.done and len(observer.done) == 3
    gpu = next(plan for cid, plan in observer.plans.items() if "cuda" in cid)
    assert gpu.skipped is not torch.cuda.is_available()


def test_bench_run_shows_the_budget_eta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bench.cli import common
    from bench.cli.app import app

    monkeypatch.setattr(common.stderr, "width", 200)  # the bar's line, uncut

    path = tmp_path / "eta.yaml"
    path.write_text(textwrap.dedent(SUITE).lstrip(), encoding="utf-8")
    out = tmp_path / "run"
    args = ["run", str(path), "--out", str(out), "--quick", "--no-calibrate", "--filter", "*b1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "case 2/2" in result.stderr and "ETA 0:00:00" in result.stderr
