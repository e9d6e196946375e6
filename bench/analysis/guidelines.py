"""Guideline summaries: our throughput beside the ShuffleNet V2 paper's, per table and device.

Rows of a run whose `group` is G1..G4 and that carry `ref_throughput`, `ref_config` and
`ref_column` are grouped per guideline, device, paper platform and table column (x1/x2/x4 for
G1-G2, c=<width> for G3-G4), since only configurations of one column have equal FLOPs. Units
follow the paper: GPU tables in batches/s, ARM (here CPU) tables in images/s, stated in `unit`.

Rows measured in interleaved rounds carry `paired_ratio`, their speed relative to the column's
first row paired by round; `ours_norm` (and so the ranking) uses it where every row of a column
has one, else our throughput over the first row's. A column with doubtful rows (a wide paired
interval, or a noisy row measured alone: `bench.analysis.noise`) is *not judged*.

Criterion: a column *reproduced* when at least MIN_CONFIGS configurations were measured, the
Spearman rank correlation of our throughputs with the paper's is >= SPEARMAN_MIN, and our fastest
configuration is one of the paper's fastest. `ratio_*` is fastest / slowest throughput (= the
slowest configuration's latency over the fastest's), so 1.0 means no difference.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd
from scipy.stats import spearmanr

from bench.analysis.noise import is_doubtful

SPEARMAN_MIN = 0.8
MIN_CONFIGS = 3
GUIDELINE_GROUP = re.compile(r"^G[1-4]$")
NEEDED = ("group", "device", "ref_throughput", "ref_config", "ref_column")


@dataclass(frozen=True)
class GuidelineSummary:
    """One guideline table column on one device: ours beside the paper's, and the verdict."""

    guideline: str
    device: str
    table: pd.DataFrame  # config, ours, paper, ours_norm, paper_norm, unit, doubtful
    spearman: float | None
    ratio_ours: float | None
    ratio_paper: float | None
    reproduced: bool | None
    sentence: str
    column: str = ""
    platform: str = ""
    runtime: str = "eager"
    paired: bool = False  # ours_norm holds round-paired ratios

    @property
    def place(self) -> str:
        """Where it was measured: the device, and the runtime unless eager ('cpu (openvino)')."""
        return self.device if self.runtime == "eager" else f"{self.device} ({self.runtime})"


def guideline_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows that belong to a guideline table (empty frame when there are none)."""
    if any(col not in rows.columns for col in NEEDED):
        return rows.iloc[0:0]
    mask = rows["group"].astype(str).str.match(GUIDELINE_GROUP) & rows["ref_throughput"].notna()
    return rows[mask]


def ours_in_unit(row: pd.Series) -> float:
    """Our throughput in the paper's unit (batches/s for GPU tables, else images/s); NaN if none."""
    if row.get("status") != "ok":
        return math.nan
    key = "batches_per_s" if row.get("ref_unit") == "batches/s" else "throughput"
    value = row.get(key)
    return float(value) if value is not None and not pd.isna(value) else math.nan


def paper_table(group: pd.DataFrame) -> pd.DataFrame:
    """config, ours, paper and both normalised to the table's first row, plus the unit."""
    ours = group.apply(ours_in_unit, axis=1).astype(float)
    paper = group["ref_throughput"].astype(float)
    unit = group["ref_unit"] if "ref_unit" in group.columns else "images/s"
    table = pd.DataFrame(
        {"config": group["ref_config"].astype(str), "ours": ours, "paper": paper, "unit": unit}
    ).reset_index(drop=True)
    table["ours_norm"] = table["ours"] / table["ours"].iloc[0]
    paired = paired_ratios(group)
    if paired is not None:
        table["ours_norm"] = paired
    table["paper_norm"] = table["paper"] / table["paper"].iloc[0]
    table["doubtful"] = [is_doubtful(row) for _, row in group.iterrows()]
    columns = ["config", "ours", "paper", "ours_norm", "paper_norm", "unit", "doubtful"]
    return table[columns].join(ours_interval(group, table, paired is not None))


def paired_ratios(group: pd.DataFrame) -> list[float] | None:
    """The rows' round-paired ratios when every measured row has one (else None)."""
    if "paired_ratio" not in group.columns:
        return None
    measured = group[group["status"] == "ok"] if "status" in group else group
    values = pd.to_numeric(group["paired_ratio"], errors="coerce")
    if measured.empty or values[measured.index].isna().any():
        return None
    return [float(v) for v in values]


def ours_interval(group: pd.DataFrame, table: pd.DataFrame, paired: bool) -> pd.DataFrame:
    """`ours_norm_low/_high`: each normalised throughput's interval (NaN without one)."""
    if paired and {"paired_low", "paired_high"} <= set(group.columns):  # the rounds' own
        low = pd.to_numeric(group["paired_low"], errors="coerce").reset_index(drop=True)
        high = pd.to_numeric(group["paired_high"], errors="coerce").reset_index(drop=True)
        return pd.DataFrame({"ours_norm_low": low, "ours_norm_high": high})
    # throughput = batch / latency, so its interval is the median latency's, inverted; the
    # first row's own uncertainty is not carried into the others (it is shown on its bar)
    nan = pd.Series(math.nan, index=table.index)
    if not {"latency_ms_median_low", "latency_ms_median_high"} <= set(group.columns):
        return pd.DataFrame({"ours_norm_low": nan, "ours_norm_high": nan})
    median = group["latency_ms_median"].astype(float).reset_index(drop=True)
    low = group["latency_ms_median_low"].astype(float).reset_index(drop=True)
    high = group["latency_ms_median_high"].astype(float).reset_index(drop=True)
    return pd.DataFrame(
        {
            "ours_norm_low": table["ours_norm"] * median / high,
            "ours_norm_high": table["ours_norm"] * median / low,
        }
    )


def rank_correlation(table: pd.DataFrame) -> float | None:
    """Spearman's rho between ours and the paper's (None below MIN_CONFIGS or if undefined)."""
    both = table.dropna(subset=["ours_norm", "paper"])
    if len(both) < MIN_CONFIGS:
        return None
    rho = spearmanr(both["ours_norm"], both["paper"]).statistic
    return None if pd.isna(rho) else float(rho)


def spread(values: pd.Series) -> float | None:
    """Fastest over slowest throughput (None if nothing was measured)."""
    values = values.dropna()
    if values.empty or values.min() <= 0:
        return None
    return float(values.max() / values.min())


def same_fastest(table: pd.DataFrame) -> bool:
    """Whether our fastest configuration is among the paper's fastest (ties allowed)."""
    both = table.dropna(subset=["ours_norm", "paper"])
    ours_best = both.loc[both["ours_norm"].idxmax(), "config"]
    return ours_best in set(both.loc[both["paper"] == both["paper"].max(), "config"])


def reproduced(table: pd.DataFrame, rho: float | None) -> bool | None:
    """Reproduced (True/False) by the module's criterion, None when it cannot be decided."""
    if rho is None:
        return None
    return rho >= SPEARMAN_MIN - 1e-9 and same_fastest(table)  # 0.8 computes as 0.7999...


def sentence_for(name: str, table: pd.DataFrame, rho: float | None, ok: bool | None) -> str:
    """One plain sentence saying whether the guideline reproduced in this column."""
    doubtful = int(table["doubtful"].sum())
    if doubtful:
        measured = int(table["ours"].notna().sum())
        return f"{name}: not judged: {doubtful} of {measured} rows noisy."
    if ok is None:
        measured = int(table["ours"].notna().sum())
        return f"{name}: undecided, only {measured} configuration(s) with a usable ranking."
    both = table.dropna(subset=["ours_norm", "paper"])
    fastest = both.loc[both["ours_norm"].idxmax(), "config"]
    paper_fastest = both.loc[both["paper"].idxmax(), "config"]
    if ok:
        return (
            f"{name}: reproduced; our ranking follows the paper's (Spearman {rho:.2f}) "
            f"and {fastest} is fastest in both."
        )
    rank_note = "" if rho >= SPEARMAN_MIN - 1e-9 else f" (needs >= {SPEARMAN_MIN})"
    return (
        f"{name}: not reproduced on this machine; Spearman {rho:.2f}{rank_note}, "
        f"fastest here {fastest}, in the paper {paper_fastest}."
    )


def summarize_group(keys: tuple, group: pd.DataFrame) -> GuidelineSummary:
    """One GuidelineSummary from the rows of one guideline/device/runtime/platform/column."""
    guideline, device, runtime, platform, column = keys
    table = paper_table(group)
    rho = rank_correlation(table)
    ok = None if table["doubtful"].any() else reproduced(table, rho)
    place = device if runtime == "eager" else f"{device} ({runtime})"
    name = f"{guideline} {column} on {place} (paper: {platform or '?'}, {table['unit'].iloc[0]})"
    return GuidelineSummary(
        guideline=guideline,
        device=device,
        table=table,
        spearman=rho,
        ratio_ours=spread(table["ours_norm"]),
        ratio_paper=spread(table["paper"]),
        reproduced=ok,
        sentence=sentence_for(name, table, rho, ok),
        column=column,
        platform=platform,
        runtime=runtime,
        paired=paired_ratios(group) is not None,
    )


def guideline_summaries(rows: pd.DataFrame) -> list[GuidelineSummary]:
    """Per guideline table column, device and runtime: ours vs the paper, Spearman, verdict."""
    selected = guideline_rows(rows).copy()
    if selected.empty:
        return []
    runtime = selected["runtime"] if "runtime" in selected.columns else None
    selected["runtime"] = "eager" if runtime is None else runtime.fillna("eager").astype(str)
    if "ref_platform" not in selected.columns:
        selected["ref_platform"] = ""
    selected["ref_platform"] = selected["ref_platform"].fillna("").astype(str)
    selected["ref_column"] = selected["ref_column"].astype(str)
    keys = ["group", "device", "runtime", "ref_platform", "ref_column"]
    grouped = selected.groupby(keys, sort=False)
    return [summarize_group(tuple(k), group) for k, group in grouped]


def guideline_verdicts(summaries: list[GuidelineSummary]) -> list[str]:
    """One sentence per guideline, device and runtime, counting the columns that reproduced."""
    sentences = []
    pairs = dict.fromkeys((s.guideline, s.place) for s in summaries)
    for guideline, device in pairs:
        group = [s for s in summaries if (s.guideline, s.place) == (guideline, device)]
        good = [s.column for s in group if s.reproduced]
        decided = [s for s in group if s.reproduced is not None]
        unjudged = [s.column for s in group if s.table["doubtful"].any()]
        if not any(s.table["ours"].notna().any() for s in group):
            sentences.append(f"{guideline} on {device}: not measured (every case skipped/failed).")
            continue
        if unjudged and not decided:
            sentences.append(
                f"{guideline} on {device}: not judged: {len(unjudged)} of {len(group)} columns "
                "have noisy rows; measure on a quieter machine."
            )
            continue
        if not decided:
            sentences.append(f"{guideline} on {device}: undecided (too few measured configs).")
            continue
        word = "reproduced" if len(good) == len(decided) else "partly reproduced"
        word = "did not reproduce" if not good else word
        listed = f" ({', '.join(good)})" if good else ""
        skipped = f"; {len(unjudged)} not judged (noisy rows)" if unjudged else ""
        sentences.append(
            f"{guideline} on {device}: {word}: {len(good)} of {len(decided)} columns"
            f"{listed} rank the configurations as the paper does{skipped}."
        )
    return sentences
