"""The report's figures: matplotlib (Agg backend) to PNG files, one function per kind of plot.

Every function takes plain data (DataFrames with named columns, floats) and a target path, writes
one PNG and returns the path. Nothing here reads run folders or decides what to plot.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402

from bench.core.io import atomic_write_with  # noqa: E402
from bench.core.values import human_count  # noqa: E402

DPI = 110
FIGSIZE = (8.5, 5.8)
LABEL_FONT = 6.5
OURS_COLOR = "tab:blue"
PAPER_COLOR = "tab:orange"
MEDIAN_INTERVAL = "95% interval of the median"


class PrefixFormatter(LogFormatter):
    """Log-axis ticks as short numbers with SI prefixes (30, 200 M, 1 G), never 2e+08 or 4x10^1."""

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        """The tick's text (which ticks get one is LogFormatter's choice)."""
        return human_count(x)


def _log_axes(ax: plt.Axes) -> None:
    """Log-log axes with SI-prefixed tick numbers, a few minor ticks labelled too."""
    ax.set(xscale="log", yscale="log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(PrefixFormatter())
        axis.set_minor_formatter(PrefixFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.tick_params(which="minor", labelsize=7)


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write the figure as PNG (atomically) and release it."""
    fig.tight_layout()
    try:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
    return path


def group_colours(groups: pd.Series) -> dict[str, str]:
    """One colour per colour group, in sorted order (the same groups get the same colours)."""
    palette = plt.get_cmap("tab10").colors
    return {g: matplotlib.colors.to_hex(palette[i % 10]) for i, g in enumerate(sorted(set(groups)))}


def _group_points(ax: plt.Axes, points: pd.DataFrame) -> None:
    """Scatter columns x, y, one colour per `group`; annotate the rows whose `labelled` is set."""
    colours = group_colours(points["group"])
    for group, members in points.groupby("group", sort=True):
        ax.scatter(members["x"], members["y"], label=group, s=22, color=colours[str(group)])
    _annotate(ax, points[points["labelled"]] if "labelled" in points else points)


def _annotate(ax: plt.Axes, points: pd.DataFrame) -> None:
    """Write each point's `label` next to it, small."""
    for x, y, label in zip(points["x"], points["y"], points["label"], strict=True):
        ax.annotate(label, (x, y), fontsize=LABEL_FONT, xytext=(3, 3), textcoords="offset points")


def _legend(ax: plt.Axes, **options: object) -> None:
    """A legend of the entries that have a label and drew something (none when nothing is left)."""
    handles, labels = ax.get_legend_handles_labels()
    kept = [(h, lab) for h, lab in zip(handles, labels, strict=True) if lab and _drew(h)]
    if kept:
        ax.legend(*zip(*kept, strict=True), **({"fontsize": 8} | options))


def _drew(handle: object) -> bool:
    """Whether a legend handle drew something (all-NaN or all-zero bars draw nothing)."""
    if hasattr(handle, "patches"):  # a bar container
        return any(np.isfinite(p.get_height()) and p.get_height() != 0 for p in handle.patches)
    if hasattr(handle, "get_offsets"):  # a scatter
        offsets = np.asarray(handle.get_offsets(), dtype=float)
        return offsets.size > 0 and bool(np.isfinite(offsets).all(axis=1).any())
    if hasattr(handle, "get_ydata"):  # a line
        return bool(np.isfinite(np.asarray(handle.get_ydata(), dtype=float)).any())
    return True


def labelled_scatter(
    points: pd.DataFrame, path: Path, xlabel: str, ylabel: str, title: str
) -> Path:
    """Log-log scatter of x, y: a colour per `group`, labels where `labelled`, the `front` line."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    _group_points(ax, points)
    if "front" in points and points["front"].any():
        front = points[points["front"]].sort_values("x")
        ax.plot(front["x"], front["y"], color="grey", linewidth=0.8, linestyle="--",
                label="Pareto front (most work for its latency)")  # fmt: skip
    _log_axes(ax)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax, title="colour: guideline / family", title_fontsize=8)
    return _save(fig, path)


def _error_bars(values: pd.Series, low: pd.Series | None, high: pd.Series | None) -> np.ndarray:
    """Asymmetric yerr (2 x n) from interval bounds; zero where a bound is missing."""
    values = values.astype(float).to_numpy()
    if low is None or high is None:
        return np.zeros((2, len(values)))
    below = np.nan_to_num(values - low.astype(float).to_numpy(), nan=0.0)
    above = np.nan_to_num(high.astype(float).to_numpy() - values, nan=0.0)
    return np.vstack([np.clip(below, 0, None), np.clip(above, 0, None)])


def paired_bars(
    table: pd.DataFrame, path: Path, title: str, ylabel: str, interval: str | None = None
) -> Path:
    """Bars of `ours_norm` (with `ours_norm_low/_high` as whiskers) and `paper_norm` per config."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    index = np.arange(len(table))
    width = 0.38
    yerr = _error_bars(table["ours_norm"], table.get("ours_norm_low"), table.get("ours_norm_high"))
    label = f"ours ({interval or MEDIAN_INTERVAL})"
    ax.bar(index - width / 2, table["ours_norm"], width, yerr=yerr, capsize=3, label=label,
           color=OURS_COLOR)  # fmt: skip
    ax.bar(index + width / 2, table["paper_norm"], width, label="paper (published, no interval)",
           color=PAPER_COLOR)  # fmt: skip
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(index, [str(c) for c in table["config"]], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    _legend(ax)
    return _save(fig, path)


def grouped_bars(
    table: pd.DataFrame,
    path: Path,
    title: str,
    ylabel: str,
    intervals: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> Path:
    """One group of bars per row (label: the index), one bar per column, whiskers, a line at 1."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    index = np.arange(len(table))
    width = 0.8 / max(1, len(table.columns))
    for offset, column in enumerate(table.columns):
        position = index - 0.4 + width * (offset + 0.5)
        low, high = (
            (None, None) if intervals is None else (intervals[0][column], intervals[1][column])
        )
        yerr = _error_bars(table[column], low, high)
        ax.bar(position, table[column].astype(float), width, yerr=yerr, capsize=3,
               label=str(column))  # fmt: skip
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(index, [str(i) for i in table.index], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    _legend(ax)
    return _save(fig, path)


def roofline(
    points: pd.DataFrame, path: Path, peak_flops: float | None, bandwidth: float | None, title: str
) -> Path:
    """Achieved GFLOP/s against arithmetic intensity (FLOP/byte), log-log, under the ceilings.

    `points` y and `peak_flops` are in FLOP/s, `bandwidth` in bytes/s; the axes show G units.
    """
    fig, ax = plt.subplots(figsize=FIGSIZE)
    _group_points(ax, points.assign(y=points["y"] / 1e9))
    _draw_roof(ax, points["x"], peak_flops, bandwidth)
    _log_axes(ax)
    ax.set(title=title)
    ax.set(xlabel="arithmetic intensity (FLOP / byte of MAC)", ylabel="achieved GFLOP/s")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def _draw_roof(
    ax: plt.Axes, intensity: pd.Series, peak_flops: float | None, bandwidth: float | None
) -> None:
    """The bandwidth slope and GEMM roof in GFLOP/s, labelled with both ceilings."""
    low, high = intensity.min() / 2.0, intensity.max() * 2.0
    if bandwidth and peak_flops:
        high = max(high, 2.0 * peak_flops / bandwidth)
    xs = np.geomspace(low, high, 200)
    gemm = f"GEMM {peak_flops / 1e9:.3g} GFLOP/s" if peak_flops else ""
    if bandwidth:
        roof = bandwidth * xs if not peak_flops else np.minimum(bandwidth * xs, peak_flops)
        label = f"roof: copy {bandwidth / 1e9:.3g} GB/s" + (f", {gemm}" if gemm else "")
        ax.plot(xs, roof / 1e9, color="black", linewidth=1.2, label=label)
    elif peak_flops:
        ax.axhline(peak_flops / 1e9, color="black", linewidth=1.2, label=gemm)


def accuracy_pareto(points: pd.DataFrame, front: pd.DataFrame, path: Path, title: str) -> Path:
    """Accuracy (%) against latency (ms, log x) with the Pareto front drawn as a step line."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.scatter(points["x"], points["y"], s=24, color=OURS_COLOR, label="fine-tuned models")
    _annotate(ax, points)
    ax.step(front["x"], front["y"], where="post", color=PAPER_COLOR, label="Pareto front")
    ax.set(xscale="log", xlabel="inference latency (ms)", ylabel="best val accuracy (%)")
    ax.set(title=title)
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    return _save(fig, path)


def stacked_shares(table: pd.DataFrame, path: Path, title: str) -> Path:
    """One stacked bar per row (label: the index), segments the columns (shares summing to 1)."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    index = np.arange(len(table))
    bottom = np.zeros(len(table))
    for column in table.columns:
        values = table[column].astype(float).to_numpy()
        ax.bar(index, values * 100, 0.7, bottom=bottom * 100, label=str(column))
        bottom += values
    ax.set_xticks(index, [str(i) for i in table.index], rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="share (%)", title=title, ylim=(0, 100))
    _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)
