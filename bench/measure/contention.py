"""What else the machine was doing while a case was measured, read from Linux's /proc.

A `Snapshot` reads the load average and the run queue (/proc/loadavg, /proc/stat
`procs_running`), the CPU time of all CPUs and the steal time (/proc/stat), this process's CPU
time (/proc/self/stat) and the time its threads waited for a CPU (/proc/self/task/*/schedstat,
the scheduler's run delay). Between two snapshots:

- `foreign_cpus`: CPU time of other processes (all busy time minus ours) per second of wall time;
- `steal_cpus`: time the hypervisor gave to other guests, per second;
- `wait_cpus`: time our threads were ready to run but another task held the CPU, per second;
- `contention`, the figure a row carries, in CPUs' worth of time taken from the measurement:
  `wait_cpus + steal_cpus`. Without schedstat, the foreign load that did not fit in the CPUs we
  left idle stands in for the wait.

A case whose contention exceeds CONTENTION_LIMIT is measured again (`bench.runs`). Off Linux
(no /proc) every reading is None and nothing is judged. `root` is injectable for fixture tests.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.core.limits import Limit

PROC = Path("/proc")
CONTENTION_LIMIT = Limit(
    "BENCH_CONTENTION_LIMIT", 0.25, "CPUs' worth of contention before a case is re-measured"
)
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (of the cpu line)
STEAL_FIELD = 7


@dataclass(frozen=True)
class Snapshot:
    """One reading of the machine (CPU times in seconds)."""

    wall_s: float
    load1: float
    procs_running: int
    n_cpus: int
    busy_s: float
    steal_s: float
    own_cpu_s: float
    own_wait_s: float | None


@dataclass(frozen=True)
class Contention:
    """What other work took from a measurement between two snapshots (CPUs' worth)."""

    contention: float
    foreign_cpus: float
    steal_cpus: float
    wait_cpus: float | None
    load1: float
    procs_running: int

    def as_row(self) -> dict[str, float | int | None]:
        """The row columns: contention, foreign_cpus, load_avg (rounded to 3 decimals)."""
        return {
            "contention": round(self.contention, 3),
            "foreign_cpus": round(self.foreign_cpus, 3),
            "load_avg": round(self.load1, 2),
        }


def read_snapshot(
    root: Path = PROC, clock: Callable[[], float] = time.monotonic, hz: int | None = None
) -> Snapshot | None:
    """Read the machine's state now (None where /proc cannot be read, e.g. off Linux)."""
    try:
        hz = hz or os.sysconf("SC_CLK_TCK")
        load1, procs = _loadavg(root / "loadavg")
        cpu, n_cpus, running = _stat(root / "stat")
        own = _own_cpu(root / "self" / "stat") / hz
    except (OSError, ValueError, IndexError, AttributeError):  # AttributeError: no os.sysconf
        return None
    busy = sum(cpu[i] for i in BUSY_FIELDS if i < len(cpu)) / hz
    steal = (cpu[STEAL_FIELD] if len(cpu) > STEAL_FIELD else 0.0) / hz
    return Snapshot(
        clock(), load1, running or procs, n_cpus, busy, steal, own, _own_wait(root / "self")
    )


def _loadavg(path: Path) -> tuple[float, int]:
    """The 1-minute load average and the runnable count of /proc/loadavg."""
    fields = path.read_text().split()
    return float(fields[0]), int(fields[3].split("/")[0])


def _stat(path: Path) -> tuple[list[float], int, int]:
    """The aggregate cpu line (jiffies), the number of CPUs and procs_running of /proc/stat."""
    cpu: list[float] = []
    n_cpus = running = 0
    for line in path.read_text().splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            cpu = [float(v) for v in rest.split()]
        elif name.startswith("cpu") and name[3:].isdigit():
            n_cpus += 1
        elif name == "procs_running":
            running = int(rest)
    if not cpu:
        raise ValueError(f"{path}: no cpu line")
    return cpu, max(n_cpus, 1), running


def _own_cpu(path: Path) -> float:
    """utime + stime of a process (jiffies) from its /proc/<pid>/stat (comm may hold ')')."""
    fields = path.read_text().rpartition(")")[2].split()
    return float(fields[11]) + float(fields[12])


def _own_wait(process: Path) -> float | None:
    """Seconds all threads of the process waited on a run queue (None without schedstat)."""
    try:
        tasks = list((process / "task").iterdir())
        waits = [_run_delay(task / "schedstat") for task in tasks]
    except OSError:
        return None
    known = [w for w in waits if w is not None]
    return sum(known) / 1e9 if known else None


def _run_delay(path: Path) -> float | None:
    """The run delay (ns) of one thread's schedstat; None when the thread has gone."""
    try:
        return float(path.read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None


def between(before: Snapshot | None, after: Snapshot | None) -> Contention | None:
    """The contention between two snapshots (None when either is missing or no time passed)."""
    if before is None or after is None or after.wall_s <= before.wall_s:
        return None
    wall = after.wall_s - before.wall_s
    own = max(after.own_cpu_s - before.own_cpu_s, 0.0) / wall
    foreign = max(after.busy_s - before.busy_s, 0.0) / wall - own
    steal = max(after.steal_s - before.steal_s, 0.0) / wall
    foreign = max(foreign - steal, 0.0)  # steal counts as busy in /proc/stat, not as a process
    wait = None
    if before.own_wait_s is not None and after.own_wait_s is not None:
        wait = max(after.own_wait_s - before.own_wait_s, 0.0) / wall
    taken = wait if wait is not None else max(foreign - (after.n_cpus - own), 0.0)
    load = max(before.load1, after.load1)
    running = max(before.procs_running, after.procs_running)
    return Contention(taken + steal, foreign, steal, wait, load, running)


class ContentionProbe:
    """A context manager: snapshots on entry and exit, `result` the contention between them."""

    def __init__(self, root: Path = PROC, clock: Callable[[], float] = time.monotonic) -> None:
        self.root, self.clock = root, clock
        self.before: Snapshot | None = None
        self.result: Contention | None = None

    def __enter__(self) -> ContentionProbe:
        self.before = read_snapshot(self.root, self.clock)
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = between(self.before, read_snapshot(self.root, self.clock))


def is_contended(found: Contention | None, limit: float | None = None) -> bool:
    """Whether the contention exceeded the limit (CONTENTION_LIMIT unless given)."""
    if found is None or math.isnan(found.contention):
        return False
    return found.contention > (CONTENTION_LIMIT.value() if limit is None else limit)
