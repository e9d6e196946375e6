"""Start-up cost of the `bench` command, as whole processes, against `python -c "import torch"`.

Every command is a fresh interpreter of this environment (`python -m bench ...`), so the numbers
are what a user waits for, imports included. The commands run interleaved, round after round
(after one untimed round that warms the file cache); each is reported as its median wall time
and as a ratio to the median of a bare `import torch` measured in the same rounds. Targets
(issue 18): `bench --help` under 1 s; a bad argument rejected within 1.2x of importing torch;
`bench count resnet50` within 1.5x. The exit codes are checked too (0, or 2 for a bad argument).
Run: `uv run python benchmarks/cli_startup.py [--rounds N] [--json FILE]`; on a shared machine
say what else was running (`uptime`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Command:
    """One measured process: its label, arguments, expected exit code and target."""

    label: str
    argv: tuple[str, ...]
    exit_code: int
    target: str  # "baseline", "< 1 s", "<= 1.2x", "<= 1.5x"


BENCH = (sys.executable, "-m", "bench")
COMMANDS = (
    Command("import torch", (sys.executable, "-c", "import torch"), 0, "baseline"),
    Command("bench --help", (*BENCH, "--help"), 0, "< 1 s"),
    Command("bench --version", (*BENCH, "--version"), 0, "< 1 s"),
    Command("bench count resnet5O (typo)", (*BENCH, "count", "resnet5O"), 2, "<= 1.2x"),
    Command(
        "bench count resnet50 --input 3x",
        (*BENCH, "count", "resnet50", "--input", "3x"),
        2,
        "<= 1.2x",
    ),  # fmt: skip
    Command(
        "bench time resnet50 --input 0x1x1",
        (*BENCH, "time", "resnet50", "--input", "0x1x1"),
        2,
        "<= 1.2x",
    ),  # fmt: skip
    Command("bench run nope", (*BENCH, "run", "nope"), 2, "<= 1.2x"),
    Command("bench count resnet50", (*BENCH, "count", "resnet50"), 0, "<= 1.5x"),
)


def wall_time(command: Command) -> float:
    """Seconds one process takes from start to exit (its exit code checked)."""
    env = {**os.environ, "COLUMNS": "100"}
    start = time.perf_counter()
    done = subprocess.run(command.argv, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != command.exit_code:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise SystemExit(f"{command.label}: exit {done.returncode}, expected {command.exit_code}: "
                         f"{tail}")  # fmt: skip
    return elapsed


def measure(rounds: int) -> dict[str, list[float]]:
    """Wall times of every command, interleaved: one warm-up round, then `rounds` timed ones."""
    for command in COMMANDS:
        wall_time(command)
    times: dict[str, list[float]] = {c.label: [] for c in COMMANDS}
    for _ in range(rounds):
        for command in COMMANDS:
            times[command.label].append(wall_time(command))
    return times


def verdict(command: Command, median: float, ratio: float) -> str:
    """Whether the command met its target ('-' for the baseline)."""
    if command.target == "baseline":
        return "-"
    met = median < 1.0 if command.target == "< 1 s" else ratio <= float(command.target[2:-1])
    return "met" if met else "MISSED"


def report(times: dict[str, list[float]]) -> list[dict]:
    """Print the table of medians and ratios; return its rows."""
    baseline = statistics.median(times[COMMANDS[0].label])
    table = Table(title=f"CLI start-up ({len(times[COMMANDS[0].label])} rounds, whole processes)")
    for header in ("command", "median s", "min s", "x import torch", "target", "verdict"):
        table.add_column(header, justify="left" if header == "command" else "right")
    rows = []
    for command in COMMANDS:
        median = statistics.median(times[command.label])
        ratio = median / baseline
        row = {
            "command": command.label,
            "median_s": median,
            "min_s": min(times[command.label]),
            "ratio": ratio,
            "target": command.target,
            "verdict": verdict(command, median, ratio),
        }
        rows.append(row)
        table.add_row(command.label, f"{median:.2f}", f"{row['min_s']:.2f}", f"{ratio:.2f}",
                      command.target, row["verdict"])  # fmt: skip
    Console().print(table)
    return rows


def main() -> None:
    """Measure, print the table, optionally write the rows as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    rows = report(measure(args.rounds))
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "loadavg": load}, indent=2) + "\n")


if __name__ == "__main__":
    main()
