"""bench report: sections, figures that open, no NaN/inf, error rows, comparison, CLI."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.run_folder import (
    architecture_rows,
    finetune_rows,
    fixture_env,
    full_run,
    write_run,
)
from PIL import Image
from typer.testing import CliRunner

from bench.analysis import fits
from bench.cli.app import app
from bench.report import document, guideline_section, plots, sections, tables
from bench.report import format as fmt

IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")
NOT_A_NUMBER = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """BASE and NEW fixture runs of the same suite; NEW is 20% slower everywhere."""
    root = tmp_path_factory.mktemp("runs")
    return full_run(root / "base"), full_run(root / "new", scale=1.2)


@pytest.fixture(scope="module")
def single(runs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the BASE run alone."""
    return document.write_report([runs[0]], tmp_path_factory.mktemp("single") / "report.md")


@pytest.fixture(scope="module")
def double(runs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of BASE and NEW together."""
    return document.write_report(list(runs), tmp_path_factory.mktemp("double") / "report.md")


def section(text: str, heading: str) -> str:
    """The text of the level-2 section that starts with `heading`."""
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_report_contains_every_section(single: Path) -> None:
    text = single.read_text()
    for heading in ("Environment", "Results", "Guidelines G1-G4", "What explains latency"):
        assert f"\n## {heading}" in text
    for heading in ("Figures", "Errors and skipped cases"):
        assert f"\n## {heading}" in text
    for group in ("G1", "G2", "G3", "G4", "architectures", "flowers"):
        assert f"### paper: {group} (" in text
    assert "## Comparison" not in text  # one run: nothing to compare


def test_every_image_link_is_a_png_that_opens(single: Path) -> None:
    links = IMAGE_LINK.findall(single.read_text())
    names = {Path(link).name for link in links}
    expected = {"latency_vs_mult_adds_cpu.png", "latency_vs_mac_cpu.png", "roofline_cpu.png"}
    expected |= {"accuracy_vs_latency.png", "guideline_G2_x1_cpu.png", "guideline_G4_c_64_cpu.png"}
    assert expected <= names
    for link in links:
        assert not Path(link).is_absolute() and link.startswith("report_files/")
        with Image.open(single.parent / link) as image:
            assert image.format == "PNG" and image.size[0] > 100
            image.verify()


def test_no_nan_or_inf_in_the_text(single: Path, double: Path) -> None:
    for path in (single, double):
        text = path.read_text()
        assert NOT_A_NUMBER.search(text) is None
        assert "–" in text  # missing values (no GPU, no params of fine-tune rows) are dashes


def test_environment_shows_versions_and_calibration_ceilings(single: Path) -> None:
    env = section(single.read_text(), "Environment")
    assert "| GEMM ceiling (GFLOP/s)       | 50.0 " in env
    assert "| copy bandwidth (GB/s)        | 12.0 " in env
    assert "3.12.3 / 2.14.1 / 0.29.1" in env and "Fixture CPU @ 2.0GHz" in env


def test_tables_carry_units_and_human_numbers(single: Path) -> None:
    results = section(single.read_text(), "Results")
    networks = results.split("### paper: architectures")[1].split("###")[0]
    for header in ("params (M)", "mult-adds (M)", "MAC (MB)", "latency median (ms)"):
        assert header in networks  # prefix chosen per table, from the median value
    assert "| params (k) " in results.split("### paper: G1")[1].split("###")[0]  # ~20 k weights
    assert re.search(r"\| resnet18 +\| 11\.7 +\| 1,814 +\| 104 +\|", results)  # 11,689,512 params
    assert re.search(r"\| resnet18 +\| 91\.2 +\| 600 +\| 3 +\|", results)  # best_val_acc is in %
    assert "Same for every row: case networks, device cpu" in results


def test_wide_tables_are_split(single: Path) -> None:
    table_lines = [line for line in single.read_text().splitlines() if line.startswith("|")]
    widths = [line.count("|") - 1 for line in table_lines]
    assert max(widths) <= tables.MAX_TABLE_COLUMNS
    networks = single.read_text().split("### paper: architectures")[1].split("###")[0]
    assert len(re.findall(r"^\| model ", networks, re.MULTILINE)) == 2  # split in two tables


def test_guidelines_are_normalised_beside_the_paper(single: Path) -> None:
    g2 = section(single.read_text(), "Guidelines").split("### G2 x1 on cpu")[1].split("###")[0]
    assert "paper / first row" in g2 and "ours / first row" in g2
    assert "| 0.695 " in g2  # 27.8 / 40.0, the paper's g=8 relative to g=1
    assert "Spearman rho (ours vs paper): 1.00" in g2
    assert "g=8 1.4x slower than g=1" in g2  # the paper's ARM ratio 40.0 / 27.8
    assert "g=8 1.7x slower than g=1" in g2  # ours (fixture cost model)
    assert "reproduced: yes" in g2


def test_latency_fit_reports_both_r_squared(single: Path) -> None:
    fit = section(single.read_text(), "What explains latency")
    assert re.search(r"\| paper +\| cpu +\| 1 +\| 22 +\| 0\.994 +\| 1\.000 +\|", fit)


def test_r_squared_matches_the_definition() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([2.1, 3.9, 6.2, 7.8, 10.1])
    slope, intercept = np.polyfit(x, y, 1)
    expected = 1 - ((y - (slope * x + intercept)) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert fits.r_squared(x, y) == pytest.approx(expected)
    assert fits.r_squared(np.column_stack([x, x**2]), 3 + x + 2 * x**2) == pytest.approx(1.0)
    assert math.isnan(fits.r_squared(x, np.full(5, 7.0)))


def test_latency_fits_need_enough_cases() -> None:
    frame = pd.DataFrame(
        {
            "suite": "s", "device": "cpu", "status": "ok", "mode": "infer",
            "latency_ms_median": [1.0, 2.0, 3.5], "mult_adds": [1e6, 2e6, 3e6],
            "mac_bytes": [1e5, 3e5, 2e5],
        }
    )  # fmt: skip
    (fit,) = fits.latency_fits(frame)
    assert fit.cases == 3 and math.isnan(fit.r2_mult_adds)
    assert fmt.fmt_r2(fit.r2_mult_adds) == "–"


def test_pareto_front_keeps_points_no_other_beats() -> None:
    points = pd.DataFrame(
        {
            "x": [5.0, 1.0, 3.0, 2.0, 4.0],
            "y": [90.0, 80.0, 85.0, 79.0, 84.0],
            "label": list("abcde"),
        }
    )
    assert list(fits.pareto_front(points)["label"]) == ["b", "c", "a"]


def test_formatting_never_prints_nan_or_inf() -> None:
    for missing in (None, math.nan, math.inf, -math.inf, "", "nan", pd.NA):
        assert fmt.fmt_number(missing) == "–" and fmt.fmt_int(missing) == "–"
    assert fmt.fmt_number(1_234_567, 1e6) == "1.23"
    assert fmt.fmt_number(0.0123) == "0.0123" and fmt.fmt_number(12345.6) == "12,346"
    assert fmt.fmt_accuracy(91.23) == "91.2" and fmt.fmt_accuracy(0.98) == "1.0"
    assert fmt.fmt_text("a | b\nc") == "a / b c"
    assert fmt.fmt_number("n/a") == "n/a" and fmt.fmt_int("Infinity") == "–"


def test_family_of_model_specs() -> None:
    assert plots.family_of("resnet18") == "resnet"
    assert plots.family_of("g2:c=64,groups=1") == "guidelines"
    assert plots.family_of("torchvision:resnet18") == "torchvision"
    assert plots.family_of("not_a_model") == "other"


def test_errors_and_skipped_rows_are_listed(single: Path) -> None:
    problems = section(single.read_text(), "Errors and skipped cases")
    assert "networks/resnet152/cpu/b1" in problems and "| error " in problems
    assert "RuntimeError: out of memory / allocating 1.2 GiB" in problems  # pipe escaped
    assert (
        "- skipped: 1 case: CUDA is not available on this machine (networks/resnet50/cuda/b8)"
        in (problems)
    )  # skipped rows: one line per reason


def test_run_of_only_failed_rows_still_renders(tmp_path: Path) -> None:
    env = fixture_env() | {"calibration": None}  # run with --no-calibrate
    run = write_run(tmp_path / "failed", architecture_rows()[-2:], env)
    text = document.write_report([run], tmp_path / "out" / "r.md").read_text()
    assert "No ok rows in these runs." in text
    assert re.search(r"\| GEMM ceiling \(GFLOP/s\) +\| – +\|", text)
    assert "networks/resnet152/cpu/b1" in section(text, "Errors and skipped cases")
    assert NOT_A_NUMBER.search(text) is None and IMAGE_LINK.search(text) is None


def test_unmeasured_guideline_tables_get_one_line(tmp_path: Path) -> None:
    skipped = {
        "case_id": "g2-gpu/g2:c=128,groups=1/cuda/b8", "suite": "paper", "group": "G2",
        "case": "g2-gpu", "model": "g2:c=128,groups=1", "device": "cuda", "status": "skipped",
        "error": "CUDA is not available on this machine", "ref_throughput": 2451.0,
        "ref_unit": "batches/s", "ref_platform": "gpu", "ref_config": "g=1", "ref_column": "x1",
    }  # fmt: skip
    lines = guideline_section.guideline_section(pd.DataFrame([skipped]), tmp_path / "figures")
    assert "Not measured here (every case skipped or failed): G2 x1 on cuda." in lines
    assert not any(line.startswith("### ") for line in lines)
    assert not (tmp_path / "figures").exists()


def test_two_runs_include_the_comparison(double: Path) -> None:
    text = double.read_text()
    comparison = section(text, "Comparison")
    assert "BASE `base`, NEW `new`" in comparison
    assert "| networks/resnet18/cpu/b1 " in comparison and "| 1.20 " in comparison
    assert "regression" in comparison
    results = section(text, "Results")  # same suite twice: NEW is the one reported
    assert re.search(r"\| resnet18 +\| 11\.7 +\| 1,814 +\| 104 +\| 140 +\|", results)


def test_cli_writes_the_report_of_a_suite_folders_latest_run(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cli" / "r.md"
    result = CliRunner().invoke(app, ["report", str(runs[0].parent), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "cli" / "r_files" / "roofline_cpu.png").is_file()
    assert str(out) in "".join(result.output.split())
    assert "Runs: `new`." in out.read_text()  # "new" sorts after "base": the latest run


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "does not exist"),
        (lambda tmp: tmp, "no results.csv and no run folders"),
    ],
)
def test_cli_rejects_bad_run_folders(tmp_path: Path, make, message: str) -> None:
    result = CliRunner().invoke(app, ["report", str(make(tmp_path)), "-o", str(tmp_path / "r.md")])
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # rich wraps long lines at the terminal width
    assert output.startswith("error:") and output.count("error:") == 1
    assert message in output and "Traceback" not in output


def test_cli_rejects_an_output_that_is_not_markdown(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["report", str(runs[0]), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and ".md" in " ".join(result.output.split())


def test_two_runs_without_common_cases_say_so(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", architecture_rows())
    new = write_run(tmp_path / "b", finetune_rows())
    lines = sections.comparison_section(document.read_runs([base, new]))
    assert lines[0] == "## Comparison: NEW against BASE"
    assert any(line.startswith("No comparison: no common cases") for line in lines)
