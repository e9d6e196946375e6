"""Report figures: colours per guideline/family, few labels, honest roof, bar intervals, legends."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from fixtures.run_folder import fixture_env, full_run, guideline_rows

from bench.analysis.guidelines import guideline_summaries
from bench.measure.stats import median_ci
from bench.report import document, figures, plots, runtime_section
from bench.runs.folder import Run


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[plt.Figure]:
    """Figures the drawing functions made, kept open instead of saved."""
    kept: list[plt.Figure] = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: kept.append(fig) or path)
    yield kept
    for fig in kept:
        plt.close(fig)


def cloud(n: int = 40) -> pd.DataFrame:
    """n points on a noisy power law, as a latency-vs-cost scatter has."""
    rng = np.random.default_rng(0)
    x = np.geomspace(1e7, 1e10, n)
    y = x**0.8 / 1e6 * rng.uniform(0.7, 1.3, n)
    return pd.DataFrame({"x": x, "y": y, "label": [f"m{k}" for k in range(n)], "group": "a"})


def test_labels_go_to_the_extremes_and_the_front_only() -> None:
    points = cloud()
    front = pd.Series(plots.efficient_front(points), index=points.index)
    mask = plots.label_mask(points, front)
    assert 4 <= mask.sum() <= plots.MAX_LABELS < len(points)
    assert mask[points["x"].idxmin()] and mask[points["x"].idxmax()]  # first in priority
    for index in (points["y"].idxmin(), points["y"].idxmax()):  # labelled, or next to a label
        assert mask[index] or any(
            plots.apart(points, [k, index]) == [k] for k in points.index[mask]
        )
    assert not (mask & ~front).drop([points["x"].idxmin(), points["x"].idxmax(),
                                     points["y"].idxmin(), points["y"].idxmax()]).any()  # fmt: skip


def test_the_front_keeps_cases_nothing_beats() -> None:
    points = pd.DataFrame({"x": [1.0, 2.0, 3.0, 2.5], "y": [1.0, 1.5, 2.0, 3.0]})
    assert list(plots.efficient_front(points)) == [True, True, True, False]  # 2.5 is beaten


def test_crowded_points_get_one_label() -> None:
    points = pd.DataFrame({"x": [1.0, 1.01, 100.0], "y": [1.0, 1.01, 100.0]})
    assert plots.apart(points, [0, 1, 2]) == [0, 2]


def test_colour_groups_are_guidelines_for_blocks_and_families_for_networks() -> None:
    assert plots.colour_group("g3:c=64,fragments=2") == "G3 blocks"
    assert plots.colour_group("resnet18") == "resnet"
    assert plots.colour_group("torchvision:mobilenet_v2") == "torchvision"
    assert plots.colour_group("no_such_model") == "other"


def run_with(calibration: dict | None, device: str = "cpu") -> Run:
    """A Run carrying only an env with this calibration."""
    env = fixture_env() | {
        "calibration": None if calibration is None else calibration | {"device": device}
    }
    return Run(Path("x"), pd.DataFrame(), env, {}, {}, None)


def test_the_roof_uses_the_highest_ceilings_of_the_device() -> None:
    runs = [
        run_with({"gemm_flops_per_s": 6.7e10, "copy_bytes_per_s": 1.7e10}),
        run_with({"gemm_flops_per_s": 2.0e11, "copy_bytes_per_s": 3.5e10}),
        run_with({"gemm_flops_per_s": 9.0e12, "copy_bytes_per_s": 9.0e11}, device="cuda"),
        run_with(None),
    ]
    assert plots.ceilings_for(runs, "cpu") == (2.0e11, 3.5e10)
    assert plots.ceilings_for(runs[3:], "cpu") == (None, None)


def test_points_above_the_roof_are_explained() -> None:
    points = pd.DataFrame(
        {"x": [1.0, 10.0, 100.0], "y": [5e9, 1.5e10, 3e10], "label": ["a", "b", "c"]}
    )
    below = plots.roof_notes(points, gemm=5e10, copy=1e10)
    assert len(below) == 1
    above = plots.roof_notes(points, gemm=2e10, copy=1e9)
    assert above[1].startswith("3 of 3 points lie above the roof (a, b, c)")
    assert "cache" in above[1]
    assert "no roof drawn" in plots.roof_notes(points, None, None)[0]


def test_roofline_axes_are_in_giga_units(captured: list) -> None:
    points = pd.DataFrame(
        {"x": [2.0, 20.0], "y": [4e9, 3e10], "label": ["a", "b"], "group": ["G1", "resnet"]}
    ).assign(labelled=[True, False])
    figures.roofline(points, Path("r.png"), 5e10, 1.2e10, "roof")
    ax = captured[0].axes[0]
    assert ax.get_ylabel() == "achieved GFLOP/s"
    roof = ax.get_lines()[0]
    assert max(roof.get_ydata()) == pytest.approx(50.0)
    assert "12 GB/s" in roof.get_label() and "50 GFLOP/s" in roof.get_label()
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    assert offsets[:, 1].max() == pytest.approx(30.0)


def test_guideline_bars_carry_the_interval_of_each_bar(tmp_path: Path, captured: list) -> None:
    rows = document.current_rows(document.read_runs([full_run(tmp_path / "run")]))
    table = next(s for s in guideline_summaries(rows) if s.guideline == "G2").table
    assert (table["ours_norm_low"] < table["ours_norm"]).all()
    assert (table["ours_norm"] < table["ours_norm_high"]).all()
    figures.paired_bars(table, Path("g.png"), "G2", "relative")
    whiskers = captured[0].axes[0].containers[0]  # the ours bars' ErrorbarContainer
    segments = whiskers.lines[2][0].get_segments()
    assert len(segments) == len(table) and all(seg[1][1] > seg[0][1] for seg in segments)


def test_median_intervals_come_from_the_raw_samples() -> None:
    rows = pd.DataFrame({"case_id": ["a", "b", "c"]})
    samples = {"a": [float(v) for v in range(1, 21)], "b": [1.0, 2.0]}
    out = document.with_median_intervals(rows, samples)
    assert (out.loc[0, "latency_ms_median_low"], out.loc[0, "latency_ms_median_high"]) == (
        median_ci(samples["a"])
    )
    assert out.loc[1:, ["latency_ms_median_low", "latency_ms_median_high"]].isna().all().all()


def test_speed_up_intervals_join_both_medians_intervals() -> None:
    frame = pd.DataFrame({
        "model": ["m", "m"], "runtime": ["eager", "openvino"], "latency_ms_median": [10.0, 5.0],
        "latency_ms_median_low": [9.0, 4.0], "latency_ms_median_high": [11.0, 6.0],
    })  # fmt: skip
    low, high = runtime_section.speedup_intervals(frame)
    assert low.loc["m", "openvino"] == pytest.approx(9.0 / 6.0)
    assert high.loc["m", "openvino"] == pytest.approx(11.0 / 4.0)


def test_legends_have_no_empty_entries(captured: list) -> None:
    table = pd.DataFrame({"config": ["a", "b"], "ours_norm": [1.0, 0.8],
                          "paper_norm": [np.nan, np.nan]})  # fmt: skip
    figures.paired_bars(table, Path("p.png"), "t", "y")
    texts = [t.get_text() for t in captured[0].axes[0].get_legend().get_texts()]
    assert texts == ["ours (95% interval of the median)"]
    fig, ax = plt.subplots()
    captured.append(fig)
    ax.plot([np.nan], [np.nan], label="nothing")
    ax.scatter([1.0], [1.0], label="")
    figures._legend(ax)
    assert ax.get_legend() is None


def test_the_report_notes_what_is_labelled(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    text = document.write_report([run], tmp_path / "r.md").read_text()
    assert f"Labelled: {plots.MAX_LABELS}" not in text  # fewer: crowded labels are dropped
    assert "the Pareto front" in text and "Roof: the highest" in text


def test_paired_guideline_rows_take_the_rounds_interval() -> None:
    rows = pd.DataFrame(guideline_rows())
    g2 = rows["group"] == "G2"
    rows.loc[g2, "paired_ratio"] = [1.0, 0.8, 0.7, 0.5]
    rows.loc[g2, "paired_low"] = [1.0, 0.78, 0.69, 0.49]
    rows.loc[g2, "paired_high"] = [1.0, 0.83, 0.72, 0.52]
    table = next(s for s in guideline_summaries(rows) if s.guideline == "G2").table
    assert list(table["ours_norm"]) == [1.0, 0.8, 0.7, 0.5]
    assert list(table["ours_norm_low"]) == [1.0, 0.78, 0.69, 0.49]
    assert list(table["ours_norm_high"]) == [1.0, 0.83, 0.72, 0.52]


def test_log_ticks_read_as_prefixed_numbers() -> None:
    ticks = figures.PrefixFormatter()
    assert [ticks._num_to_string(v, 1.0, 10.0) for v in (2e8, 1e9, 30.0, 0.5)] == [
        "200 M", "1 G", "30", "0.5",
    ]  # fmt: skip


def test_stacked_shares_leave_out_categories_that_never_appear(captured: list) -> None:
    table = pd.DataFrame({"conv": [0.7, 0.6], "pool": [0.0, 0.0], "other": [0.3, 0.4]})
    figures.stacked_shares(table, Path("s.png"), "shares")
    texts = [t.get_text() for t in captured[0].axes[0].get_legend().get_texts()]
    assert texts == ["conv", "other"]
