"""The report's figure sections: which rows to plot and how, each figure written by `figures`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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


def _points(frame: pd.DataFrame, x: pd.Series, y: pd.Series) -> pd.DataFrame:
    """Plot points (x, y, label = model spec, family) of a frame's rows."""
    return pd.DataFrame(
        {
            "x": x.astype(float).to_numpy(),
            "y": y.astype(float).to_numpy(),
            "label": frame["model"].map(fmt_text).to_numpy(),
            "family": frame["model"].map(family_of).to_numpy(),
        }
    )


def _calibration_for(runs: list[Run], device: str) -> dict:
    """The calibration record of the last run calibrated on `device` ({} when none)."""
    for run in reversed(runs):
        calibration = calibration_of(run.env)
        if calibration and calibration.get("device", "cpu") == device:
            return calibration
    return {}


def device_figures(frame: pd.DataFrame, device: str, runs: list[Run], fig_dir: Path) -> list:
    """Latency per image vs mult-adds and vs MAC, and the roofline of one device's timed cases."""
    batch = frame["batch"].astype(float).fillna(1.0) if "batch" in frame else 1.0
    latency = frame["latency_ms_median"].astype(float) / batch  # per image, like the x axis
    name, axis = slug(device), "median latency per image (ms) = batch latency / batch"
    return [
        figures.labelled_scatter(
            _points(frame, frame["mult_adds"], latency),
            fig_dir / f"latency_vs_mult_adds_{name}.png",
            "mult-adds per image",
            axis,
            f"Latency vs mult-adds ({device})",
        ),
        figures.labelled_scatter(
            _points(frame, frame["mac_bytes"], latency),
            fig_dir / f"latency_vs_mac_{name}.png",
            "memory access cost per image (bytes)",
            axis,
            f"Latency vs MAC ({device})",
        ),
        roofline_figure(frame, device, _calibration_for(runs, device), fig_dir),
    ]


def roofline_figure(frame: pd.DataFrame, device: str, calibration: dict, fig_dir: Path) -> Path:
    """Achieved FLOP/s (flops x batch / latency) against flops / mac_bytes, with the ceilings."""
    flops = 2.0 * frame["mult_adds"].astype(float)  # the contract: flops = 2 x mult_adds
    batch = frame["batch"].astype(float).fillna(1.0) if "batch" in frame else 1.0
    achieved = flops * batch / (frame["latency_ms_median"].astype(float) / 1000.0)
    intensity = flops / frame["mac_bytes"].astype(float)
    return figures.roofline(
        _points(frame, intensity, achieved),
        fig_dir / f"roofline_{slug(device)}.png",
        _positive(calibration.get("gemm_flops_per_s")),
        _positive(calibration.get("copy_bytes_per_s")),
        f"Roofline ({device}; ceilings from the run's calibration)",
    )


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
        for image in device_figures(frame, str(device), runs, fig_dir):
            lines += [image_link(image.stem.replace("_", " "), image, fig_dir), ""]
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
