"""--cpus parsing and pinning; --isolate: a case measured in a fresh child process."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from bench.core.errors import BenchError
from bench.core.options import allowed_cpus, parse_cpu_list, pin_cpus
from bench.runs.folder import load_run
from bench.runs.isolate import IsolatedChildDied, run_isolated
from bench.runs.runner import run_suite

HAS_AFFINITY = hasattr(os, "sched_getaffinity")


def test_cpu_lists_and_ranges_are_parsed() -> None:
    first = min(allowed_cpus())
    assert parse_cpu_list(str(first)) == [first]
    assert parse_cpu_list(f"{first}-{first},{first}") == [first]


@pytest.mark.parametrize(
    ("text", "message"),
    [("x", "'x' is not a CPU"), ("3-1", "'3-1' is not a CPU"), ("100000", "CPU 100000 is not")],
)
def test_bad_cpu_lists_are_one_line(text: str, message: str) -> None:
    with pytest.raises(BenchError, match=message) as caught:
        parse_cpu_list(text)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(not HAS_AFFINITY, reason="needs os.sched_setaffinity")
def test_pinning_covers_every_thread_of_the_process() -> None:
    before = os.sched_getaffinity(0)
    first = min(before)
    try:
        pin_cpus([first])
        tasks = Path("/proc/self/task")
        assert all(os.sched_getaffinity(int(t.name)) == {first} for t in tasks.iterdir())
    finally:
        pin_cpus(sorted(before))
    assert os.sched_getaffinity(0) == before


def test_the_child_runs_in_another_process_and_errors_come_back() -> None:
    assert run_isolated(os.getpid) != os.getpid()
    with pytest.raises(ValueError, match="invalid literal"):
        run_isolated(int, "not a number")


def test_a_child_that_dies_is_one_clear_error() -> None:
    with pytest.raises(IsolatedChildDied, match="exited with code 3 before sending"):
        run_isolated(os._exit, 3)


@pytest.mark.slow
def test_isolated_run_writes_rows_as_without_isolation(tmp_path: Path) -> None:
    suite = tmp_path / "iso.yaml"
    suite.write_text(
        textwrap.dedent(
            """
            name: iso
            defaults: {threads: 1, budget_s: 0.2}
            cases:
              - name: one
                models: ["g1:c1=4,c2=8,blocks=1,size=8", "no_such_model_here"]
            """
        ).lstrip(),
        encoding="utf-8",
    )
    with pytest.raises(BenchError, match="no_such_model_here"):
        run_suite(suite, out=tmp_path / "bad", calibrate=False, isolate=True)
    suite.write_text(suite.read_text().replace(', "no_such_model_here"', ""))
    run_dir = run_suite(suite, out=tmp_path / "run", calibrate=False, isolate=True)
    loaded = load_run(run_dir)
    row = loaded.rows.iloc[0]
    assert row["status"] == "ok" and row["n_samples"] == len(loaded.samples[row["case_id"]])
    assert loaded.env["isolate"] is True
