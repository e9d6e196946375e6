"""The ETA of `bench run`'s progress bar, from the budgets of the cases still to run.

A case's budget bounds its warm-up and sampling (and a fine-tune's `time_budget_s` its
training); what a case takes beyond it (building, counting, preparing the runtime) is learnt
from the cases done so far. So a run whose first cases happened to be fast still shows the
minutes its remaining budgets allow, not a rate extrapolated from the fast ones.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from rich.progress import ProgressColumn, Task
from rich.text import Text

if TYPE_CHECKING:
    from bench.runs.runner import CasePlan


class BudgetEta:
    """Seconds left in a run: the remaining cases' budgets plus the overhead seen per case."""

    def __init__(
        self, plans: dict[str, CasePlan], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.plans = dict(plans)  # case id -> plan, in the order the runner measures them
        self.clock = clock
        self.case_start = clock()
        self.overheads: list[float] = []  # seconds beyond the budget, per case that ran
        self.unbudgeted: list[float] = []  # seconds of cases without a budget (fine-tunes)

    def done(self, case_id: str) -> None:
        """One case finished: learn from its duration, start timing the next."""
        now = self.clock()
        elapsed, self.case_start = now - self.case_start, now
        plan = self.plans.pop(case_id, None)
        if plan is None or plan.skipped:
            return
        if plan.budget_s is None:
            self.unbudgeted.append(elapsed)
        else:
            self.overheads.append(max(0.0, elapsed - plan.budget_s))

    def expected(self, plan: CasePlan) -> float | None:
        """Seconds one pending case should take (None: no budget and no fine-tune seen yet)."""
        if plan.skipped:
            return 0.0
        overhead = statistics.fmean(self.overheads) if self.overheads else 0.0
        if plan.budget_s is not None:
            return plan.budget_s + overhead
        return statistics.fmean(self.unbudgeted) if self.unbudgeted else None

    def remaining(self) -> float | None:
        """Seconds left (the running case's own time counts down); None when unknown."""
        expected = [self.expected(plan) for plan in self.plans.values()]
        if any(seconds is None for seconds in expected):
            return None
        if not expected:
            return 0.0
        first, *rest = expected
        running = max(0.0, first - (self.clock() - self.case_start))
        return running + sum(rest)


class EtaColumn(ProgressColumn):
    """'ETA 0:03:10' from a BudgetEta ('ETA ?' while a case's length is unknown)."""

    def __init__(self) -> None:
        super().__init__()
        self.eta: BudgetEta | None = None

    def render(self, task: Task) -> Text:
        """The remaining time, whole seconds."""
        left = None if self.eta is None else self.eta.remaining()
        shown = "?" if left is None else str(timedelta(seconds=round(left)))
        return Text(f"ETA {shown}", style="progress.remaining")
