"""Speed of our counter vs fvcore's FlopCountAnalysis(...).total() on the same built model.

Both count torchvision's own resnet50, resnext101_32x8d and shufflenet_v2_x1_0 (built once on the
CPU, build time excluded), interleaved and alternating which goes first, after one warm-up call
each. Reports the median ms of each, the ratio ours/fvcore (target: at most 0.5) and both totals
(ours: conv + matmul mult-adds; fvcore's "flops" are mult-adds too but include batch norm and
pooling). Run: `uv run python benchmarks/counter_speed.py [--reps N] [--quick]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torchvision.models as tvm
from rich.console import Console
from rich.table import Table
from torch import nn

from bench.measure.counting import count

MODELS = ("resnet50", "resnext101_32x8d", "shufflenet_v2_x1_0")
INPUT = (3, 224, 224)
TARGET_RATIO = 0.5


def fvcore_total(model: nn.Module) -> int:
    """fvcore's total for one 224x224 image (a jit trace of the real CPU model)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, torch.randn(1, *INPUT))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    """(milliseconds, result) of one call."""
    start = time.perf_counter()
    value = fn()
    return (time.perf_counter() - start) * 1e3, value


def compare(model: nn.Module, reps: int) -> dict:
    """Interleaved samples of both counters on one model; medians, ratio and totals."""

    def ours() -> int:
        return count(model, INPUT).mult_adds

    def theirs() -> int:
        return fvcore_total(model)

    ours_total, theirs_total = ours(), theirs()  # warm-up (imports, first-call caches)
    ours_ms, theirs_ms = [], []
    for rep in range(reps):
        pair = (ours, theirs) if rep % 2 == 0 else (theirs, ours)
        for fn in pair:
            (ours_ms if fn is ours else theirs_ms).append(timed(fn)[0])
    ours_med, theirs_med = statistics.median(ours_ms), statistics.median(theirs_ms)
    return {
        "ours_ms": ours_med,
        "fvcore_ms": theirs_med,
        "ratio": ours_med / theirs_med,
        "ours_mult_adds": ours_total,
        "fvcore_total": theirs_total,
    }


def main() -> None:
    """Run the comparison on every model and print one rich table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions per counter")
    parser.add_argument("--quick", action="store_true", help="3 repetitions (a smoke run)")
    args = parser.parse_args()
    reps = 3 if args.quick else args.reps
    table = Table(title=f"count() vs fvcore FlopCountAnalysis.total(), median of {reps}")
    for column in ("model", "ours ms", "fvcore ms", "ratio", "ours mult-adds", "fvcore total"):
        table.add_column(column, justify="left" if column == "model" else "right")
    worst = 0.0
    for name in MODELS:
        row = compare(tvm.get_model(name, weights=None).eval(), reps)
        worst = max(worst, row["ratio"])
        table.add_row(
            name,
            f"{row['ours_ms']:.1f}",
            f"{row['fvcore_ms']:.1f}",
            f"{row['ratio']:.3f}",
            f"{row['ours_mult_adds']:,}",
            f"{row['fvcore_total']:,}",
        )
    console = Console(width=120)
    console.print(table)
    verdict = "meets" if worst <= TARGET_RATIO else "MISSES"
    console.print(f"worst ratio {worst:.3f}: {verdict} the target <= {TARGET_RATIO}")


if __name__ == "__main__":
    main()
