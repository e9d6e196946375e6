"""Eager PyTorch against every runtime, side by side in one process, in interleaved rounds.

Per network: one model (seeded weights) and one input batch; every runtime prepares its session
from them (the output checked against eager's); then rounds: each round times a short burst of
every runtime in a fresh random order, so drift and bursts on a shared machine hit all runtimes
alike. Speed-up = the median over rounds of eager's burst median / the runtime's, paired by
round. Target (README): on shufflenet_v2_x1_0, batch 1, one thread, the fastest of onnxruntime /
openvino / compile at least 2x faster than eager.

    uv run python benchmarks/runtimes.py                                  # the target network
    uv run python benchmarks/runtimes.py --models resnet50 shufflenet_v1_g3_x1_0 --rounds 15
    uv run python benchmarks/runtimes.py --quick                          # 3 rounds, no compilers
    uv run python benchmarks/runtimes.py --models resnet18 resnet50 --runtimes eager tensorflow
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.table import Table

from bench.core.models import model_and_shape
from bench.core.options import fixed_threads
from bench.measure.parity import check_parity
from bench.measure.timing import prepare
from bench.runtimes import get_runtime
from bench.runtimes.base import Session, Target, output_tensor

ALL_RUNTIMES = ["eager", "compile", "aoti", "onnxruntime", "openvino"]
# on request only: another framework (the Keras twins of the ResNets), see benchmarks/tf_threads.py
CHOICES = [*ALL_RUNTIMES, "tensorflow"]
BURST_S = 0.25


@dataclass
class Prepared:
    """One runtime's session on the shared model and input, with its cold start and parity."""

    runtime: str
    session: Session
    prepare_s: float
    first_ms: float
    parity: float | None


def prepare_all(spec: str, runtimes: list[str], batch: int, threads: int) -> list[Prepared]:
    """Build the model once and prepare a session of every runtime on it."""
    model, shape = model_and_shape(spec)
    model, inputs = prepare(model, shape, batch, "cpu", torch.float32, False)
    with torch.inference_mode():
        reference = output_tensor(model.eval()(inputs)).float()
    target = Target("cpu", torch.float32, threads)
    prepared = []
    for name in runtimes:
        start = time.perf_counter()
        session = get_runtime(name).prepare(model, inputs, target)
        prepare_s = time.perf_counter() - start
        with torch.inference_mode():
            start = time.perf_counter()
            session.step()
            first_ms = (time.perf_counter() - start) * 1000.0
        parity = (
            None if name == "eager" else check_parity(session.output(), reference, torch.float32)
        )
        prepared.append(Prepared(name, session, prepare_s, first_ms, parity))
    return prepared


def burst_ms(session: Session) -> float:
    """Median per-call time (ms) of one burst of calls lasting about BURST_S."""
    times: list[float] = []
    deadline = time.perf_counter() + BURST_S
    with torch.inference_mode():
        session.step()  # one untimed call: the burst starts warm
        while time.perf_counter() < deadline or len(times) < 3:
            start = time.perf_counter()
            session.step()
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def interleaved_rounds(prepared: list[Prepared], rounds: int, seed: int) -> dict[str, list[float]]:
    """runtime -> one burst median per round, runtimes in a fresh random order each round."""
    rng = random.Random(seed)
    per_round: dict[str, list[float]] = {p.runtime: [] for p in prepared}
    for _ in range(rounds):
        for item in rng.sample(prepared, len(prepared)):
            per_round[item.runtime].append(burst_ms(item.session))
    return per_round


def speed_up(eager: list[float], other: list[float]) -> float:
    """Median over rounds of eager / other, paired by round."""
    return statistics.median(e / o for e, o in zip(eager, other, strict=True))


def network_table(spec: str, prepared: list[Prepared], per_round: dict[str, list[float]]) -> Table:
    """One table per network: median ms, speed-up over eager, cold start and parity."""
    table = Table(title=f"{spec}: {len(per_round['eager'])} interleaved rounds")
    for header in ("runtime", "median ms", "speed-up", "prepare s", "first ms", "parity"):
        table.add_column(header, justify="left" if header == "runtime" else "right")
    for item in prepared:
        rounds = per_round[item.runtime]
        up = speed_up(per_round["eager"], rounds)
        parity = "–" if item.parity is None else f"{item.parity:.2g}"
        table.add_row(
            item.runtime, f"{statistics.median(rounds):.3f}", f"{up:.2f}x",
            f"{item.prepare_s:.2f}", f"{item.first_ms:.2f}", parity,
        )  # fmt: skip
    return table


def main() -> None:
    """Parse options, measure every network, print one table each and the target's verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["shufflenet_v2_x1_0"])
    parser.add_argument("--runtimes", nargs="+", default=ALL_RUNTIMES, choices=CHOICES)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 rounds, eager/onnxruntime/openvino")
    args = parser.parse_args()
    runtimes = ["eager", "onnxruntime", "openvino"] if args.quick else args.runtimes
    runtimes = ["eager", *(r for r in runtimes if r != "eager")]
    console = Console()
    with fixed_threads(args.threads) as threads:
        for spec in args.models:
            prepared = prepare_all(spec, runtimes, args.batch, threads)
            per_round = interleaved_rounds(prepared, 3 if args.quick else args.rounds, args.seed)
            console.print(network_table(spec, prepared, per_round))
            best = max(speed_up(per_round["eager"], per_round[r]) for r in runtimes[1:])
            console.print(f"{spec}: fastest runtime {best:.2f}x eager (target >= 2x: "
                          f"{'met' if best >= 2 else 'not met'})")  # fmt: skip


if __name__ == "__main__":
    main()
