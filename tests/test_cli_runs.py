"""`bench run`, `bench list`, `bench show`, `bench merge` through typer's CliRunner."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bench.cli.app import app
from bench.runs.folder import load_run

SUITE = """
name: cli
defaults: {threads: 1, budget_s: 0.2}
cases:
  - name: g2
    group: G2
    ref: {unit: images/s, column: x1, platform: arm}
    models:
      - {model: "g2:c=8,groups=1,layers=1,size=8", ref: {config: "g=1", throughput: 30}}
      - {model: "g2:c=8,groups=2,layers=1,size=8", ref: {config: "g=2", throughput: 20}}
      - {model: "g2:c=8,groups=4,layers=1,size=8", ref: {config: "g=4", throughput: 10}}
"""


def invoke(*args: str) -> Result:
    """Run the bench app with these arguments."""
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    """A three-case suite whose cases carry paper-style reference values."""
    text = textwrap.dedent(SUITE).lstrip()
    path = tmp_path / "cli.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def assert_one_line_error(result: Result, *parts: str) -> None:
    """Exit code 2 and one error message (no traceback) containing every part."""
    assert result.exit_code == 2, result.output
    text = " ".join(result.stderr.split())  # rich wraps long lines at the console width
    assert text.startswith("error:") and text.count("error:") == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    for part in parts:
        assert part in text


def test_list_models_blocks_and_suites() -> None:
    models = invoke("list", "models", "--names")
    names = models.stdout.split()
    assert models.exit_code == 0 and "resnet50" in names and "g1" not in names
    blocks = invoke("list", "blocks", "--names")
    assert blocks.stdout.split() == ["g1", "g2", "g3", "g4"]
    suites = invoke("list", "suites")
    for name in ("guidelines", "architectures", "smoke"):
        assert name in suites.stdout
    filtered = invoke("list", "models", "--pattern", "shufflenet_v2_*", "--names")
    assert len(filtered.stdout.split()) == 4


def test_list_rejects_unknown_kind() -> None:
    assert_one_line_error(invoke("list", "gizmos"), "'gizmos'", "models, blocks, suites")


def test_run_bad_suite_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncases:\n  - name: a\n    models: [resnet19]\n")
    assert_one_line_error(invoke("run", str(bad)), "bad.yaml:4", "cases[0].models[0]", "resnet19")
    assert_one_line_error(invoke("run", str(tmp_path / "none.yaml")), "does not exist")


def test_run_bad_options_are_one_line(suite_file: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r")
    assert_one_line_error(invoke("run", str(suite_file), "--shard", "5/2", "--out", out), "K/N")
    assert_one_line_error(
        invoke("run", str(suite_file), "--filter", "zzz*", "--out", out), "matches no case"
    )
    assert_one_line_error(invoke("run", str(suite_file), "--device", "tpu"), "'tpu'")
    assert_one_line_error(invoke("show", str(tmp_path / "missing")), "does not exist")


def test_run_show_and_merge_shards(suite_file: Path, tmp_path: Path) -> None:
    common = ["--quick", "--no-calibrate", "--no-progress"]
    dirs = []
    for k in range(2):
        out = tmp_path / f"shard{k}"
        result = invoke("run", str(suite_file), "--shard", f"{k}/2", "--out", str(out), *common)
        assert result.exit_code == 0, result.output
        assert f"run folder: {out}" in result.stderr
        dirs.append(str(out))
    assert len(load_run(dirs[0]).rows) == 2 and len(load_run(dirs[1]).rows) == 1
    merged = tmp_path / "merged"
    result = invoke("merge", *dirs, "--out", str(merged))
    assert result.exit_code == 0, result.output
    rows = load_run(merged).rows
    assert sorted(rows["ref_config"]) == ["g=1", "g=2", "g=4"] and (rows["status"] == "ok").all()
    shown = invoke("show", str(merged))
    assert shown.exit_code == 0, shown.output
    table_rows = [line for line in shown.stdout.splitlines() if line.startswith("│ g2:c=8,groups=")]
    assert len(table_rows) == 3  # the three measured rows
    assert "G2 x1 on cpu" in shown.stdout and "Spearman" in shown.stdout
    assert "G2 on cpu:" in " ".join(shown.stdout.split())
    again = invoke("merge", *dirs, "--out", str(merged))
    assert_one_line_error(again, "already holds a run")
