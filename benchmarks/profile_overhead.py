"""The profiler's overhead: the sum of profiled layer times against the end-to-end median.

Per network and round, `profile_model` profiles the forwards (each layer's median time over the
profiled iterations) and then times the same model without the profiler in the same process;
the ratio is summed layer times / end-to-end median. Rounds repeat that pair so that bursts on a
shared machine show as spread; the table gives each network's median ratio over rounds with its
range, beside the category shares of the median round. Target (README): the ratio within 30%
of 1 (0.7-1.3) on shufflenet v1 g3, mobilenet v2 and shufflenet v2 at CPU batch 1, one thread.

On a loaded machine the end-to-end wall-clock median includes the time the process waits for a
core, while each layer's median mostly does not (a preemption lands in one layer of one
iteration); so the table also gives the end-to-end median of the forward's *thread CPU time*
(`time.thread_time`, meaningful with one thread: intra-op work then runs on the calling thread)
and the ratio against it, a comparison that load does not skew (eager PyTorch only).

    uv run python benchmarks/profile_overhead.py
    uv run python benchmarks/profile_overhead.py --models resnet18 --rounds 5 --batch 8 --threads 2
    uv run python benchmarks/profile_overhead.py --runtime onnxruntime
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table

from bench.core.models import model_and_shape
from bench.core.options import fixed_threads
from bench.measure.profile import ProfileResult, profile_model

NETWORKS = ["shufflenet_v1_g3_x1_0", "torchvision:mobilenet_v2", "shufflenet_v2_x1_0"]
LOW, HIGH = 0.7, 1.3
CPU_TIME_ITERATIONS = 30


def thread_cpu_ms(spec: str, batch: int, threads: int) -> float:
    """Median thread CPU time (ms) of one inference forward, after five warm-up forwards."""
    model, shape = model_and_shape(spec)
    inputs = torch.randn(batch, *shape)
    times = []
    with fixed_threads(threads), torch.inference_mode():
        model.eval()
        for k in range(5 + CPU_TIME_ITERATIONS):
            start = time.thread_time()
            model(inputs)
            if k >= 5:
                times.append((time.thread_time() - start) * 1000.0)
    return statistics.median(times)


def rounds_of(spec: str, args: argparse.Namespace) -> list[ProfileResult]:
    """`args.rounds` profiles of one network, each followed by its unprofiled latency."""
    return [
        profile_model(
            spec,
            batch=args.batch,
            threads=args.threads,
            runtime=args.runtime,
            iterations=args.iterations,
            latency_budget_s=args.budget,
        )  # fmt: skip
        for _ in range(args.rounds)
    ]


def row_of(spec: str, results: list[ProfileResult], cpu_ms: float | None) -> list[str]:
    """One table row: sums, medians, the ratios (median and range), the main time shares."""
    ratios = sorted(r.overhead_ratio for r in results if r.overhead_ratio is not None)
    middle = sorted(results, key=lambda r: r.overhead_ratio or 0.0)[len(results) // 2]
    shares = middle.categories
    verdict = "ok" if LOW <= statistics.median(ratios) <= HIGH else "outside 0.7-1.3"
    return [
        spec,
        f"{middle.total_profiled_ms:.2f}",
        f"{middle.profiled_wall_ms:.2f}",
        f"{middle.latency_median_ms:.2f}",
        f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}, {ratios[-1]:.2f}]",
        verdict,
        "–" if cpu_ms is None else f"{cpu_ms:.2f}",
        "–" if cpu_ms is None else f"{middle.total_profiled_ms / cpu_ms:.2f}",
        *(f"{shares[c]['time_share']:.1%}" for c in ("conv", "elementwise", "data", "pooling")),
        f"{shares['conv']['mult_adds_share']:.1%}",
    ]


def main() -> None:
    """Profile each network for some rounds and print the overhead table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=NETWORKS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--budget", type=float, default=3.0, help="latency budget (s)")
    parser.add_argument("--runtime", default="eager")
    args = parser.parse_args()
    load_before = os.getloadavg()
    table = Table(title=f"profiled sum vs end-to-end median ({args.runtime}, batch {args.batch}, "
                  f"{args.threads} thread(s), {args.rounds} rounds)")  # fmt: skip
    columns = ["network", "sum ms", "profiled fwd ms", "e2e ms", "sum/e2e", "target",
               "e2e cpu ms", "sum/cpu", "conv", "elementwise", "data", "pooling",
               "conv mult-adds"]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("network", "target") else "right")
    for spec in args.models:
        results = rounds_of(spec, args)
        eager = args.runtime == "eager"  # the CPU-time comparator is eager PyTorch's forward
        cpu_ms = thread_cpu_ms(spec, args.batch, args.threads) if eager else None
        table.add_row(*row_of(spec, results, cpu_ms))
    console = Console(width=200)
    console.print(table)
    before = ", ".join(f"{x:.2f}" for x in load_before)
    after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"load average (1, 5, 15 min) before: {before}; after: {after}")


if __name__ == "__main__":
    main()
