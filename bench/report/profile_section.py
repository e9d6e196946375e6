"""The report's "where the time goes": the ShuffleNet V2 paper's Figure 2, from profiled rows.

Rows of a suite with `metrics: [..., profile]` carry each op category's share of the measured
time, of the counted mult-adds and of the counted MAC (`time_share_conv`, `mult_adds_share_conv`,
...) and the top layers by time (JSON). Per device, batch, threads and runtime: a table of the
shares, a stacked bar per network (time beside mult-adds and MAC, as the paper draws it) and each
network's top layers by time with their counted cost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.core.values import human_count, is_missing
from bench.measure.categories import CATEGORIES
from bench.report import figures
from bench.report.format import fmt_number, fmt_text, percent
from bench.report.plots import image_link, slug
from bench.report.tables import markdown_table
from bench.runs.schema import PROFILE_SHARES

PROFILE_SETUP = ["device", "batch", "threads", "runtime"]
TOP_IN_REPORT = 5
BAR_LABELS = {"time_share": "time", "mult_adds_share": "mult-adds", "mac_share": "MAC"}
PROFILE_INTRO = """Measured time per kind of op (torch.profiler, or the runtime's own profiler:
each row's median over the profiled forwards) beside the counted mult-adds and MAC of the same
ops. The paper (its Figure 2) finds that convolutions carry nearly all FLOPs but only part of
the time: element-wise ops, data movement (shuffle, concat, split, copies) and other ops take
the rest. "profiled" is the sum of the layers' times, "latency" the same network timed without
the profiler."""


def profile_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Ok rows that carry category time shares."""
    if "time_share_conv" not in rows:
        return rows.iloc[0:0]
    ok = rows[(rows["status"] == "ok") & rows["time_share_conv"].notna()]
    return ok.assign(threads=ok["threads"].fillna(0), runtime=ok["runtime"].fillna("eager"))


def shares_table(group: pd.DataFrame) -> pd.DataFrame:
    """Per network: each category's time share / mult-adds share, profiled and latency ms."""
    table = {"model": group["model"].map(fmt_text).tolist()}
    for category in CATEGORIES:
        time = group[f"time_share_{category}"].astype(float)
        mult_adds = group[f"mult_adds_share_{category}"].astype(float)
        table[f"{category} (time / mult-adds)"] = [
            f"{t:.1%} / {m:.1%}" for t, m in zip(time, mult_adds, strict=True)
        ]
    table["profiled (ms)"] = group["profile_total_ms"].map(fmt_number).tolist()
    table["latency (ms)"] = group["profile_latency_ms"].map(fmt_number).tolist()
    return pd.DataFrame(table)


def bar_table(group: pd.DataFrame) -> pd.DataFrame:
    """Rows `model: time`, `model: mult-adds`, `model: MAC`; one column per category."""
    bars = {}
    for row in group.itertuples(index=False):
        values = row._asdict()
        for share in PROFILE_SHARES:
            label = f"{values['model']}: {BAR_LABELS[share]}"
            bars[label] = {c: float(values[f"{share}_{c}"]) for c in CATEGORIES}
    return pd.DataFrame.from_dict(bars, orient="index", columns=list(CATEGORIES))


def top_layers_frame(cell: object) -> pd.DataFrame:
    """A row's top layers by time (from its JSON cell) as a markdown-ready table."""
    layers = [] if is_missing(cell) else json.loads(str(cell))[:TOP_IN_REPORT]
    return pd.DataFrame(
        {
            "layer": [f"{x['module'] or '(root)'} {x['op']}" for x in layers],
            "category": [" ".join(filter(None, (x["category"], x["conv_kind"]))) for x in layers],
            "ms": [fmt_number(x["time_ms"]) for x in layers],
            "time": [percent(x["time_share"]) for x in layers],
            "mult-adds": [human_count(x["mult_adds"]) for x in layers],
            "of all": [percent(x["mult_adds_share"]) for x in layers],
        }
    )


def setup_lines(key: tuple, group: pd.DataFrame, fig_dir: Path) -> list[str]:
    """The shares table, the stacked bars and the top layers of one setup."""
    device, batch, threads, runtime = key
    where = f"{device}, batch {int(batch)}" + (f", {int(threads)} thread(s)" if threads else "")
    where += f", {runtime}"
    lines = [f"### Where the time goes: {where}", "", markdown_table(shares_table(group)), ""]
    name = f"breakdown_{slug(device)}_b{int(batch)}_t{int(threads)}_{slug(runtime)}.png"
    title = f"Share of time, mult-adds and MAC per op category ({where})"
    image = figures.stacked_shares(bar_table(group), fig_dir / name, title)
    lines += [image_link(title, image, fig_dir), ""]
    for row in group.itertuples(index=False):
        top = top_layers_frame(row._asdict().get("profile_top_layers"))
        if not top.empty:
            lines += [f"Top layers by time, {fmt_text(row.model)}:", "", markdown_table(top), ""]
    return lines


def profile_section(rows: pd.DataFrame, fig_dir: Path) -> list[str]:
    """The "where the time goes" section ([] when no row was profiled)."""
    frame = profile_rows(rows)
    if frame.empty:
        return []
    lines = ["## Where the time goes", "", PROFILE_INTRO, ""]
    for key, group in frame.groupby(PROFILE_SETUP, sort=True):
        lines += setup_lines(key, group, fig_dir)
    return lines
