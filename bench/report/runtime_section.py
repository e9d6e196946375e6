"""The report's runtime section: one network in several runtimes, steady state and cold start.

Per device, batch and thread count: median latency per network and runtime with the speed-up
over eager PyTorch in the same run (eager median / runtime median), then the cold start
(`first_ms`, the first inference after loading, and `prepare_s`, export/compile/load) beside the
steady state, and a grouped bar chart of the speed-ups.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report import figures
from bench.report.format import MISSING, fmt_number, fmt_text
from bench.report.plots import image_link, slug
from bench.report.tables import markdown_table

SETUP = ["device", "batch", "threads"]
RUNTIMES_INTRO = """The same network and weights in each runtime, timed by the same engine.
Speed-up is eager PyTorch's median latency over the runtime's, in the same run; cold start is
the first inference after the runtime loaded the model (first ms) and the export, compile or
load before it (prepare s). Every runtime's output matched eager PyTorch's within tolerance
(parity), else its row is an error listed at the end. The chart's whiskers combine both
medians' 95% intervals (eager's low over the runtime's high, and the reverse)."""
FRAMEWORKS_NOTE = """`tensorflow` is another framework, not a deployment of the PyTorch model: each
ResNet's Keras twin (NHWC, PyTorch's padding, no conv biases, BN epsilon 1e-5) with the PyTorch
weights ported tensor by tensor, in a traced `tf.function`, measured in a process of its own
with intra-op threads = the case's threads and one inter-op thread. Its speed-up column is
PyTorch's median over TensorFlow's: below 1x, TensorFlow is the slower of the two here."""


def runtime_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Ok inference rows with a latency of the networks measured in more than one runtime."""
    if "runtime" not in rows or rows["runtime"].nunique() < 2:
        return rows.iloc[0:0]
    ok = rows[(rows["status"] == "ok") & rows["latency_ms_median"].notna()]
    if "mode" in ok:
        ok = ok[ok["mode"].fillna("infer") == "infer"]
    ok = ok[ok.groupby("model")["runtime"].transform("nunique") > 1]  # eager-only: elsewhere
    return ok.assign(threads=ok["threads"].fillna(0))


def speedups(frame: pd.DataFrame) -> pd.DataFrame:
    """model x runtime table of eager median / runtime median (models without eager: none)."""
    medians = frame.pivot_table(
        index="model", columns="runtime", values="latency_ms_median", aggfunc="first"
    )
    if "eager" not in medians:
        return medians.iloc[:, 0:0]
    return medians.rdiv(medians["eager"], axis=0)


def speedup_intervals(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Low and high speed-ups from both medians' 95% intervals (eager low / runtime high, ...)."""
    if not {"latency_ms_median_low", "latency_ms_median_high"} <= set(frame.columns):
        return None
    bounds = [
        frame.pivot_table(index="model", columns="runtime", values=column, aggfunc="first")
        for column in ("latency_ms_median_low", "latency_ms_median_high")
    ]
    low, high = bounds
    if "eager" not in low or "eager" not in high:
        return None
    return high.rdiv(low["eager"], axis=0), low.rdiv(high["eager"], axis=0)


def steady_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per network: each runtime's median ms with its speed-up over eager."""
    medians = frame.pivot_table(
        index="model", columns="runtime", values="latency_ms_median", aggfunc="first"
    )
    ups = speedups(frame)
    table = {"model": [fmt_text(m) for m in medians.index]}
    for runtime in medians.columns:
        cells = []
        for model in medians.index:
            ms = fmt_number(medians.loc[model, runtime])
            up = ups.loc[model, runtime] if runtime in ups and runtime != "eager" else None
            cells.append(ms if up is None or pd.isna(up) else f"{ms} ({fmt_number(up)}x)")
        table[f"{runtime} (ms)"] = cells
    return pd.DataFrame(table)


def cold_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per network and runtime: first inference, prepare time, steady median, parity."""
    ordered = frame.sort_values(["model", "runtime"])
    return pd.DataFrame(
        {
            "model": ordered["model"].map(fmt_text),
            "runtime": ordered["runtime"].map(fmt_text),
            "first (ms)": ordered["first_ms"].map(fmt_number),
            "prepare (s)": ordered["prepare_s"].map(fmt_number),
            "steady median (ms)": ordered["latency_ms_median"].map(fmt_number),
            "parity (max abs diff)": ordered["parity_max_abs"].map(_parity),
        }
    )


def _parity(value: object) -> str:
    """A parity difference in short scientific notation ('–' for eager)."""
    return MISSING if value is None or pd.isna(value) else f"{float(value):.2g}"


def runtime_section(rows: pd.DataFrame, fig_dir: Path) -> list[str]:
    """Steady-state and cold-start tables and a speed-up chart per device, batch and threads."""
    frame = runtime_rows(rows)
    if frame.empty:
        return []
    lines = ["## Runtimes", "", RUNTIMES_INTRO, ""]
    if "tensorflow" in set(frame["runtime"]):
        lines += [FRAMEWORKS_NOTE, ""]
    for (device, batch, threads), group in frame.groupby(SETUP, sort=True):
        where = f"{device}, batch {int(batch)}" + (f", {int(threads)} thread(s)" if threads else "")
        lines += [f"### Runtimes on {where}", "", markdown_table(steady_table(group)), ""]
        lines += [markdown_table(cold_table(group)), ""]
        ups = speedups(group).drop(columns="eager", errors="ignore")
        if not ups.empty:
            name = f"runtimes_{slug(device)}_b{int(batch)}_t{int(threads)}.png"
            title = f"Speed-up over eager PyTorch ({where})"
            bounds = speedup_intervals(group)
            intervals = None if bounds is None else tuple(b.reindex_like(ups) for b in bounds)
            image = figures.grouped_bars(
                ups, fig_dir / name, title, "eager median / runtime median", intervals
            )
            lines += [image_link(title, image, fig_dir), ""]
    return lines
