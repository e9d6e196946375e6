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

from bench.core.io import atomic_write_with  # noqa: E402

DPI = 110
FIGSIZE = (8.5, 5.8)
LABEL_FONT = 6.5
OURS_COLOR = "tab:blue"
PAPER_COLOR = "tab:orange"


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write the figure as PNG (atomically) and release it."""
    fig.tight_layout()
    try:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    finally:
        plt.close(fig)
    return path


def _family_points(ax: plt.Axes, points: pd.DataFrame) -> None:
    """Scatter columns x, y with one colour per `family`; annotate each point with `label`."""
    for family, group in points.groupby("family", sort=True):
        ax.scatter(group["x"], group["y"], label=family, s=22)
        _annotate(ax, group)


def _annotate(ax: plt.Axes, points: pd.DataFrame) -> None:
    """Write each point's `label` next to it, small."""
    for x, y, label in zip(points["x"], points["y"], points["label"], strict=True):
        ax.annotate(label, (x, y), fontsize=LABEL_FONT, xytext=(3, 3), textcoords="offset points")


def labelled_scatter(
    points: pd.DataFrame, path: Path, xlabel: str, ylabel: str, title: str
) -> Path:
    """Log-log scatter of columns x, y; one colour per `family`, every point labelled."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    _family_points(ax, points)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, title="family", title_fontsize=8)
    return _save(fig, path)


def paired_bars(table: pd.DataFrame, path: Path, title: str, ylabel: str) -> Path:
    """Bars of `ours_norm` and `paper_norm` side by side for each `config`."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    index = np.arange(len(table))
    width = 0.38
    ax.bar(index - width / 2, table["ours_norm"], width, label="ours", color=OURS_COLOR)
    ax.bar(index + width / 2, table["paper_norm"], width, label="paper", color=PAPER_COLOR)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(index, [str(c) for c in table["config"]], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def grouped_bars(table: pd.DataFrame, path: Path, title: str, ylabel: str) -> Path:
    """One group of bars per row (label: the index), one bar per column, a line at 1."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    index = np.arange(len(table))
    width = 0.8 / max(1, len(table.columns))
    for offset, column in enumerate(table.columns):
        position = index - 0.4 + width * (offset + 0.5)
        ax.bar(position, table[column].astype(float), width, label=str(column))
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(index, [str(i) for i in table.index], rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def roofline(
    points: pd.DataFrame, path: Path, peak_flops: float | None, bandwidth: float | None, title: str
) -> Path:
    """Achieved FLOP/s (y) against arithmetic intensity (x, FLOP/byte), log-log, with ceilings."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    _family_points(ax, points)
    low, high = points["x"].min() / 2.0, points["x"].max() * 2.0
    if bandwidth and peak_flops:
        high = max(high, 2.0 * peak_flops / bandwidth)
    xs = np.geomspace(low, high, 200)
    if bandwidth:
        roof = bandwidth * xs if not peak_flops else np.minimum(bandwidth * xs, peak_flops)
        ax.plot(xs, roof, color="black", linewidth=1.2, label="roof (copy bandwidth, GEMM)")
    elif peak_flops:
        ax.axhline(peak_flops, color="black", linewidth=1.2, label="GEMM FLOP/s")
    ax.set(xscale="log", yscale="log", title=title)
    ax.set(xlabel="arithmetic intensity (FLOP / byte of MAC)", ylabel="achieved FLOP/s")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_pareto(points: pd.DataFrame, front: pd.DataFrame, path: Path, title: str) -> Path:
    """Accuracy (%) against latency (ms, log x) with the Pareto front drawn as a step line."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.scatter(points["x"], points["y"], s=24, color=OURS_COLOR, label="fine-tuned models")
    _annotate(ax, points)
    ax.step(front["x"], front["y"], where="post", color=PAPER_COLOR, label="Pareto front")
    ax.set(xscale="log", xlabel="inference latency (ms)", ylabel="best val accuracy (%)")
    ax.set(title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
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
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)
