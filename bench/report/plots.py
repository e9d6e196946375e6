"""The report's figure sections: which rows to plot and how, each figure written by `figures`."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis.fits import pareto_front, timed_cases
from bench.core.values import is_missing
from bench.report import figures
from bench.report.format import fmt_accuracy, fmt_text
from bench.runs.folder import Run
from bench.runs.schema import calibration_of, has_values
from netdefs.registry import model_entry, parse_spec


def slug(text: str) -> str:
    """A file-name-safe version of `text`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


def image_link(title: str, image: Path, fig_dir: Path) -> str:
    """Markdown image with a link relative to the report (figure folder beside it)."""
    return f"![{fmt_text(title)}]({fig_dir.name}/{image.name})"


def family_of(model: Any) -> str:
    """The netdefs family of a model spec ('torchvision' / 'other' when not registered)."""
    text = str(model)
    if text.startswith("torchvision:"):
        return "torchvision"
    try:
        return model_entry(parse_spec(text)[0]).family or "other"
    except ValueError:
        return "other"


MAX_LABELS = 12  # labelled points per scatter: the extremes, then the Pareto front thinned
MIN_LABEL_GAP = 0.05  # labelled points are at least this share of an axis' log span apart


def colour_group(model: Any) -> str:
    """What a point is coloured by: its guideline for a block ('G1 blocks'), else its family."""
    text = str(model)
    try:
        name = parse_spec(text)[0]
        if model_entry(name).kind == "block":
            return f"{name.upper()} blocks"
    except ValueError:
        pass
    return family_of(text)


def _points(frame: pd.DataFrame, x: pd.Series, y: pd.Series) -> pd.DataFrame:
    """Plot points (x, y, label = model spec, group = guideline or family) of a frame's rows."""
    return pd.DataFrame(
        {
            "x": x.astype(float).to_numpy(),
            "y": y.astype(float).to_numpy(),
            "label": frame["model"].map(fmt_text).to_numpy(),
            "group": frame["model"].map(colour_group).to_numpy(),
        }
    )


def efficient_front(points: pd.DataFrame) -> np.ndarray:
    """True for points no other beats with both lower latency (y) and more work (x)."""
    swapped = pd.DataFrame({"x": points["y"], "y": points["x"]}, index=points.index)
    return points.index.isin(pareto_front(swapped).index)


def label_mask(points: pd.DataFrame, front: pd.Series | None = None) -> pd.Series:
    """The points worth a label: the extremes of x and y, then the front, at most MAX_LABELS."""
    chosen = dict.fromkeys(
        points[column].idxmin() if low else points[column].idxmax()
        for column in ("x", "y")
        for low in (True, False)
    )
    if front is not None:
        members = list(points.index[front].difference(list(chosen)))
        room = max(0, MAX_LABELS - len(chosen))
        step = max(1, -(-len(members) // room)) if room else len(members) + 1
        chosen |= dict.fromkeys(members[::step])
    kept = apart(points, list(chosen))
    return pd.Series(points.index.isin(kept), index=points.index)


def apart(points: pd.DataFrame, order: list) -> list:
    """The points of `order` (by priority) not crowding an earlier one on the log-log plot."""
    logs = np.log10(points[["x", "y"]].astype(float).clip(lower=1e-300))
    spans = (logs.max() - logs.min()).replace(0.0, 1.0)
    kept: list = []
    for index in order:
        near = [(abs(logs.loc[index] - logs.loc[k]) / spans).max() < MIN_LABEL_GAP for k in kept]
        if not any(near):
            kept.append(index)
    return kept


def scatter_points(frame: pd.DataFrame, x: pd.Series, y: pd.Series) -> pd.DataFrame:
    """Points with their front and which of them are labelled."""
    points = _points(frame, x, y)
    points["front"] = efficient_front(points)
    points["labelled"] = label_mask(points, points["front"])
    return points


def ceilings_for(runs: list[Run], device: str) -> tuple[float | None, float | None]:
    """The highest GEMM FLOP/s and copy bytes/s of the runs calibrated on `device`.

    The highest, because a calibration that ran under load sits below what the machine did for
    the measured cases; every run of one report is drawn under the same roof.
    """
    calibrations = [calibration_of(run.env) for run in runs]
    mine = [c for c in calibrations if c and c.get("device", "cpu") == device]
    gemm = [v for v in (_positive(c.get("gemm_flops_per_s")) for c in mine) if v]
    copy = [v for v in (_positive(c.get("copy_bytes_per_s")) for c in mine) if v]
    return (max(gemm) if gemm else None), (max(copy) if copy else None)


def device_figures(frame: pd.DataFrame, device: str, runs: list[Run], fig_dir: Path) -> list:
    """Latency per image vs mult-adds and vs MAC, and the roofline, with notes for the text."""
    batch = frame["batch"].astype(float).fillna(1.0) if "batch" in frame else 1.0
    latency = frame["latency_ms_median"].astype(float) / batch  # per image, like the x axis
    name, axis = slug(device), "median latency per image (ms) = batch latency / batch"
    figures_out = []
    for source, label, stem in (
        ("mult_adds", "mult-adds per image", "latency_vs_mult_adds"),
        ("mac_bytes", "memory access cost per image (bytes)", "latency_vs_mac"),
    ):
        title = f"Latency vs {'mult-adds' if source == 'mult_adds' else 'MAC'} ({device})"
        path = fig_dir / f"{stem}_{name}.png"
        points = scatter_points(frame, frame[source], latency)
        image = figures.labelled_scatter(points, path, label, axis, title)
        figures_out.append((image, [label_note(points)]))
    return [*figures_out, roofline_figure(frame, device, ceilings_for(runs, device), fig_dir)]


def label_note(points: pd.DataFrame) -> str:
    """Which points carry a label, and where the others are listed."""
    return (
        f"Labelled: {int(points['labelled'].sum())} of {len(points)} points, the extremes and "
        "the Pareto front (no other case is both faster and does more work); colour: the "
        "guideline of a block, the family of a network; every case is in the Results tables."
    )


def roofline_figure(
    frame: pd.DataFrame, device: str, ceilings: tuple[float | None, float | None], fig_dir: Path
) -> tuple[Path, list[str]]:
    """Achieved FLOP/s (flops x batch / latency) against flops / mac_bytes, with the ceilings."""
    flops = 2.0 * frame["mult_adds"].astype(float)  # the contract: flops = 2 x mult_adds
    batch = frame["batch"].astype(float).fillna(1.0) if "batch" in frame else 1.0
    achieved = flops * batch / (frame["latency_ms_median"].astype(float) / 1000.0)
    intensity = flops / frame["mac_bytes"].astype(float)
    points = _points(frame, intensity, achieved)
    points["labelled"] = label_mask(points)
    gemm, copy = ceilings
    image = figures.roofline(
        points,
        fig_dir / f"roofline_{slug(device)}.png",
        gemm,
        copy,
        f"Roofline ({device}; the highest calibration ceilings of the runs)",
    )
    return image, roof_notes(points, gemm, copy)


def roof_notes(points: pd.DataFrame, gemm: float | None, copy: float | None) -> list[str]:
    """What the roof is, and why points lie above it when some do."""
    if not gemm and not copy:
        return ["No calibration ceilings in these runs (`--no-calibrate`): no roof drawn."]
    roof = pd.Series(math.inf, index=points.index)
    if copy:
        roof = points["x"] * copy
    if gemm:
        roof = roof.clip(upper=gemm)
    above = points[points["y"] > roof * 1.001]
    notes = ["Roof: the highest GEMM FLOP/s and copy bandwidth among the runs' calibrations."]
    if not above.empty:
        notes.append(
            f"{len(above)} of {len(points)} points lie above the roof "
            f"({', '.join(above['label'].iloc[:3])}{', ...' if len(above) > 3 else ''}): the "
            "copy bandwidth is measured on buffers far larger than the caches, while a block's "
            "MAC (counted per op) is largely served from cache; and a calibration that ran "
            "under load understates the GEMM peak. The roof is a DRAM-bandwidth roof, not a "
            "bound on cache-resident work."
        )
    return notes


def _positive(value: Any) -> float | None:
    """A finite positive float, else None."""
    return None if is_missing(value) or float(value) <= 0 else float(value)


def accuracy_points(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(latency ms, accuracy %) per fine-tuned model, latency from its inference rows.

    Returns the points and the models left out for want of a timed inference row.
    """
    if not has_values(rows, "best_val_acc"):
        return pd.DataFrame(columns=["x", "y", "label"]), []
    tuned = rows[(rows["status"] == "ok") & ~rows["best_val_acc"].map(is_missing)]
    timed = timed_cases(rows) if has_values(rows, "mult_adds") else rows.iloc[0:0]
    points, untimed = [], []
    for row in tuned.to_dict("records"):
        same = timed[timed["model"] == row["model"]]
        preferred = same[same["device"] == row.get("device")]
        match = preferred if not preferred.empty else same
        if match.empty:
            untimed.append(fmt_text(row["model"]))
            continue
        accuracy = float(fmt_accuracy(row["best_val_acc"]))
        x = float(match["latency_ms_median"].iloc[0])
        points.append({"x": x, "y": accuracy, "label": fmt_text(row["model"])})
    return pd.DataFrame(points, columns=["x", "y", "label"]), untimed


def figures_section(rows: pd.DataFrame, runs: list[Run], fig_dir: Path) -> list[str]:
    """Per device the scatter plots and roofline; accuracy vs latency when fine-tunes exist."""
    lines = ["## Figures", ""]
    cases = timed_cases(rows)
    if cases.empty:
        lines += ["No ok cases with latency, mult-adds and MAC to plot.", ""]
    for device, frame in cases.groupby("device", sort=True):
        for image, notes in device_figures(frame, str(device), runs, fig_dir):
            lines += [image_link(image.stem.replace("_", " "), image, fig_dir), ""]
            lines += [" ".join(fmt_text(note) for note in notes), ""]
    return lines + accuracy_lines(rows, fig_dir)


def accuracy_lines(rows: pd.DataFrame, fig_dir: Path) -> list[str]:
    """The accuracy-vs-latency figure, its Pareto front and the models it could not place."""
    points, untimed = accuracy_points(rows)
    if points.empty:
        return [] if not untimed else [f"No timed inference rows for: {', '.join(untimed)}.", ""]
    front = pareto_front(points)
    image = figures.accuracy_pareto(
        points, front, fig_dir / "accuracy_vs_latency.png", "Accuracy vs latency (fine-tunes)"
    )
    lines = [image_link("accuracy vs latency", image, fig_dir), ""]
    lines += [f"Pareto front (fastest to most accurate): {', '.join(front['label'])}.", ""]
    if untimed:
        lines += [f"Not plotted (no timed inference row): {', '.join(untimed)}.", ""]
    return lines
