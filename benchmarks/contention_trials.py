"""Rankings on a busy machine: sequential vs interleaved, the G2 and G3 ARM tables of guidelines.

The G2 and G3 ARM columns of suites/guidelines.yaml (batch 1, one thread) are measured three
ways: a reference without extra load (interleaved rounds, the run's own defaults), then, with
BUSY extra busy-loop processes on the machine, sequentially (each configuration on its own with
`measure_latency`, as the runner did before) and interleaved (`measure_interleaved`, round-
paired ratios), alternating which goes first in each trial. Per column it prints Spearman's rho
of our ranking against the paper's (what the guideline verdict uses) and against the reference
run, plus the contention each measurement saw. Target (README): interleaved keeps G2 at 1.00 in
every column and G3 at >= 0.8 for c=64 and c=128 under two busy processes.

The machine's own load (other users) comes on top of the busy processes: the report prints the
load average before and after. This is a benchmark, not a test; nothing here asserts.

    uv run python benchmarks/contention_trials.py                 # 2 trials, 2 s per case
    uv run python benchmarks/contention_trials.py --quick         # 1 trial, 0.5 s per case
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from bench.measure.contention import ContentionProbe
from bench.measure.interleaved import measure_interleaved
from bench.measure.timing import measure_latency
from bench.runs.suite import Case, load_suite
from bench.runs.units import plan_units

CASES = ("g2-arm", "g3-arm")
BUSY = 2


def columns() -> list[list[Case]]:
    """The interleaved units (table columns) of the G2 and G3 ARM tables."""
    suite = load_suite("suites/guidelines.yaml")
    return [u for u in plan_units(suite.cases) if u[0].case in CASES]


def label(unit: list[Case]) -> str:
    """'G2 x1' for a column."""
    return f"{unit[0].group} {dict(unit[0].ref)['column']}"


def sequential(unit: list[Case], budget_s: float) -> list[float]:
    """Speed relative to the first row from one measure_latency per configuration."""
    medians = [
        measure_latency(c.model, c.input, threads=c.threads, budget_s=budget_s).median_ms
        for c in unit
    ]
    return [medians[0] / m for m in medians]


def interleaved(unit: list[Case], budget_s: float) -> list[float]:
    """Speed relative to the first row, paired by round."""
    members = [(c.model, c.input) for c in unit]
    results = measure_interleaved(members, threads=unit[0].threads, budget_s=budget_s * len(unit))
    return [float(r.paired_ratio) for r in results]


def rho(ours: list[float], other: list[float]) -> float:
    """Spearman's rho of two rankings."""
    return float(spearmanr(ours, other).statistic)


def measure_all(method: str, budget_s: float) -> dict[str, dict]:
    """Every column measured one way: ratios, rho vs the paper, contention, seconds."""
    out = {}
    for unit in columns():
        run = sequential if method == "sequential" else interleaved
        start = time.perf_counter()
        with ContentionProbe() as probe:
            ratios = run(unit, budget_s)
        paper = [float(dict(c.ref)["throughput"]) for c in unit]
        found = probe.result
        out[label(unit)] = {
            "ratios": ratios,
            "rho_paper": rho(ratios, paper),
            "contention": None if found is None else round(found.contention, 2),
            "seconds": round(time.perf_counter() - start, 1),
        }
    return out


@contextmanager
def busy_processes(n: int) -> Iterator[None]:
    """n extra processes spinning on the CPU while the block runs."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(1.0)  # let the scheduler see them before measuring
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def report(results: dict, console: Console) -> None:
    """One table: per column, rho vs paper and vs the reference, per method and trial."""
    table = Table(title="Spearman per column (vs paper | vs reference run)")
    table.add_column("column")
    reference = results["reference"]
    runs = [k for k in results if k != "reference"]
    table.add_column("reference vs paper", justify="right")
    for key in runs:
        table.add_column(key, justify="right")
    for column, ref in reference.items():
        cells = [f"{ref['rho_paper']:.2f}"]
        for key in runs:
            got = results[key][column]
            cells.append(
                f"{got['rho_paper']:.2f} | {rho(got['ratios'], ref['ratios']):.2f} "
                f"(c {got['contention']})"
            )
        table.add_row(column, *cells)
    console.print(table)


def main() -> None:
    """Measure, print the table and the raw results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per case")
    parser.add_argument("--busy", type=int, default=BUSY)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    trials, budget = (1, 0.5) if args.quick else (args.trials, args.budget)
    console = Console()
    console.print(f"load before: {os.getloadavg()}")
    results = {"reference": measure_all("interleaved", budget)}
    with busy_processes(args.busy):
        for trial in range(trials):
            order = ["sequential", "interleaved"][:: 1 if trial % 2 == 0 else -1]
            for method in order:
                results[f"{method} #{trial + 1}"] = measure_all(method, budget)
    console.print(f"load after: {os.getloadavg()}")
    report(results, console)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
