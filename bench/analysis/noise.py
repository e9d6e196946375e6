"""How far a run's numbers can be trusted: re-measured and noisy rows, and the marks tables show.

The runner writes `remeasured` (re-measurements after contention), `noisy` and `noise` (why,
`bench.measure.trust`) per row. A row's mark is `noisy` when it is, else `budget` when it only
stopped on its budget; a guideline comparison doubts a row when its round-paired ratio's interval
is wide (rows measured in rounds) or when it is noisy (rows measured alone).
"""

from __future__ import annotations

import pandas as pd

from bench.core.values import is_missing
from bench.measure.trust import PAIRED_LIMIT, paired_halfwidth

NOISY_MARK = "noisy"
BUDGET_MARK = "budget"


def _truthy(value: object) -> bool:
    """A boolean cell (CSV gives True/False, 'True'/'False', NaN)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return not is_missing(value) and bool(value)


def row_mark(row: pd.Series | dict) -> str:
    """'noisy', 'budget' (stopped on the budget, interval within bounds) or ''."""
    if row.get("status") != "ok":
        return ""
    if _truthy(row.get("noisy")):
        return NOISY_MARK
    return BUDGET_MARK if row.get("stop_reason") == "budget" else ""


def is_doubtful(row: pd.Series | dict) -> bool:
    """Whether a guideline comparison should doubt this row's throughput ratio."""
    if row.get("status") != "ok":
        return False
    if not is_missing(row.get("paired_ratio")):
        width = paired_halfwidth(
            row.get("paired_ratio"), row.get("paired_low"), row.get("paired_high")
        )
        return width is None or width > PAIRED_LIMIT
    return _truthy(row.get("noisy"))


def noisy_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The ok rows marked noisy (none when the run has no noise columns)."""
    if "noisy" not in rows.columns or rows.empty:
        return rows.iloc[0:0]
    return rows[(rows["status"] == "ok") & rows["noisy"].map(_truthy)]


def trust_sentence(rows: pd.DataFrame) -> str | None:
    """'51 timed cases: 12 re-measured (busy machine), 4 noisy: cv 18%, ...' (None: no data)."""
    if "noisy" not in rows.columns:
        return None
    timed = rows[(rows.get("status") == "ok") & rows["noisy"].map(lambda v: not is_missing(v))]
    if timed.empty:
        return None
    counts = timed["remeasured"] if "remeasured" in timed else pd.Series(0, index=timed.index)
    remeasured = int((pd.to_numeric(counts, errors="coerce").fillna(0) > 0).sum())
    noisy = noisy_rows(timed)
    budget = int((timed["stop_reason"] == "budget").sum()) if "stop_reason" in timed else 0
    text = (
        f"{len(timed)} timed case(s): {remeasured} re-measured (busy machine), "
        f"{len(noisy)} noisy, {budget} stopped on the budget"
    )
    if len(noisy):
        text += f"; e.g. {noisy.iloc[0]['model']}: {noisy.iloc[0].get('noise')}"
    return text + "."
