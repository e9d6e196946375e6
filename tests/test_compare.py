"""bench.analysis.compare statistics and the `bench compare` command on hand-written run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.analysis.compare import (
    INSUFFICIENT,
    METRICS,
    CaseData,
    Ratio,
    bootstrap_ratio,
    compare,
    compare_case,
    normal_ratio,
    parse_threshold,
    regression_verdict,
)
from bench.cli.app import app
from bench.core.errors import BenchError

MEDIAN = METRICS["latency_ms_median"]
runner = CliRunner()


def noisy(center: float, n: int, seed: int, spread: float = 0.03) -> list[float]:
    """Positive, right-skewed latency-like samples around `center` ms."""
    rng = np.random.default_rng(seed)
    return list(center * np.exp(rng.normal(0.0, spread, n)) + rng.exponential(center * 0.01, n))


def data(samples: list[float]) -> CaseData:
    """CaseData holding raw samples (value = their median)."""
    values = np.asarray(samples, dtype=float)
    return CaseData(float(np.median(values)), samples=values, n=values.size)


def judge(base: list[float], new: list[float], threshold: float = 0.10) -> tuple[str, object]:
    """Verdict and full comparison of two sample sets at 99% confidence."""
    row = compare_case("x", data(base), data(new), MEDIAN, threshold, 0.99)
    return row.verdict, row


ENV = {"hostname": "box-a", "cpu_model": "cpu-a", "gpu_name": None, "results_format_version": 1}


def write_run(
    folder: Path,
    samples: dict[str, list[float]],
    env: dict | None = None,
    status: dict[str, str] | None = None,
) -> Path:
    """A run folder in the documented format: results.csv, samples.jsonl, env.json."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**ENV, "calibration": {"ref_workload_ms": 10.0}, **(env or {})}
    rows = [
        {
            "case_id": case_id,
            "status": (status or {}).get(case_id, "ok"),
            "latency_ms_median": float(np.median(values)),
            "n_samples": len(values),
        }
        for case_id, values in samples.items()
    ]
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    lines = [json.dumps({"case_id": k, "samples_ms": v}) for k, v in samples.items()]
    (folder / "samples.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "env.json").write_text(json.dumps(env))
    return folder


def write_pytest_json(path: Path, times_s: dict[str, list[float]], save_data: bool) -> Path:
    """A pytest-benchmark JSON file with per-iteration seconds (data only when save_data)."""
    benchmarks = []
    for name, values in times_s.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        stats = {"median": median, "mean": float(np.mean(values)), "iqr": q3 - q1}
        stats |= {"stddev": float(np.std(values, ddof=1)), "rounds": len(values)}
        if save_data:
            stats["data"] = list(values)
        benchmarks.append({"name": name, "fullname": f"tests/perf/t.py::{name}", "stats": stats})
    doc = {
        "machine_info": {"node": "box-a", "cpu": {"brand_raw": "cpu-a"}},
        "benchmarks": benchmarks,
    }
    path.write_text(json.dumps(doc))
    return path


def flat(text: str) -> str:
    """Output with rich's line wrapping undone (runs of whitespace become one space)."""
    return " ".join(text.split())


def invoke(*args: str):
    """Run `bench compare ...` through the typer app."""
    return runner.invoke(app, ["compare", *args])


# ---- statistics ----


def test_clear_regression_is_flagged_and_interval_holds_true_ratio() -> None:
    found, row = judge(noisy(10.0, 60, 1), noisy(13.0, 60, 2))
    assert found == "regression"
    assert row.low < 1.3 < row.high


def test_unchanged_code_is_unchanged() -> None:
    found, row = judge(noisy(10.0, 60, 3), noisy(10.0, 60, 4))
    assert found in ("unchanged", "slower", "faster")
    assert found != "regression"
    assert row.low < 1.0 < row.high or abs(row.ratio - 1.0) < 0.02


def test_small_real_slowdown_is_slower_not_regression() -> None:
    found, row = judge(noisy(10.0, 200, 5, 0.01), noisy(10.4, 200, 6, 0.01))
    assert found == "slower"
    assert 1.0 < row.low < 1.1


def test_faster() -> None:
    assert judge(noisy(10.0, 60, 7), noisy(7.0, 60, 8))[0] == "faster"


def test_bimodal_shifting_mixture_gives_wide_interval_not_regression() -> None:
    base = [10.0 + 0.01 * i for i in range(16)] + [20.0 + 0.01 * i for i in range(14)]
    new = [10.0 + 0.01 * i for i in range(14)] + [20.0 + 0.01 * i for i in range(16)]
    found, row = judge(base, new)
    assert row.ratio > 1.5  # the medians jumped from one mode to the other
    assert row.low <= 1.1 and row.high >= 1.5
    assert found != "regression"


def test_tiny_sample_counts_are_insufficient_never_regression() -> None:
    found, row = judge([10.0, 10.1, 10.2], [20.0, 20.1, 20.2])
    assert found == INSUFFICIENT
    assert row.n_base == 3


def test_identical_samples_give_ratio_one_and_point_interval() -> None:
    found, row = judge([5.0] * 20, [5.0] * 20)
    assert (row.ratio, row.low, row.high) == (1.0, 1.0, 1.0)
    assert found == "unchanged"


def test_bootstrap_is_seeded_and_deterministic() -> None:
    base, new = noisy(10.0, 40, 9), noisy(11.0, 40, 10)
    first = bootstrap_ratio(base, new, MEDIAN.reduce, 0.99)
    assert first == bootstrap_ratio(base, new, MEDIAN.reduce, 0.99)
    assert bootstrap_ratio(base, new, MEDIAN.reduce, 0.9).high < first.high


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1.11, 1.3, "regression"),
        (1.05, 1.3, "slower"),
        (0.8, 0.95, "faster"),
        (0.9, 1.2, "unchanged"),
    ],
)
def test_verdict_rule(low: float, high: float, expected: str) -> None:
    assert regression_verdict(Ratio(1.0, low, high, "bootstrap"), 0.10, 20, 20) == expected


def test_normal_ratio_from_statistics_only() -> None:
    base = CaseData(10.0, se=0.1, n=30)
    ratio = normal_ratio(base, CaseData(12.0, se=0.1, n=30), 0.99)
    assert ratio.low < 1.2 < ratio.high and ratio.low > 1.1
    assert normal_ratio(base, CaseData(12.0, n=0), 0.99).method == "none"


@pytest.mark.parametrize(("text", "value"), [("10%", 0.1), ("0.25", 0.25), ("150%", 1.5)])
def test_parse_threshold(text: str, value: float) -> None:
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["50", "ten", "-5%"])
def test_parse_threshold_rejects(text: str) -> None:
    with pytest.raises(BenchError, match="threshold"):
        parse_threshold(text)


# ---- run folders and the command ----


def test_compare_no_change_exits_0(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"g1": noisy(5.0, 40, 1), "g2": noisy(8.0, 40, 2)})
    new = write_run(tmp_path / "b", {"g1": noisy(5.0, 40, 3), "g2": noisy(8.0, 40, 4)})
    result = invoke(str(base), str(new))
    assert result.exit_code == 0, result.output
    assert "no regression" in flat(result.stdout)


def test_compare_regression_exits_1_and_json_names_it(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"g1": noisy(5.0, 40, 1), "g2": noisy(8.0, 40, 2)})
    new = write_run(tmp_path / "b", {"g1": noisy(5.0, 40, 3), "g2": noisy(10.0, 40, 4)})
    assert invoke(str(base), str(new)).exit_code == 1
    result = invoke(str(base), str(new), "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["regressions"] == ["g2"]
    assert {c["case_id"]: c["verdict"] for c in payload["cases"]}["g1"] != "regression"
    assert invoke(str(base), str(new), "--threshold", "50%").exit_code == 0


def test_mismatched_cases_are_reported(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(5.0, 20, 1), "b": noisy(5.0, 20, 2)})
    new = write_run(tmp_path / "b", {"b": noisy(5.0, 20, 3), "c": noisy(5.0, 20, 4)})
    result = compare(base, new)
    assert [c.case_id for c in result.cases] == ["b"]
    assert (result.only_in_base, result.only_in_new) == (["a"], ["c"])
    cli = invoke(str(base), str(new))
    assert cli.exit_code == 0 and "only in BASE (1): a" in flat(cli.stderr)


def test_failed_rows_are_not_compared(tmp_path: Path) -> None:
    samples = {"a": noisy(5.0, 20, 1), "b": noisy(5.0, 20, 2)}
    base = write_run(tmp_path / "a", samples)
    new = write_run(tmp_path / "b", samples, status={"b": "error"})
    result = compare(base, new)
    assert [c.case_id for c in result.cases] == ["a"]
    assert result.skipped["b"].startswith("NEW status error")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda a, b: [str(a / "missing"), str(b)], "does not exist"),
        (lambda a, b: [str(a), str(b), "--metric", "latency_ms_p42"], "unknown metric"),
        (lambda a, b: [str(a), str(b), "--normalize", "maybe"], "--normalize"),
        (lambda a, b: [str(a), str(b), "--threshold", "lots"], "threshold"),
    ],
)
def test_bad_input_exits_2(tmp_path: Path, make, message: str) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(5.0, 20, 1)})
    new = write_run(tmp_path / "b", {"a": noisy(5.0, 20, 2)})
    result = invoke(*make(base, new))
    assert result.exit_code == 2
    assert message in flat(result.stderr)


def test_no_common_cases_exits_2(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(5.0, 20, 1)})
    new = write_run(tmp_path / "b", {"z": noisy(5.0, 20, 2)})
    result = invoke(str(base), str(new))
    assert result.exit_code == 2 and "no common cases" in flat(result.stderr)


def test_incompatible_results_format_version_exits_2(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(5.0, 20, 1)})
    new = write_run(tmp_path / "b", {"a": noisy(5.0, 20, 2)}, env={"results_format_version": 99})
    result = invoke(str(base), str(new))
    assert result.exit_code == 2 and "results_format_version" in flat(result.stderr)


def test_other_machine_is_normalised_by_calibration(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(20.0, 40, 1)})
    slow_box = {"hostname": "box-b", "calibration": {"ref_workload_ms": 20.0}}
    new = write_run(tmp_path / "b", {"a": noisy(40.0, 40, 2)}, env=slow_box)
    result = compare(base, new)
    assert result.normalized and "hostname" in result.normalize_note
    assert "BASE 10, NEW 20" in result.normalize_note
    assert result.cases[0].ratio == pytest.approx(1.0, abs=0.03)
    assert result.cases[0].base == pytest.approx(2.0, rel=0.03)  # 20 ms / 10 ms ref
    cli = invoke(str(base), str(new))
    assert cli.exit_code == 0 and "calibration-normalised" in flat(cli.stdout)
    assert invoke(str(base), str(new), "--normalize", "none").exit_code == 1


def test_same_machine_is_not_normalised_unless_asked(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(20.0, 40, 1)})
    new = write_run(tmp_path / "b", {"a": noisy(20.0, 40, 2)})
    assert not compare(base, new).normalized
    assert compare(base, new, normalize="calibration").normalized


def test_same_names_but_a_slower_calibration_is_normalised(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(20.0, 40, 1)})  # ref 10 ms
    busier = {"calibration": {"ref_workload_ms": 14.0}}  # same host name, 40% slower reference
    new = write_run(tmp_path / "b", {"a": noisy(28.0, 40, 2)}, env=busier)
    result = compare(base, new)
    assert result.normalized and "reference workload moved +40%" in result.normalize_note
    assert result.cases[0].verdict != "regression"
    assert compare(base, new, normalize="none").cases[0].verdict == "regression"
    close = write_run(
        tmp_path / "c", {"a": noisy(20.0, 40, 3)}, env={"calibration": {"ref_workload_ms": 10.5}}
    )
    assert not compare(base, close).normalized  # 5% is within what one machine varies


def test_other_machine_without_calibration_exits_2(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(20.0, 40, 1)})
    env = {"hostname": "box-b", "calibration": None}
    new = write_run(tmp_path / "b", {"a": noisy(20.0, 40, 2)}, env=env)
    result = invoke(str(base), str(new))
    assert result.exit_code == 2 and "--normalize none" in flat(result.stderr)
    assert invoke(str(base), str(new), "--normalize", "none").exit_code == 0


def test_suite_folder_means_its_latest_run(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", {"a": noisy(5.0, 40, 1)})
    write_run(tmp_path / "ci" / "20260101T000000Z-aaaa", {"a": noisy(9.0, 40, 2)})
    write_run(tmp_path / "ci" / "20260102T000000Z-bbbb", {"a": noisy(5.0, 40, 3)})
    result = compare(base, tmp_path / "ci")
    assert result.new.endswith("20260102T000000Z-bbbb")
    assert result.cases[0].verdict != "regression"


def test_pytest_benchmark_json_with_raw_data(tmp_path: Path) -> None:
    base = write_pytest_json(tmp_path / "0001.json", {"t[a]": noisy(0.005, 30, 1)}, True)
    new = write_pytest_json(tmp_path / "0002.json", {"t[a]": noisy(0.007, 30, 2)}, True)
    result = compare(base, new)
    case = result.cases[0]
    assert (case.case_id, case.method, case.verdict) == (
        "tests/perf/t.py::t[a]",
        "bootstrap",
        "regression",
    )
    assert case.base == pytest.approx(5.0, rel=0.05)  # seconds became ms
    cli = invoke(str(base), str(new))
    assert cli.exit_code == 1 and "tests/perf/t.py::t[a]" in flat(cli.stdout)  # not markup


def test_pytest_benchmark_json_statistics_only(tmp_path: Path) -> None:
    base = write_pytest_json(tmp_path / "0001.json", {"t[a]": noisy(0.005, 30, 1)}, False)
    new = write_pytest_json(tmp_path / "0002.json", {"t[a]": noisy(0.005, 30, 2)}, False)
    case = compare(base, new).cases[0]
    assert case.method == "normal-approx" and case.verdict != "regression"
    with pytest.raises(BenchError, match="no common cases"):
        compare(base, new, metric="latency_ms_p90")  # needs raw data: both sides skip it


def test_pytest_benchmark_calibration_entry_normalises_across_machines(tmp_path: Path) -> None:
    base = write_pytest_json(tmp_path / "0001.json", {"t[a]": noisy(0.005, 30, 1)}, True)
    new = write_pytest_json(tmp_path / "0002.json", {"t[a]": noisy(0.010, 30, 2)}, True)
    for path, ref_s, node in ((base, 0.001, "box-a"), (new, 0.002, "box-b")):
        doc = json.loads(path.read_text())
        doc["machine_info"]["node"] = node
        ref = {"name": "ref", "extra_info": {"role": "calibration"}, "stats": {"median": ref_s}}
        doc["benchmarks"].append(ref)
        path.write_text(json.dumps(doc))
    result = compare(base, new)
    assert result.normalized and [c.case_id for c in result.cases] == ["tests/perf/t.py::t[a]"]
    assert result.cases[0].ratio == pytest.approx(1.0, abs=0.03)


def test_folder_without_runs_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke(str(tmp_path / "empty"), str(tmp_path / "empty"))
    assert result.exit_code == 2 and "no results.csv and no run folders" in flat(result.stderr)


def test_not_a_pytest_benchmark_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    result = invoke(str(bad), str(bad))
    assert result.exit_code == 2 and "pytest-benchmark" in flat(result.stderr)


# ---- bench baseline update ----


def test_copy_baseline_replaces_the_folder_with_the_run_files(tmp_path: Path) -> None:
    from bench.runs.baselines import copy_baseline

    run = write_run(tmp_path / "run", {"a": noisy(5.0, 20, 1)})
    (run / "suite.yaml").write_text("name: ci\n")
    (run / "results.parquet").write_bytes(b"not copied")
    target = tmp_path / "baselines" / "ci"
    target.mkdir(parents=True)
    (target / "stale.csv").write_text("old")
    copy_baseline(run, target)
    names = sorted(p.name for p in target.iterdir())
    assert names == ["env.json", "results.csv", "samples.jsonl", "suite.yaml"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["ci"]
    assert compare(target, run).cases[0].ratio == 1.0


def test_baseline_update_with_missing_suite_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["baseline", "update", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "does not exist" in flat(result.stderr)


TINY_SUITE = """
name: tiny
defaults: {device: cpu, threads: 1, budget_s: 0.2, metrics: [latency]}
cases:
  - name: g2
    models: ["g2:c=8,groups=2,layers=2,size=8"]
"""


def test_baseline_update_runs_the_suite_and_stores_it(tmp_path: Path, monkeypatch) -> None:
    fake_calibration = {"ref_workload": "fake", "ref_workload_ms": 1.0}
    monkeypatch.setattr("bench.measure.env.run_calibration", lambda device="cpu": fake_calibration)
    monkeypatch.chdir(tmp_path)
    Path("tiny.yaml").write_text(TINY_SUITE)
    result = runner.invoke(app, ["baseline", "update", "tiny.yaml"])
    assert result.exit_code == 0, result.output
    stored = sorted(p.name for p in Path("results/baselines/tiny").iterdir())
    assert stored == ["env.json", "results.csv", "samples.jsonl", "suite.yaml"]
    same = compare("results/baselines/tiny", "results/tiny")  # the run it was copied from
    assert [(c.case_id, c.ratio, c.verdict) for c in same.cases] == [
        ("g2/g2:c=8,groups=2,layers=2,size=8/cpu/b1", 1.0, "unchanged")
    ]
