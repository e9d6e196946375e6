"""Fidelity of bench.measure_latency against torch.utils.benchmark, and its run-to-run spread.

For each network, interleaved in one process: our median (measure_latency) and
torch.utils.benchmark.Timer(...).blocked_autorange()'s median, repeated R times.
Targets (reported, not asserted): |ours - Timer| / Timer <= 5%, and the coefficient of variation
of our R medians <= 3% on CPU.

    uv run python benchmarks/timing_fidelity.py            # 5 runs, 6 networks
    uv run python benchmarks/timing_fidelity.py --quick    # 3 runs, short budgets
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
import torch.utils.benchmark as tb
from rich.console import Console
from rich.table import Table

from bench.core.models import model_and_shape
from bench.core.options import resolve_device
from bench.measure.stats import coefficient_of_variation
from bench.measure.timing import measure_latency

SPECS = (
    "resnet18",
    "resnet50",
    "shufflenet_v2_x1_0",
    "shufflenet_v1_g3_x1_0",
    "g1:c1=128,c2=128",
    "g4:c=64,relu=true,shortcut=true",
)
AGREEMENT_TARGET = 0.05
CV_TARGET = 0.03


@dataclass(frozen=True)
class Settings:
    """How hard to measure: runs per network, our budget, Timer's minimum run time."""

    runs: int
    budget_s: float
    min_run_time: float
    threads: int
    device: str


@dataclass(frozen=True)
class Fidelity:
    """Per-network outcome: medians in ms, relative difference, run-to-run CVs, call time."""

    spec: str
    ours_ms: float
    timer_ms: float
    rel_diff: float
    ours_cv: float
    timer_cv: float
    call_s: float
    stop_reasons: str


def timer_median_ms(model: torch.nn.Module, inputs: torch.Tensor, settings: Settings) -> float:
    """torch.utils.benchmark's blocked_autorange median (ms) of one inference forward."""
    timer = tb.Timer(
        stmt="model(inputs)",
        globals={"model": model, "inputs": inputs},
        num_threads=settings.threads,
    )
    with torch.inference_mode():
        measurement = timer.blocked_autorange(min_run_time=settings.min_run_time)
    if settings.device == "cuda":
        torch.cuda.synchronize()
    return measurement.median * 1000.0


def measure_one(spec: str, settings: Settings) -> Fidelity:
    """Interleave our measurement and Timer's `settings.runs` times for one network."""
    model, shape = model_and_shape(spec)
    model = model.eval().to(settings.device)
    inputs = torch.randn(1, *shape, device=settings.device)
    ours, theirs, calls, reasons = [], [], [], []
    for _ in range(settings.runs):
        start = time.perf_counter()
        result = measure_latency(
            model,
            shape,
            device=settings.device,
            threads=settings.threads,
            budget_s=settings.budget_s,
        )
        calls.append(time.perf_counter() - start)
        ours.append(result.median_ms)
        reasons.append(result.stop_reason)
        theirs.append(timer_median_ms(model, inputs, settings))
    ours_ms, timer_ms = statistics.median(ours), statistics.median(theirs)
    return Fidelity(
        spec,
        ours_ms,
        timer_ms,
        (ours_ms - timer_ms) / timer_ms,
        coefficient_of_variation(ours),
        coefficient_of_variation(theirs),
        statistics.median(calls),
        ",".join(sorted(set(reasons))),
    )


def fidelity_table(rows: list[Fidelity], settings: Settings) -> Table:
    """The rich table of all networks with pass/fail marks against the targets."""
    title = (
        f"timing fidelity: {settings.device}, {settings.threads} thread(s), batch 1, "
        f"{settings.runs} interleaved runs"
    )
    table = Table(title=title)
    for column in ("network", "ours ms", "Timer ms", "diff", "<=5%", "our CV", "<=3%", "Timer CV"):
        table.add_column(column, justify="right")
    table.add_column("call s", justify="right")
    table.add_column("stop", justify="left")
    for row in rows:
        table.add_row(
            row.spec,
            f"{row.ours_ms:.3f}",
            f"{row.timer_ms:.3f}",
            f"{row.rel_diff:+.1%}",
            "yes" if abs(row.rel_diff) <= AGREEMENT_TARGET else "NO",
            f"{row.ours_cv:.1%}",
            "yes" if row.ours_cv <= CV_TARGET else "NO",
            f"{row.timer_cv:.1%}",
            f"{row.call_s:.1f}",
            row.stop_reasons,
        )
    return table


def parse_args() -> argparse.Namespace:
    """Command-line options of the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs and short budgets")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--only", nargs="*", default=None, help="subset of the networks")
    return parser.parse_args()


def main() -> None:
    """Measure every network and print the table."""
    args = parse_args()
    device = resolve_device(args.device)
    if args.quick:
        settings = Settings(
            runs=3, budget_s=2.0, min_run_time=0.5, threads=args.threads, device=device
        )
    else:
        settings = Settings(
            runs=5, budget_s=10.0, min_run_time=2.0, threads=args.threads, device=device
        )
    rows = []
    for spec in args.only or SPECS:
        Console(stderr=True).print(f"[dim]measuring {spec} ...[/]", highlight=False)
        rows.append(measure_one(spec, settings))
    Console(width=150).print(fidelity_table(rows, settings))


if __name__ == "__main__":
    main()
