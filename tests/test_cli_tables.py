"""The run table of `bench run` / `bench show`: measured rows first, problems collapsed, width."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from fixtures.run_folder import architecture_rows, full_run
from rich.console import Console
from typer.testing import CliRunner

from bench.cli import common, tables
from bench.cli.app import app
from bench.report import format as fmt


def ok_row(model: str, median: float, **extra: object) -> dict:
    """An ok row with costs, latency and the paper's throughput."""
    row = {
        "case_id": f"arch/{model}/cpu",
        "model": model,
        "device": "cpu",
        "batch": 1,
        "status": "ok",
        "error": None,
        "params": 11_689_512,
        "mult_adds": 1_814_077_440,
        "latency_ms_median": median,
        "throughput": 1000.0 / median,
        "ref_throughput": 123.456,
        "ref_unit": "images/s",
    }
    return {**row, **extra}


def skipped_row(k: int) -> dict:
    """A CUDA row skipped on a machine without CUDA."""
    reason = "CUDA is not available on this machine"
    return {"case_id": f"g1/{k}/cuda", "model": f"g1:c1={k}", "device": "cuda",
            "batch": 1, "status": "skipped", "error": reason}  # fmt: skip


@pytest.fixture
def rows() -> pd.DataFrame:
    """51 skipped CUDA rows before two measured rows and one error, as a guideline run has."""
    errored = {"case_id": "vit/cpu", "model": "torchvision:vit_b_16", "device": "cpu",
               "status": "error", "error": "cannot count input 3x160x160: bad size"}  # fmt: skip
    records = [skipped_row(k) for k in range(51)]
    records += [ok_row("resnet18", 163.18021986099984), ok_row("shufflenet_v2_x1_0", 9.87654)]
    return pd.DataFrame([*records, errored])


def render(renderable: object, width: int) -> str:
    """What a console of this width prints."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_only_measured_rows_form_the_table(rows: pd.DataFrame) -> None:
    measured = tables.measured_rows(rows)
    assert list(measured["model"]) == ["resnet18", "shufflenet_v2_x1_0"]
    text = render(tables.fitted_table(measured, "arch", 160), 160)
    assert "g1:c1=" not in text and "skipped" not in text
    assert text.index("resnet18") < text.index("shufflenet_v2_x1_0")


def test_skipped_and_error_rows_collapse_to_one_line_per_reason(rows: pd.DataFrame) -> None:
    skipped = fmt.reason_lines(rows, "skipped")
    assert skipped == [
        "skipped: 51 cases: CUDA is not available on this machine "
        "(g1/0/cuda, g1/1/cuda, g1/2/cuda, ...)"
    ]
    errors = fmt.reason_lines(rows, "error")
    assert errors == ["error: 1 case: cannot count input 3x160x160: bad size (vit/cpu)"]
    assert fmt.reason_lines(rows, "missing-status") == []


@pytest.mark.parametrize(
    ("width", "numbers"),
    [(80, ("163", "9.88", "1.81", "6.13", "101")), (120, ("11.7", "1.81", "163", "123"))],
)
def test_numbers_are_formatted_and_never_split(
    rows: pd.DataFrame, width: int, numbers: tuple[str, ...]
) -> None:
    measured = tables.measured_rows(rows)
    text = render(tables.fitted_table(measured, "arch", width), width)
    assert max(len(line) for line in text.splitlines()) <= width
    for number in numbers:
        assert re.search(rf"(^|\s){re.escape(number)}(\s|$)", text, re.MULTILINE), number
    assert "163.18021986099984" not in text
    if width == 120:
        assert "params M" in text and "mult-adds G" in text  # a prefix chosen per table


def test_model_specs_break_after_commas() -> None:
    assert tables.break_at_commas("g4:c=64,relu=false,shortcut=true", 20) == (
        "g4:c=64,relu=false,\nshortcut=true"
    )
    assert tables.break_at_commas("resnet18", 4) == "resnet18"  # folded by rich if need be


def test_columns_that_do_not_fit_are_left_out_and_named(rows: pd.DataFrame) -> None:
    measured = tables.measured_rows(rows)
    wide = render(tables.fitted_table(measured, "arch", 160), 160)
    narrow = render(tables.fitted_table(measured, "arch", 60), 60)
    assert "paper" in wide and "images/s" in wide and "left out" not in wide
    assert "left out for the 60-column width: paper images/s" in " ".join(narrow.split())
    assert "median ms" in narrow and "resnet18" in narrow


def test_fine_tune_rows_show_their_accuracy() -> None:
    frame = pd.DataFrame([ok_row("resnet18", 5.0, best_val_acc=87.25)])
    text = render(tables.fitted_table(frame, "flowers", 120), 120)
    assert "val acc %" in text and "87.2" in text


@pytest.mark.parametrize(("columns", "expected"), [("72", 72), ("", common.PIPED_WIDTH)])
def test_output_width_honours_columns(
    monkeypatch: pytest.MonkeyPatch, columns: str, expected: int
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    assert common.output_width() == expected  # pytest's streams are not terminals


def test_show_honours_columns_when_piped(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    result = CliRunner().invoke(app, ["show", str(run)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not any("skipped" in line and "|" in line for line in lines)
    first_skip = next(i for i, line in enumerate(lines) if line.startswith("skipped:"))
    assert first_skip > next(i for i, line in enumerate(lines) if "resnet18" in line)
    assert sum(line.startswith("skipped:") for line in lines) == 1


def test_architecture_fixture_rows_render(tmp_path: Path) -> None:
    frame = pd.DataFrame(architecture_rows())
    text = render(tables.fitted_table(tables.measured_rows(frame), "a", 100), 100)
    assert "resnet18" in text


def test_setup_every_row_shares_goes_into_the_title(rows: pd.DataFrame) -> None:
    measured = tables.measured_rows(rows)
    text = render(tables.fitted_table(measured, "arch", 120), 120)
    assert "arch (device cpu, batch 1)" in text
    assert " dev " not in text and " b " not in text
    assert "paper" in text and "paper unit" not in text  # one unit: in the paper's header
    mixed = measured.assign(batch=[1, 8])
    assert " b " in render(tables.fitted_table(mixed, "arch", 120), 120)


def test_per_layer_numbers_stay_whole_at_80_columns() -> None:
    from bench.cli.count import per_layer_rich
    from bench.measure.counting import count

    layers = count("shufflenet_v2_x0_5").per_layer
    text = render(per_layer_rich(layers), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    for cell in ("1.81 M", "590 KiB", "4.5%"):  # stage2.0's 1x1 conv: wrapped, it would split
        assert cell in text, cell
    assert "…" not in text  # module paths are folded, never cut


def test_the_mac_column_puts_its_prefix_before_the_byte_unit() -> None:
    frame = pd.DataFrame([ok_row("resnet18", 5.0, mac_bytes=104_000_000)])
    text = render(tables.fitted_table(frame, "a", 160), 160)
    assert "MAC MB" in text and "104" in text
