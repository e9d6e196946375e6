"""Do TensorFlow and PyTorch fight over threads in one process? A case right after the other's.

Four set-ups, each in a fresh process (TensorFlow fixes its threads per process), with the same
network, batch and thread count for both frameworks (TensorFlow: intra-op = threads, inter-op 1;
PyTorch: torch.set_num_threads(threads)):

    torch      PyTorch alone              tf        TensorFlow alone
    tf,torch   PyTorch right after TF     torch,tf  TensorFlow right after PyTorch

Rounds run the four in a fresh random order. Per round: slowdown = the median after the other
framework / the median alone (same round); reported as the median over rounds with the range,
beside the spread of the alone medians over rounds (the noise). A slowdown inside the noise is
no fight.

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

ORDERS = {"torch": ["eager"], "tf": ["tensorflow"], "tf,torch": ["tensorflow", "eager"],
          "torch,tf": ["eager", "tensorflow"]}  # fmt: skip
# the measured case of each set-up (the last one) and the set-up it is compared with
AFTER = {"tf,torch": "torch", "torch,tf": "tf"}


def worker(order: str, model: str, batch: int, threads: int, budget_s: float) -> None:
    """In this (fresh) process: time the set-up's cases in order; print the last one's median."""
    claim_process()  # TensorFlow measures here, not in a child of this child
    medians = [
        measure_latency(model, batch=batch, threads=threads, budget_s=budget_s, runtime=rt)
        .median_ms
        for rt in ORDERS[order]
    ]  # fmt: skip
    print(json.dumps({"order": order, "median_ms": medians[-1]}))


def run_worker(order: str, args: argparse.Namespace, threads: int) -> float:
    """One set-up in a fresh interpreter; the measured case's median ms."""
    options = {"--model": args.model, "--batch": args.batch, "--threads": threads,
               "--budget": args.budget}  # fmt: skip
    command = [sys.executable, __file__, "--worker", order]
    command += [str(part) for item in options.items() for part in item]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["median_ms"])


def spread(values: list[float]) -> float:
    """(max - min) / median of a list, as a fraction."""
    return (max(values) - min(values)) / statistics.median(values)


def report(threads: int, rounds: list[dict[str, float]]) -> list[str]:
    """Lines: each set-up's median over rounds, and each 'after' slowdown against the noise."""
    lines = [f"threads={threads}:"]
    for order in ORDERS:
        values = [r[order] for r in rounds]
        lines.append(f"  {order:9s} median {statistics.median(values):8.2f} ms  "
                     f"spread over rounds {spread(values):6.1%}")  # fmt: skip
    for after, alone in AFTER.items():
        ratios = [r[after] / r[alone] for r in rounds]
        lines.append(f"  {after} / {alone}: {statistics.median(ratios):.3f} "
                     f"(range {min(ratios):.3f}-{max(ratios):.3f})")  # fmt: skip
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
        print("\n".join(report(threads, rounds)), flush=True)


if __name__ == "__main__":
    main()
