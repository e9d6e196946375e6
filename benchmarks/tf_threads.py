"""Do TensorFlow and PyTorch fight over threads in one process? A case right after the other's.

Two set-ups per round, each in a fresh process (TensorFlow fixes its threads per process), the
same network, batch and thread count for both frameworks (TensorFlow: intra-op = threads,
inter-op 1; PyTorch: torch.set_num_threads(threads)), one measured case after the other:

    torch-first   PyTorch alone (TensorFlow not even imported), TensorFlow, PyTorch again
    tf-first      TensorFlow alone, PyTorch, TensorFlow again

Per round and framework: slowdown = its median right after the other framework / its median
alone, in the same process (PyTorch: torch-first's third case / its first; TensorFlow:
tf-first's third / its first), and across the two processes (the middle case / the other
process's first). Reported as the median over rounds with the range; the spread of the alone
medians over rounds is the noise: a slowdown inside it is no fight.

    uv run python benchmarks/tf_threads.py               # resnet18, batch 1, 1 and 2 threads
    uv run python benchmarks/tf_threads.py --model resnet50 --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys

from bench.measure.isolated import claim_process
from bench.measure.timing import measure_latency

ORDERS = {
    "torch-first": ["eager", "tensorflow", "eager"],
    "tf-first": ["tensorflow", "eager", "tensorflow"],
}

# label, (set-up, case) measured after the other framework, set-up whose first case is "alone"
SLOWDOWNS = [
    ("PyTorch after TF / alone, same process", ("torch-first", 2), "torch-first"),
    ("PyTorch after TF / alone, across processes", ("tf-first", 1), "torch-first"),
    ("TF after PyTorch / alone, same process", ("tf-first", 2), "tf-first"),
    ("TF after PyTorch / alone, across processes", ("torch-first", 1), "tf-first"),
]


def worker(order: str, model: str, batch: int, threads: int, budget_s: float) -> None:
    """In this (fresh) process: time the set-up's cases in order; print their medians (ms)."""
    claim_process()  # TensorFlow measures here, not in a child of this process
    medians = [
        measure_latency(model, batch=batch, threads=threads, budget_s=budget_s, runtime=rt)
        .median_ms
        for rt in ORDERS[order]
    ]  # fmt: skip
    print(json.dumps({"order": order, "median_ms": medians}))


def run_worker(order: str, args: argparse.Namespace, threads: int) -> list[float]:
    """One set-up in a fresh interpreter; the medians (ms) of its three cases."""
    options = {"--model": args.model, "--batch": args.batch, "--threads": threads,
               "--budget": args.budget}  # fmt: skip
    command = [sys.executable, __file__, "--worker", order]
    command += [str(part) for item in options.items() for part in item]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return [float(v) for v in json.loads(out.stdout.strip().splitlines()[-1])["median_ms"]]


def spread(values: list[float]) -> float:
    """(max - min) / median of a list, as a fraction."""
    return (max(values) - min(values)) / statistics.median(values)


def ratio_line(label: str, ratios: list[float]) -> str:
    """'label: median (range)' of per-round ratios."""
    return f"  {label}: {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})"


def report(threads: int, rounds: list[dict[str, list[float]]]) -> list[str]:
    """Medians alone and after, the slowdowns in and across processes, and the noise."""
    torch_alone = [r["torch-first"][0] for r in rounds]
    tf_alone = [r["tf-first"][0] for r in rounds]
    lines = [
        f"threads={threads}: medians over rounds (ms), spread of the alone medians = noise",
        f"  PyTorch alone {statistics.median(torch_alone):.2f} (spread {spread(torch_alone):.1%}),"
        f" after TF {statistics.median([r['torch-first'][2] for r in rounds]):.2f} / "
        f"{statistics.median([r['tf-first'][1] for r in rounds]):.2f} (same / fresh process)",
        f"  TensorFlow alone {statistics.median(tf_alone):.2f} (spread {spread(tf_alone):.1%}),"
        f" after PyTorch {statistics.median([r['tf-first'][2] for r in rounds]):.2f} / "
        f"{statistics.median([r['torch-first'][1] for r in rounds]):.2f} (same / fresh process)",
    ]
    for label, (order, index), alone in SLOWDOWNS:
        ratios = [r[order][index] / r[alone][0] for r in rounds]
        lines.append(ratio_line(label, ratios))
    return lines


def main() -> None:
    """Parse arguments; run the worker, or the rounds and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=list(ORDERS))
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=2.0)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.model, args.batch, args.threads[0], args.budget)
        return
    print(f"{args.model}, batch {args.batch}, {args.rounds} rounds, budget {args.budget} s/case")
    for threads in args.threads:
        rounds = []
        for _ in range(args.rounds):
            orders = random.sample(list(ORDERS), len(ORDERS))
            rounds.append({order: run_worker(order, args, threads) for order in orders})
            print(json.dumps({"threads": threads, **rounds[-1]}), flush=True)
        print("\n".join(report(threads, rounds)), flush=True)


if __name__ == "__main__":
    main()
