"""Time-to-accuracy of the flower fine-tunes, outside the suite runner (per-epoch log to stderr).

    uv run python benchmarks/flowers_bench.py          # suites/flowers.yaml (data: flowers)
    uv run python benchmarks/flowers_bench.py --models shufflenet_v2_x1_0 --set threads=1
    uv run python benchmarks/flowers_bench.py --suite suites/flowers-quick.yaml
    uv run python benchmarks/flowers_bench.py --data ../shared/data/flowers-128.tar  # here

`data: flowers` is found as `bench run` finds it (`--data`, then BENCH_DATA, then the cache that
`bench data flowers` fills).

Each model's summary row and epoch list go to OUT/<model>.json; a table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import yaml

from bench.train import finetune, parse_train_options


def finetune_cases(suite: Path) -> list[tuple[str, dict]]:
    """(model spec, train mapping) for every model of every `kind: finetune` case."""
    data = yaml.safe_load(suite.read_text())
    pairs = []
    for case in data.get("cases", []):
        if case.get("kind") == "finetune":
            for item in case["models"]:
                pairs.append((item["model"] if isinstance(item, dict) else item, case["train"]))
    return pairs


def parse_sets(items: list[str]) -> dict:
    """`key=value` overrides (values parsed as YAML scalars or lists)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key.strip()] = yaml.safe_load(value)
    return out


def main() -> None:
    """Run the fine-tunes of a suite and report accuracy, epochs and minutes per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=Path("suites/flowers.yaml"))
    parser.add_argument("--models", nargs="*", help="only these model specs")
    parser.add_argument("--set", dest="sets", nargs="*", default=[], help="train key=value")
    parser.add_argument("--data", help="override train.data (folder or .tar/.tgz)")
    parser.add_argument("--out", type=Path, default=Path("results/flowers-bench"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    rows = []
    for spec, mapping in finetune_cases(args.suite):
        if args.models and spec not in args.models:
            continue
        options = parse_train_options({**mapping, **parse_sets(args.sets)}, f"{args.suite}")
        started = time.perf_counter()
        outcome = finetune(spec, options, args.out, options.device, args.data)
        wall = time.perf_counter() - started
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"model": spec, "wall_s": wall, "row": outcome.row, "epochs": outcome.epochs}
        (args.out / f"{spec.replace(':', '_')}.json").write_text(json.dumps(payload, indent=2))
        rows.append(payload)
    print(f"{'model':28} {'epochs':>6} {'train min':>9} {'best top1 %':>11} {'final %':>8}")
    for p in rows:
        r = p["row"]
        print(
            f"{p['model']:28} {r['epochs']:>6} {r['train_seconds'] / 60:>9.1f} "
            f"{r['best_val_acc']:>11.2f} {r['final_val_acc']:>8.2f}"
        )


if __name__ == "__main__":
    main()
