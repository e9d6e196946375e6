"""Eager CPU forward time of our networks vs torchvision's twins, and channel shuffle vs theirs.

Each repetition times ours and torchvision's back to back on the same input, alternating which goes
first, so drift in machine load hits both alike. Reports median ms and the ratio ours/torchvision
(target: at most 1.05). Run: `uv run python benchmarks/netdefs_speed.py [--quick]`.
"""

from __future__ import annotations

import argparse
import fnmatch
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
import torchvision.models as tvm
from rich.console import Console
from rich.table import Table
from torchvision.models.shufflenetv2 import channel_shuffle as tv_channel_shuffle

from netdefs import get_model
from netdefs.layers import channel_shuffle

TWINS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "resnext101_64x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
)  # fmt: skip
SHUFFLE_SHAPES = ((1, 116, 28, 28), (1, 232, 14, 14), (1, 464, 7, 7), (8, 232, 28, 28))
TARGET_RATIO = 1.05


def time_once(fn: Callable[[], object]) -> float:
    """Wall time of one call in milliseconds."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def interleaved(
    ours: Callable[[], object], theirs: Callable[[], object], reps: int, warmup: int
) -> tuple[list[float], list[float]]:
    """Raw samples (ms) of both callables, alternating which one runs first each repetition."""
    for _ in range(warmup):
        ours(), theirs()
    ours_ms, theirs_ms = [], []
    for rep in range(reps):
        if rep % 2:
            theirs_ms.append(time_once(theirs))
            ours_ms.append(time_once(ours))
        else:
            ours_ms.append(time_once(ours))
            theirs_ms.append(time_once(theirs))
    return ours_ms, theirs_ms


def network_pair(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Our model and torchvision's, same weights, eval mode."""
    theirs = tvm.get_model(name, weights=None).eval()
    ours = get_model(name).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def row(label: str, ours_ms: list[float], theirs_ms: list[float]) -> tuple[str, ...]:
    """One table row: medians, ratio and whether the ratio meets the target."""
    ours_med, theirs_med = statistics.median(ours_ms), statistics.median(theirs_ms)
    ratio = ours_med / theirs_med
    verdict = "ok" if ratio <= TARGET_RATIO else "SLOWER"
    return label, f"{ours_med:.3f}", f"{theirs_med:.3f}", f"{ratio:.3f}", verdict, str(len(ours_ms))


def bench_networks(names: list[str], reps: int, warmup: int) -> list[tuple[str, ...]]:
    """Rows for every twin network at batch 1, 3x224x224."""
    x = torch.randn(1, 3, 224, 224)
    rows = []
    with torch.inference_mode():
        for name in names:
            ours, theirs = network_pair(name)
            rows.append(row(name, *interleaved(partial(ours, x), partial(theirs, x), reps, warmup)))
    return rows


def bench_shuffle(reps: int, warmup: int) -> list[tuple[str, ...]]:
    """Rows for channel shuffle (2 groups) at ShuffleNet V2 1x feature-map shapes."""
    rows = []
    with torch.inference_mode():
        for shape in SHUFFLE_SHAPES:
            x = torch.randn(*shape)
            samples = interleaved(
                partial(channel_shuffle, x, 2), partial(tv_channel_shuffle, x, 2), reps, warmup
            )
            rows.append(row(f"shuffle {'x'.join(map(str, shape))}", *samples))
    return rows


def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    """Print the rows as a rich table."""
    table = Table(title=title)
    for column in ("case", "ours ms", "torchvision ms", "ratio", f"<= {TARGET_RATIO}", "n"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for values in rows:
        table.add_row(*values)
    Console().print(table)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (a smoke run)")
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions per network")
    parser.add_argument("--models", default="*", help="wildcard over the twin names")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    return parser.parse_args()


def main() -> None:
    """Run the comparison and print both tables."""
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n for n in TWINS if fnmatch.fnmatchcase(n, args.models)]
    if not names:
        raise SystemExit(f"error: --models {args.models!r} matches none of: {', '.join(TWINS)}")
    reps, warmup = (5, 1) if args.quick else (args.reps, 3)
    title = f"eager forward, CPU, batch 1, 3x224x224, {torch.get_num_threads()} threads"
    print_table(title, bench_networks(names, reps, warmup))
    print_table("channel shuffle, 2 groups", bench_shuffle(reps * 20, warmup * 20))


if __name__ == "__main__":
    main()
