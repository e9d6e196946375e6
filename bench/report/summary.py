"""The report's opening summary: what the runs found, before any table.

The guideline verdicts exactly as `bench run` prints them, the fastest networks per device and
batch, what explains latency (the two R^2 values of each fit), the best fine-tunes, and one line
per reason for the cases that were skipped or failed.
"""

from __future__ import annotations

import pandas as pd

from bench.analysis.fits import MIN_FIT_CASES, LatencyFit, latency_fits, timed_cases
from bench.analysis.guidelines import guideline_summaries, guideline_verdicts
from bench.core.values import is_missing
from bench.report.format import fmt_accuracy, fmt_number, fmt_r2, fmt_text, reason_lines
from bench.runs.schema import has_values
from netdefs.registry import model_entry, parse_spec

FASTEST_SHOWN = 3  # networks named per device and batch


def is_network(model: object) -> bool:
    """Whether a spec names a whole network (torchvision's or netdefs' kind 'network')."""
    text = str(model)
    if text.startswith("torchvision:"):
        return True
    try:
        return model_entry(parse_spec(text)[0]).kind == "network"
    except ValueError:
        return False


def fastest_lines(rows: pd.DataFrame) -> list[str]:
    """Per device, runtime and batch: the fastest networks by median latency (ms per batch)."""
    timed = rows[rows["status"] == "ok"] if has_values(rows, "latency_ms_median") else rows[:0]
    if "mode" in timed:
        timed = timed[timed["mode"].map(lambda m: is_missing(m) or m == "infer")]
    if timed.empty:
        return []
    keep = timed["model"].map(is_network) & ~timed["latency_ms_median"].map(is_missing)
    timed = timed[keep.astype(bool)]
    keys = [k for k in ("device", "runtime", "batch") if k in timed]
    lines = []
    for key, frame in timed.groupby(keys, sort=True, dropna=False) if keys else []:
        best = frame.astype({"latency_ms_median": float}).groupby("model")["latency_ms_median"]
        ordered = best.min().sort_values()
        named = ", ".join(
            f"{fmt_text(m)} {fmt_number(ms)} ms" for m, ms in ordered.iloc[:FASTEST_SHOWN].items()
        )
        lines.append(f"- {_setup(dict(zip(keys, key, strict=True)))}: {named} "
                     f"(of {len(ordered)} networks)")  # fmt: skip
    return ["Fastest networks (median latency per batch):", "", *lines, ""] if lines else []


def _setup(values: dict) -> str:
    """'cpu, batch 1' (the runtime only when it is not eager PyTorch)."""
    parts = [fmt_text(values.get("device"))]
    runtime = values.get("runtime")
    if not is_missing(runtime) and runtime != "eager":
        parts.append(fmt_text(runtime))
    if not is_missing(values.get("batch")):
        parts.append(f"batch {int(float(values['batch']))}")
    return ", ".join(parts)


def fit_sentence(fit: LatencyFit) -> str:
    """'guidelines on cpu (batch 1, 51 cases): mult-adds alone explain R^2 0.62; + MAC 0.91'."""
    runtime = "" if fit.runtime == "eager" else f", {fmt_text(fit.runtime)}"
    gain = fit.r2_mult_adds_mac - fit.r2_mult_adds
    return (
        f"- {fmt_text(fit.suite)} on {fmt_text(fit.device)}{runtime} (batch {fit.batch}, "
        f"{fit.cases} cases): mult-adds alone give R^2 {fmt_r2(fit.r2_mult_adds)}, mult-adds + "
        f"MAC {fmt_r2(fit.r2_mult_adds_mac)} (memory traffic adds {fmt_r2(gain)})"
    )


def explain_lines(rows: pd.DataFrame) -> list[str]:
    """What explains latency, one sentence per fit with enough cases."""
    fits = [f for f in latency_fits(rows) if f.cases >= MIN_FIT_CASES]
    if not fits:
        few = "" if timed_cases(rows).empty else f" (fewer than {MIN_FIT_CASES} cases per fit)"
        return [f"What explains latency: not fitted{few}.", ""]
    return ["What explains latency (least-squares fits of median latency):", "",
            *(fit_sentence(f) for f in fits), ""]  # fmt: skip


def finetune_lines(rows: pd.DataFrame) -> list[str]:
    """The fine-tuned models, most accurate first."""
    if not has_values(rows, "best_val_acc"):
        return []
    tuned = rows[(rows["status"] == "ok") & ~rows["best_val_acc"].map(is_missing)]
    ordered = tuned.astype({"best_val_acc": float}).sort_values("best_val_acc", ascending=False)
    named = [f"{fmt_text(r['model'])} {fmt_accuracy(r['best_val_acc'])}%" for _, r in
             ordered.iterrows()]  # fmt: skip
    return [f"Fine-tunes, best validation accuracy: {', '.join(named)}.", ""] if named else []


def summary_section(rows: pd.DataFrame) -> list[str]:
    """The opening summary: verdicts, fastest networks, what explains latency, problems."""
    lines = ["## Summary", ""]
    verdicts = guideline_verdicts(guideline_summaries(rows))
    if verdicts:
        lines += ["Guidelines G1-G4 (as `bench run` prints them):", ""]
        lines += [f"- {fmt_text(v)}" for v in verdicts] + [""]
    lines += fastest_lines(rows) + explain_lines(rows) + finetune_lines(rows)
    problems = reason_lines(rows, "error") + reason_lines(rows, "skipped")
    if problems:
        lines += ["Not measured:", "", *(f"- {line}" for line in problems), ""]
    return lines
