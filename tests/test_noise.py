"""Trust in the tables: paired ratios in guideline summaries, 'not judged' verdicts, row marks."""

from __future__ import annotations

import pandas as pd

from bench.analysis.guidelines import guideline_summaries, guideline_verdicts
from bench.analysis.noise import is_doubtful, row_mark, trust_sentence

PAPER = [40.0, 35.0, 32.9, 27.8]  # G2 x1 on ARM: g=1 fastest


def column(ours: list[float], paired: list[float] | None, noisy: list[bool]) -> pd.DataFrame:
    """One guideline column of rows (G2 x1 on cpu), optionally with paired ratios."""
    rows = []
    for i, (mine, ref, bad) in enumerate(zip(ours, PAPER, noisy, strict=True)):
        row = {
            "group": "G2", "device": "cpu", "status": "ok", "throughput": mine,
            "ref_throughput": ref, "ref_config": f"g={2**i}", "ref_column": "x1",
            "ref_unit": "images/s", "ref_platform": "arm", "stop_reason": "converged",
            "noisy": bad, "noise": "cv 30%" if bad else None, "remeasured": 1 if bad else 0,
            "model": f"g2:groups={2**i}",
        }  # fmt: skip
        if paired is not None:
            row.update(
                paired_ratio=paired[i], paired_low=paired[i] * 0.99,
                paired_high=paired[i] * 1.01, rounds=20,
            )  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def test_paired_ratios_rank_a_column_a_burst_reordered() -> None:
    # Measured one after the other, a burst made g=2 look slowest; paired by round it is not.
    rows = column([100.0, 20.0, 60.0, 50.0], [1.0, 0.8, 0.6, 0.5], [False] * 4)
    (summary,) = guideline_summaries(rows)
    assert summary.paired and summary.spearman == 1.0 and summary.reproduced
    assert list(summary.table["ours_norm"]) == [1.0, 0.8, 0.6, 0.5]
    sequential = guideline_summaries(rows.drop(columns=["paired_ratio"]))[0]
    assert not sequential.paired and sequential.spearman < 0.8


def test_a_column_with_noisy_rows_is_not_judged() -> None:
    rows = column([100.0, 80.0, 60.0, 50.0], None, [True, False, True, True])
    (summary,) = guideline_summaries(rows)
    assert summary.reproduced is None
    assert summary.sentence.endswith("not judged: 3 of 4 rows noisy.")
    (verdict,) = guideline_verdicts([summary])
    assert verdict.startswith("G2 on cpu: not judged: 1 of 1 columns have noisy rows")


def test_paired_rows_are_doubted_by_their_interval_not_their_cv() -> None:
    rows = column([100.0, 80.0, 60.0, 50.0], [1.0, 0.8, 0.6, 0.5], [True] * 4)
    assert not any(is_doubtful(r) for _, r in rows.iterrows())
    (summary,) = guideline_summaries(rows)
    assert summary.reproduced is True  # the paired intervals are +-1%
    wide = rows.assign(paired_high=rows["paired_ratio"] * 1.2)
    assert guideline_summaries(wide)[0].reproduced is None


def test_marks_and_the_trust_sentence() -> None:
    rows = column([100.0, 80.0, 60.0, 50.0], None, [False, True, False, False])
    rows.loc[2, "stop_reason"] = "budget"
    assert [row_mark(r) for _, r in rows.iterrows()] == ["", "noisy", "budget", ""]
    assert trust_sentence(rows) == (
        "4 timed case(s): 1 re-measured (busy machine), 1 noisy, 1 stopped on the budget; "
        "e.g. g2:groups=2: cv 30%."
    )
    assert trust_sentence(rows.drop(columns=["noisy"])) is None


def test_bench_time_says_why_its_number_cannot_be_trusted() -> None:
    from bench.cli.timing import untrusted
    from bench.measure.contention import Contention

    quiet = {"cv": 0.01, "stop_reason": "converged", "rel_halfwidth": 0.01}
    assert untrusted(quiet, None) == []
    busy = Contention(0.6, 1.5, 0.0, 0.6, 3.0, 4)
    assert untrusted({**quiet, "cv": 0.3}, busy) == ["cv 30%", "busy machine (0.60 CPUs taken)"]
    spent = {**quiet, "stop_reason": "budget", "rel_halfwidth": None}
    assert untrusted(spent, None) == ["budget spent, median interval none"]
