"""What each pending case of a run is expected to take, from its budgets, before it runs.

The CLI's progress bar sums these for its ETA (`bench.cli.progress`); the runner applies the same
`--quick` cap to the latency budget it measures with.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.runs.suite import Case

QUICK_BUDGET_S = 0.3


def case_budget(case: Case, quick: bool) -> float:
    """The case's latency budget in seconds (shrunk to QUICK_BUDGET_S by --quick)."""
    return min(case.budget_s, QUICK_BUDGET_S) if quick else case.budget_s


@dataclass(frozen=True)
class CasePlan:
    """What a pending case is expected to take: its budgets in seconds, before it runs.

    `budget_s` is the latency budget plus a fine-tune's time budget (None: a fine-tune without
    one, whose length is not known beforehand); `skipped` cases run nothing.
    """

    budget_s: float | None
    skipped: bool = False


def case_plan(case: Case, quick: bool, cuda: bool) -> CasePlan:
    """The plan of one case (`cuda`: whether this machine has CUDA)."""
    if case.device == "cuda" and not cuda:
        return CasePlan(0.0, skipped=True)
    latency = case_budget(case, quick) if "latency" in case.metrics else 0.0
    if case.kind != "finetune":
        return CasePlan(latency)
    train = dict(case.train).get("time_budget_s")
    return CasePlan(None if train is None else latency + float(train))
