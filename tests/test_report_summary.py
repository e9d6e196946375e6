"""The report's opening summary, skipped rows collapsed, and where `bench report` writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fixtures.run_folder import architecture_rows, full_run, guideline_rows, write_run
from typer.testing import CliRunner

from bench.analysis.guidelines import guideline_summaries, guideline_verdicts
from bench.cli.app import app
from bench.report import document, summary
from bench.runs.folder import load_run


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A fixture run with 51 extra skipped CUDA rows, and its report's text."""
    root = tmp_path_factory.mktemp("summary")
    skipped = [
        {"case_id": f"gpu/g1:c1={k}/cuda/b8", "model": f"g1:c1={k},c2={k}", "device": "cuda",
         "status": "skipped", "error": "CUDA is not available on this machine"}
        for k in range(51)
    ]  # fmt: skip
    run = write_run(root / "run", guideline_rows() + architecture_rows() + skipped)
    return run, document.write_report([run], root / "report.md").read_text()


def test_the_summary_comes_before_every_table(report: tuple[Path, str]) -> None:
    _, text = report
    start = text.index("\n## Summary")
    assert start < text.index("\n## Environment") < text.index("\n## Results")
    assert text[:start].count("|") == 0


def test_the_summary_gives_the_verdicts_as_the_cli_prints_them(report: tuple[Path, str]) -> None:
    run, text = report
    verdicts = guideline_verdicts(guideline_summaries(load_run(run).rows))
    head = text[: text.index("\n## Environment")]
    assert len(verdicts) == 4
    for verdict in verdicts:
        assert f"- {verdict}" in head


def test_the_fastest_networks_leave_out_blocks() -> None:
    rows = pd.DataFrame(guideline_rows() + architecture_rows())
    lines = summary.fastest_lines(rows)
    assert lines[0].startswith("Fastest networks")
    assert lines[2] == (
        "- cpu, batch 1: shufflenet_v2_x0_5 7.50 ms, shufflenet_v2_x1_0 19.0 ms, "
        "shufflenet_v1_g3_x1_0 20.1 ms (of 5 networks)"
    )
    assert "g1:" not in " ".join(lines)
    assert summary.is_network("torchvision:mobilenet_v2") and not summary.is_network("g2:c=8")


def test_the_summary_says_what_explains_latency(report: tuple[Path, str]) -> None:
    head = report[1][: report[1].index("\n## Environment")]
    assert "mult-adds alone give R^2 0.99" in head and "mult-adds + MAC 1.000" in head


def test_fine_tunes_are_listed_most_accurate_first(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    lines = summary.finetune_lines(load_run(run).rows)
    assert lines[0].startswith("Fine-tunes, best validation accuracy: resnet18 91.2%, resnext50")


def test_skipped_rows_collapse_to_one_line_per_reason(report: tuple[Path, str]) -> None:
    text = report[1]
    problems = text[text.index("## Errors and skipped cases") :]
    line = "- skipped: 52 cases: CUDA is not available on this machine (networks/resnet50/cuda/b8"
    assert line in problems and line in text[: text.index("\n## Environment")]
    assert "| skipped" not in problems and problems.count("cuda/b8") == 3


def test_report_of_a_suite_folder_is_written_into_its_latest_run(tmp_path: Path) -> None:
    full_run(tmp_path / "suite" / "20261101T000000Z-aaaa")
    latest = full_run(tmp_path / "suite" / "20261102T000000Z-bbbb")
    result = CliRunner().invoke(app, ["report", str(tmp_path / "suite")])
    assert result.exit_code == 0, result.output
    assert (latest / "report.md").is_file() and (latest / "report_files").is_dir()
    assert not (tmp_path / "suite" / "report.md").exists()
