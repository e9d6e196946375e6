"""What a new user meets first: start-up cost, one-line mistakes, readable `bench time` output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch
from fixtures.run_folder import architecture_rows, write_run
from torch import nn
from typer.testing import CliRunner, Result

from bench.cli.app import app
from bench.cli.precheck import check_model_arguments
from bench.cli.timing import latency_table, number_or_na
from bench.core.errors import BenchError
from bench.core.paths import resolve_suite_path
from bench.measure.timing import measure_latency

STARTUP_PROBE = """
import sys
from bench.cli.app import app
from bench.cli.precheck import check_model_arguments

def loaded(*names):
    return ",".join(n for n in names if n in sys.modules) or "-"

for argv in (["count", "resnet5O"], ["count", "resnet50", "--input", "3x"],
             ["time", "resnet50", "--input", "0x1x1"], ["run", "nope"]):
    try:
        app(argv)
    except SystemExit as exc:
        print("exit", exc.code, loaded("pandas", "torchvision", "torch._dynamo"))
import bench.runs.runner
print("after", loaded("torchvision", "torch._dynamo"))
"""


def invoke(*args: str) -> Result:
    """Run the bench app with these arguments."""
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    """Text with rich's line wrapping undone."""
    return " ".join(text.split())


def probe(code: str) -> list[str]:
    """Run Python code in a fresh interpreter (nothing imported yet); its stdout lines."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_help_and_version_load_no_torch() -> None:
    code = """
    import sys
    from bench.cli.app import app
    for argv in (["--help"], ["--version"], ["run", "--help"]):
        try:
            app(argv)
        except SystemExit as exc:
            print("exit", exc.code, "torch" in sys.modules)
    """
    lines = probe(code)
    assert [line.split()[-2:] for line in lines if line.startswith("exit")] == [["0", "False"]] * 3


@pytest.mark.slow
def test_bad_arguments_are_rejected_before_heavy_imports() -> None:
    lines = probe(STARTUP_PROBE)
    assert lines[-5:-1] == ["exit 2 -"] * 4  # neither pandas, torchvision nor torch._dynamo
    assert lines[-1] == "after -"  # the runner imports neither (env reads versions as metadata)


def test_unknown_suite_lists_the_shipped_ones(tmp_path) -> None:
    with pytest.raises(BenchError, match=r"no suite file or shipped suite named 'nope'.*smoke"):
        resolve_suite_path("nope")
    with pytest.raises(BenchError, match=r"x\.yaml' does not exist; shipped suites: .*guidelines"):
        resolve_suite_path(tmp_path / "x.yaml")
    assert resolve_suite_path("smoke").name == "smoke.yaml"
    result = invoke("run", "nope")
    assert result.exit_code == 2 and "bench list suites" in flat(result.stderr)


class NeedsWideInput(nn.Module):
    """A network that refuses inputs narrower than 8 pixels, as ViT refuses a wrong size."""

    input_shape = (3, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Assert on the width, like torchvision's ViT."""
        assert x.shape[-1] == 8, f"Wrong image width! Expected 8 but got {x.shape[-1]}!"
        return x.mean()


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_time_on_a_wrong_input_is_one_line_naming_model_and_input(runtime: str) -> None:
    with pytest.raises(BenchError) as caught:
        measure_latency(NeedsWideInput(), input_shape=(3, 8, 5), budget_s=0.1, runtime=runtime)
    message = str(caught.value)
    assert "NeedsWideInput" in message and "input 3x8x5" in message and "\n" not in message
    assert "Wrong image width! Expected 8 but got 5!" in message


def test_cli_time_with_a_wrong_input_exits_2() -> None:
    result = invoke("time", "g1:c1=8,c2=8,blocks=1,size=8", "--input", "4x8x8", "--budget", "0.1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = flat(result.stderr)
    assert text.startswith("error:") and "g1:c1=8,c2=8,blocks=1,size=8" in text
    assert "input 4x8x8" in text and text.count("error:") == 1


def test_time_table_formats_numbers() -> None:
    data = measure_latency("g1:c1=8,c2=8,blocks=1,size=8", budget_s=0.1).to_dict()
    data.update(compile_s=163.18021986099984, peak_mem_bytes=3 * 2**20 + 2**19)
    fields, values = latency_table("x", data).columns
    rows = dict(zip(fields.cells, values.cells, strict=True))
    assert rows["compile_s"] == "163.18"
    assert rows[f"peak memory ({data['peak_mem_kind']})"] == "3.5 MiB"
    assert number_or_na(None, "{:.2f}") == "n/a"


def test_show_takes_a_suite_folder_and_prints_json_or_csv(tmp_path) -> None:
    rows = architecture_rows()
    write_run(tmp_path / "archs" / "20260101T000000Z-old", rows[:1])
    latest = write_run(tmp_path / "archs" / "20260102T000000Z-new", rows)
    document = json.loads(invoke("show", str(tmp_path / "archs"), "--json").stdout)
    assert document["run"] == str(latest) and len(document["rows"]) == len(rows)
    assert document["rows"][0]["model"] == rows[0]["model"] and "env" in document
    csv = invoke("show", str(latest), "--csv")
    assert csv.exit_code == 0 and pd.read_csv(io.StringIO(csv.stdout)).shape[0] == len(rows)
    table = invoke("show", str(tmp_path / "archs"))
    assert table.exit_code == 0 and str(latest) in "".join(table.stdout.split())  # title wraps
    both = invoke("show", str(latest), "--json", "--csv")
    assert both.exit_code == 2 and "choose one" in both.stderr
    assert invoke("show", str(tmp_path / "empty-none")).exit_code == 2


def test_flags_show_no_type_in_help() -> None:
    for command in ([], ["run"], ["show"], ["data", "flowers"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0 and "--help" in result.stdout
        assert "<bool>" not in result.stdout
    assert "--input" in invoke("count", "--help").stdout
    assert "<str>" in invoke("count", "--help").stdout  # options that take a value keep it


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("bench (cnn-bench) ")


def test_precheck_rejects_bad_specs_and_shapes() -> None:
    with pytest.raises(BenchError, match="unknown model 'resnet5O'"):
        check_model_arguments("resnet5O", None)
    with pytest.raises(BenchError, match="c1"):
        check_model_arguments("g1", None)  # an option missing
    with pytest.raises(BenchError, match="input '3x'"):
        check_model_arguments("resnet50", "3x")
    assert check_model_arguments("resnet18", "3x64x64") == (3, 64, 64)
