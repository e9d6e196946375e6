"""Power and false-alarm rate of `bench compare`'s verdict, with real measurements on this machine.

Each trial measures, with bench.measure.timing.measure_latency (the runner's defaults:
converge to +-2% or spend the budget), three runs of the same case name in random order: BASE =
a G2 block with 8 layers, SAME = the same spec again (unchanged code), SLOW = 10 layers (25%
more work). Then bench.analysis.compare.compare_case judges SAME and SLOW against BASE with the
gate's defaults. Each trial is judged on several statistics of the same samples (default: the
median, the gate's default metric, and p10). Targets (reported, not asserted by tests): SLOW
flagged `regression` in >= 19 of 20 trials, SAME flagged in <= 1 of 20.

    uv run python benchmarks/compare_trials.py              # 20 trials, 1.5 s budget per run
    uv run python benchmarks/compare_trials.py --quick      # 3 trials, 0.75 s budget
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.analysis.compare import (
    DEFAULT_CONFIDENCE,
    METRICS,
    CaseComparison,
    CaseData,
    compare_case,
    parse_threshold,
)
from bench.measure.timing import measure_latency

BASE_SPEC = "g2:c=128,groups=4,layers=8,size=28"
SLOW_SPEC = "g2:c=128,groups=4,layers=10,size=28"
POWER_TARGET = 19
FALSE_ALARM_LIMIT = 1


@dataclass(frozen=True)
class Trial:
    """One trial: BASE's median (ms) and, per metric, SAME and SLOW judged against BASE."""

    index: int
    order: str
    base_ms: float
    same: dict[str, CaseComparison]
    slow: dict[str, CaseComparison]


def measure(spec: str, budget_s: float, threads: int) -> CaseData:
    """One run of the case: raw samples (ms) from measure_latency, as compare sees them."""
    result = measure_latency(spec, budget_s=budget_s, threads=threads)
    samples = np.asarray(result.samples_ms, dtype=float)
    return CaseData(float(np.median(samples)), samples=samples, n=int(samples.size))


def run_trial(index: int, args: argparse.Namespace, rng: random.Random) -> Trial:
    """Measure BASE, SAME and SLOW in a random order, then judge SAME and SLOW against BASE."""
    specs = {"base": BASE_SPEC, "same": BASE_SPEC, "slow": SLOW_SPEC}
    order = list(specs)
    rng.shuffle(order)
    runs = {name: measure(specs[name], args.budget, args.threads) for name in order}
    judge = {
        name: {
            metric: compare_case(
                "g2", runs["base"], runs[name], METRICS[metric], args.threshold, args.confidence
            )
            for metric in args.metrics
        }
        for name in ("same", "slow")
    }
    return Trial(index, ",".join(order), runs["base"].value, judge["same"], judge["slow"])


def trial_table(trials: list[Trial], metric: str) -> Table:
    """Per trial: measurement order, BASE median, and each comparison's ratio, interval, verdict."""
    title = f"{metric}, {len(trials)} trials: {BASE_SPEC} vs itself and vs layers=10"
    table = Table(title=title)
    for name in ("#", "order", "base ms", "same ratio [CI]", "same", "slow ratio [CI]", "slow"):
        table.add_column(name, justify="right" if name not in ("order", "same", "slow") else "left")
    for t in trials:
        same, slow = t.same[metric], t.slow[metric]
        table.add_row(
            str(t.index),
            t.order,
            f"{t.base_ms:.3f}",
            f"{same.ratio:.3f} [{same.low:.3f}, {same.high:.3f}]",
            same.verdict,
            f"{slow.ratio:.3f} [{slow.low:.3f}, {slow.high:.3f}]",
            slow.verdict,
        )
    return table


def summary(trials: list[Trial], metric: str) -> dict:
    """Detections and false alarms of one metric's verdicts, against the targets."""
    detected = sum(t.slow[metric].verdict == "regression" for t in trials)
    false_alarms = sum(t.same[metric].verdict == "regression" for t in trials)
    n = len(trials)
    detect_needed, alarm_limit = POWER_TARGET * n / 20, FALSE_ALARM_LIMIT * n / 20
    return {
        "trials": n,
        "detected": detected,
        "false_alarms": false_alarms,
        "detect_target": f">= {POWER_TARGET}/20 (for {n} trials: {detect_needed:.2f})",
        "false_alarm_target": f"<= {FALSE_ALARM_LIMIT}/20 (for {n} trials: {alarm_limit:.2f})",
        "targets_met": detected >= detect_needed and false_alarms <= alarm_limit,
        "median_slow_ratio": float(np.median([t.slow[metric].ratio for t in trials])),
    }


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--budget", type=float, default=1.5, help="seconds per run (upper bound)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--threshold", type=parse_threshold, default=parse_threshold("10%"))
    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE)
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=["latency_ms_median", "latency_ms_p10"],
        choices=sorted(METRICS),
        help="statistics judged on the same measurements (default: median and p10)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the measurement order")
    parser.add_argument("--quick", action="store_true", help="3 trials, 0.75 s budget")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.budget = 3, 0.75
    return args


def main() -> None:
    """Run the trials, print the table and the summary."""
    args = parse_args()
    rng = random.Random(args.seed)
    console = Console(stderr=args.json)
    start = time.perf_counter()
    trials = []
    for index in range(1, args.trials + 1):
        trials.append(run_trial(index, args, rng))
        console.print(f"trial {index} done", highlight=False)
    result = {
        "wall_s": round(time.perf_counter() - start, 1),
        "threshold": args.threshold,
        "confidence": args.confidence,
        "budget_s": args.budget,
        "metrics": {metric: summary(trials, metric) for metric in args.metrics},
    }
    if args.json:
        print(json.dumps({**result, "per_trial": [asdict(t) for t in trials]}, indent=2))
        return
    for metric in args.metrics:
        console.print(trial_table(trials, metric))
    console.print(result)


if __name__ == "__main__":
    main()
