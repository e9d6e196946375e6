"""How long counting a zoo model by spec takes: build (meta device, CPU fallback) + one count.

Counts every torchvision classification model by its spec (`count("torchvision:<name>")`, the
published configuration at native size) and, with `--timm`, the timm models of suites/zoo.yaml;
each once after a warm-up count of resnet18 (torch, torchvision and timm imports excluded).
Prints the median, 90th percentile and maximum seconds per model, the five slowest, and whether
the median meets the target (under 0.5 s per model), plus how many models matched the published
params and mult-adds. Run: `uv run python benchmarks/zoo_count.py [--timm]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rich.console import Console
from rich.table import Table

from bench.measure.counting import CountResult, count
from bench.runs.suite import load_suite, resolve_suite_path
from netdefs.zoo import published_weights, torchvision_classification_names

TARGET_MEDIAN_S = 0.5


def timed_count(spec: str) -> tuple[float, CountResult]:
    """(seconds, CountResult) of counting one spec, build included."""
    start = time.perf_counter()
    result = count(spec)
    return time.perf_counter() - start, result


def published_match(name: str, result: CountResult) -> bool:
    """Params exact and mult-adds at the published three decimals (or within 0.5%)."""
    meta = published_weights(name).meta
    giga = result.mult_adds / 1e9
    close = round(giga, 3) == meta["_ops"] or abs(giga - meta["_ops"]) <= 0.005 * meta["_ops"]
    return result.params == meta["num_params"] and close and not result.unhandled


def zoo_timm_specs() -> list[str]:
    """The timm specs of suites/zoo.yaml."""
    suite = load_suite(resolve_suite_path("zoo"))
    return [case.model for case in suite.cases if case.model.startswith("timm:")]


def main() -> None:
    """Count the zoo, print the per-model time statistics and the slowest models."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timm", action="store_true", help="also the timm models of zoo.yaml")
    args = parser.parse_args()
    count("torchvision:resnet18")  # warm-up: imports and first-call caches
    seconds: dict[str, float] = {}
    matched = 0
    for name in torchvision_classification_names():
        seconds[f"torchvision:{name}"], result = timed_count(f"torchvision:{name}")
        matched += published_match(name, result)
    for spec in zoo_timm_specs() if args.timm else []:
        seconds[spec], _ = timed_count(spec)
    values = sorted(seconds.values())
    median = statistics.median(values)
    table = Table(title=f"counting {len(values)} zoo models by spec (build + count), seconds")
    for column in ("median", "p90", "max", "total"):
        table.add_column(column, justify="right")
    p90 = values[int(0.9 * (len(values) - 1))]
    table.add_row(f"{median:.3f}", f"{p90:.3f}", f"{values[-1]:.3f}", f"{sum(values):.1f}")
    console = Console(width=120)
    console.print(table)
    slowest = sorted(seconds.items(), key=lambda item: -item[1])[:5]
    console.print("slowest: " + ", ".join(f"{spec} {s:.2f} s" for spec, s in slowest))
    console.print(f"torchvision models matching the published numbers: {matched}/80")
    verdict = "meets" if median < TARGET_MEDIAN_S else "MISSES"
    console.print(f"median {median:.3f} s per model: {verdict} the target < {TARGET_MEDIAN_S} s")


if __name__ == "__main__":
    main()
