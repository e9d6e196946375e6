"""What a new user meets first: start-up cost, one-line mistakes, readable `bench time` output."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from typer.testing import CliRunner, Result

from bench.cli.app import app
from bench.cli.timing import latency_table, number_or_na
from bench.core.errors import BenchError
from bench.core.models import build_model
from bench.measure.timing import measure_latency
from bench.runs.suite import resolve_suite_path

STARTUP_PROBE = """
import sys
from bench.cli.app import app

def loaded(*names):
    return ",".join(n for n in names if n in sys.modules) or "-"

for argv in (["count", "resnet5O"], ["count", "resnet50", "--input", "3x"],
             ["time", "resnet50", "--input", "0x1x1"], ["run", "nope"]):
    try:
        app(argv)
    except SystemExit as exc:
        print("exit", exc.code, loaded("pandas", "torchvision", "torch._dynamo"))
from bench.core.models import build_model
build_model("resnet50", meta=True)
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
    assert lines[-1] == "after -"  # a meta build and the runner import neither


def test_meta_build_skips_weight_initialisation() -> None:
    model = build_model("resnet18", meta=True)
    assert all(p.is_meta for p in model.parameters())
    real = build_model("resnet18")
    assert not torch.equal(real.conv1.weight, torch.zeros_like(real.conv1.weight))


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
    assert "'NeedsWideInput' cannot run on input 3x8x5 (batch 1)" in message
    assert "Wrong image width! Expected 8 but got 5!" in message and "\n" not in message


def test_cli_time_with_a_wrong_input_exits_2() -> None:
    result = invoke("time", "g1:c1=8,c2=8,blocks=1,size=8", "--input", "4x8x8", "--budget", "0.1")
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = flat(result.stderr)
    assert text.startswith("error: model 'g1:c1=8,c2=8,blocks=1,size=8' cannot run on input 4x8x8")


def test_time_table_formats_numbers() -> None:
    data = measure_latency("g1:c1=8,c2=8,blocks=1,size=8", budget_s=0.1).to_dict()
    data.update(compile_s=163.18021986099984, peak_mem_bytes=3 * 2**20 + 2**19)
    fields, values = latency_table("x", data).columns
    rows = dict(zip(fields.cells, values.cells, strict=True))
    assert rows["compile_s"] == "163.18"
    assert rows[f"peak memory ({data['peak_mem_kind']})"] == "3.5 MiB"
    assert number_or_na(None, "{:.2f}") == "n/a"
