"""The contention reader on fixture /proc trees (and one reading of this machine's /proc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.measure.contention import (
    ContentionProbe,
    between,
    is_contended,
    read_snapshot,
)

HZ = 100


def fake_proc(
    root: Path,
    cpu: list[int],
    own: tuple[int, int],
    waits_ns: list[int] | None,
    load: str = "0.50 0.40 0.30 1/200 999",
    running: int = 1,
) -> Path:
    """A /proc tree with loadavg, stat (2 CPUs), self/stat and per-thread schedstat files."""
    (root / "self" / "task").mkdir(parents=True, exist_ok=True)
    (root / "loadavg").write_text(load + "\n")
    line = " ".join(str(v) for v in cpu)
    stat = f"cpu  {line}\ncpu0 {line}\ncpu1 {line}\nintr 1 2\nprocs_running {running}\n"
    (root / "stat").write_text(stat)
    fields = ["S", *["0"] * 10, str(own[0]), str(own[1]), *["0"] * 30]
    (root / "self" / "stat").write_text("4242 (python (bench)) " + " ".join(fields) + "\n")
    for index, wait in enumerate(waits_ns or []):
        task = root / "self" / "task" / str(4242 + index)
        task.mkdir(exist_ok=True)
        (task / "schedstat").write_text(f"123456 {wait} 7\n")
    return root


class Clock:
    """A settable fake clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def cpu_line(user: int, system: int = 0, idle: int = 0, steal: int = 0) -> list[int]:
    """user nice system idle iowait irq softirq steal guest guest_nice (jiffies)."""
    return [user, 0, system, idle, 0, 0, 0, steal, 0, 0]


def test_a_quiet_machine_has_no_contention(tmp_path: Path) -> None:
    clock = Clock()
    fake_proc(tmp_path, cpu_line(1000, idle=5000), (300, 0), [1_000_000])
    before = read_snapshot(tmp_path, clock, HZ)
    clock.now = 1.0  # one second: we used 1 CPU (100 jiffies), nobody else; no waiting
    fake_proc(tmp_path, cpu_line(1100, idle=5100), (400, 0), [1_000_000])
    found = between(before, read_snapshot(tmp_path, clock, HZ))
    assert found.contention == pytest.approx(0.0) and found.foreign_cpus == pytest.approx(0.0)
    assert found.wait_cpus == pytest.approx(0.0) and not is_contended(found, 0.25)


def test_waiting_threads_and_foreign_load_are_read(tmp_path: Path) -> None:
    clock = Clock()
    fake_proc(tmp_path, cpu_line(1000), (300, 0), [0, 5_000_000], "2.10 1 1 3/200 9", 3)
    before = read_snapshot(tmp_path, clock, HZ)
    clock.now = 2.0  # 2 s: 400 busy jiffies, 120 ours; our two threads waited 0.8 s in all
    fake_proc(tmp_path, cpu_line(1300, system=100), (360, 60), [300_000_000, 505_000_000])
    found = between(before, read_snapshot(tmp_path, clock, HZ))
    assert found.foreign_cpus == pytest.approx((400 - 120) / HZ / 2.0)
    assert found.wait_cpus == pytest.approx(0.4)
    assert found.contention == pytest.approx(0.4)
    assert found.load1 == 2.10 and found.procs_running == 3
    assert is_contended(found, 0.25) and not is_contended(found, 0.5)
    assert found.as_row() == {"contention": 0.4, "foreign_cpus": 1.4, "load_avg": 2.1}


def test_steal_time_counts_as_contention_not_as_a_process(tmp_path: Path) -> None:
    clock = Clock()
    fake_proc(tmp_path, cpu_line(0), (0, 0), [0])
    before = read_snapshot(tmp_path, clock, HZ)
    clock.now = 1.0  # we ran 0.7 s, the hypervisor stole 0.3 s
    fake_proc(tmp_path, cpu_line(70, steal=30), (70, 0), [0])
    found = between(before, read_snapshot(tmp_path, clock, HZ))
    assert found.steal_cpus == pytest.approx(0.3) and found.foreign_cpus == pytest.approx(0.0)
    assert found.contention == pytest.approx(0.3)


def test_without_schedstat_foreign_load_beyond_idle_cpus_stands_in(tmp_path: Path) -> None:
    clock = Clock()
    fake_proc(tmp_path, cpu_line(0), (0, 0), None)
    before = read_snapshot(tmp_path, clock, HZ)
    assert before.own_wait_s is None
    clock.now = 1.0  # 2 CPUs, we used 0.5: the 1.5 CPUs of others leave none idle for us
    fake_proc(tmp_path, cpu_line(200), (50, 0), None)
    found = between(before, read_snapshot(tmp_path, clock, HZ))
    assert found.wait_cpus is None and found.foreign_cpus == pytest.approx(1.5)
    assert found.contention == pytest.approx(1.5 - (2 - 0.5))


def test_missing_or_damaged_proc_reads_as_none(tmp_path: Path) -> None:
    assert read_snapshot(tmp_path / "nothing", Clock(), HZ) is None
    fake_proc(tmp_path, cpu_line(0), (0, 0), [0])
    (tmp_path / "stat").write_text("garbage\n")
    assert read_snapshot(tmp_path, Clock(), HZ) is None
    assert between(None, None) is None and not is_contended(None)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")
def test_this_machine_can_be_read() -> None:
    with ContentionProbe() as probe:
        sum(i * i for i in range(200_000))
    assert probe.result is not None and probe.result.contention >= 0.0
