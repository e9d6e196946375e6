"""Runtimes: the adapter interface with a fake clock, real parity of every runtime, error rows."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.core.models import build_model
from bench.measure.parity import check_parity, parity_tolerance
from bench.measure.timing import measure_latency
from bench.runs.folder import load_run
from bench.runs.runner import run_suite
from bench.runs.suite import load_suite
from bench.runtimes import get_runtime
from bench.runtimes.base import Runtime, Session, Target
from bench.runtimes.cache import artefact_key, weights_digest
from netdefs import get_model
from netdefs.layers import channel_shuffle

SHAPE = (8, 12, 12)


class SmallNet(nn.Module):
    """Conv-BN-ReLU, a channel shuffle, a depthwise conv, pooling and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = channel_shuffle(self.stem(x), 4)
        return self.fc(self.dw(y).mean((2, 3)))


@pytest.fixture(autouse=True)
def export_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One export cache for the whole test session (onnxruntime and openvino share files)."""
    root = tmp_path_factory.getbasetemp() / "export-cache"
    monkeypatch.setenv("BENCH_EXPORT_CACHE", str(root))
    return root


# --- the adapter interface, with a fake clock ------------------------------------------------


class FakeClock:
    """A clock that moves only when a fake runtime works."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeRuntime(Runtime):
    """Prepares in 5 s, runs batches in 2 ms (the first 30 ms), returns eager output + 2^-14."""

    name = "fake"
    modes: ClassVar[tuple[str, ...]] = ("infer",)

    def __init__(self, clock: FakeClock, offset: float = 2**-14) -> None:
        self.clock, self.offset, self.calls = clock, offset, 0

    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        self.clock.now += 5.0
        expected = model(inputs).detach()

        def step() -> None:
            self.calls += 1
            self.clock.now += 0.030 if self.calls == 1 else 0.002

        return Session(step=step, output=lambda: expected + self.offset, details={"fake": 1})


def test_engine_times_prepare_first_call_and_samples_apart() -> None:
    clock = FakeClock()
    fake = FakeRuntime(clock)
    result = measure_latency(SmallNet(), SHAPE, runtime=fake, clock=clock, budget_s=1.0)
    assert result.runtime == "fake" and result.prepare_s == pytest.approx(5.0)
    assert result.first_ms == pytest.approx(30.0)
    assert result.samples_ms and all(s == pytest.approx(2.0) for s in result.samples_ms)
    assert result.median_ms == pytest.approx(2.0) and result.runtime_details == {"fake": 1}
    assert result.parity_max_abs == pytest.approx(2**-14, rel=1e-2)


def test_engine_refuses_an_output_beyond_tolerance() -> None:
    clock = FakeClock()
    with pytest.raises(BenchError, match=r"differs from eager PyTorch: max \|diff\| 0\.5"):
        measure_latency(SmallNet(), SHAPE, runtime=FakeRuntime(clock, 0.5), clock=clock)


def test_engine_refuses_a_mode_the_runtime_cannot_time() -> None:
    with pytest.raises(BenchError, match="times infer only, not mode train"):
        measure_latency(SmallNet(), SHAPE, runtime=FakeRuntime(FakeClock()), mode="train")


def test_parity_tolerance_scales_with_the_output() -> None:
    small, large = torch.full((4,), 0.01), torch.full((4,), 100.0)
    assert parity_tolerance(small, torch.float32) == pytest.approx(1e-4 + 1e-5)
    assert parity_tolerance(large, torch.float32) == pytest.approx(0.1001)
    assert check_parity(large + 0.0625, large, torch.float32) == 0.0625
    with pytest.raises(BenchError, match="shape"):
        check_parity(torch.zeros(3), torch.zeros(4), torch.float32)
    with pytest.raises(BenchError, match="differs"):
        check_parity(torch.full((4,), float("nan")), large, torch.float32)


def test_unknown_runtime_lists_the_choices() -> None:
    with pytest.raises(BenchError, match="unknown runtime 'tvm'; choose one of eager, compile"):
        get_runtime("tvm")


# --- real runtimes: parity with eager PyTorch on the same weights and input ------------------

FAST = ["eager", "onnxruntime", "openvino"]
COMPILERS = ["compile", "aoti"]


def timed(model: nn.Module | str, runtime: str, shape: tuple[int, ...] | None = None):
    """measure_latency with a short budget on one thread."""
    return measure_latency(model, shape, threads=1, budget_s=0.3, runtime=runtime)


@pytest.mark.parametrize("runtime", FAST + COMPILERS)
def test_every_runtime_matches_eager_on_a_small_network(runtime: str) -> None:
    result = timed(SmallNet(), runtime, SHAPE)
    assert result.runtime == runtime and result.n_samples >= 1 and result.median_ms > 0
    assert result.prepare_s >= 0 and result.first_ms > 0
    if runtime != "eager":
        assert result.parity_max_abs is not None and result.parity_max_abs <= 1e-4


@pytest.mark.parametrize(
    "runtime",
    [*FAST, *(pytest.param(name, marks=pytest.mark.slow) for name in COMPILERS)],
)
def test_every_runtime_matches_eager_on_shufflenet_v2_x0_5(runtime: str) -> None:
    result = timed("shufflenet_v2_x0_5", runtime)
    if runtime != "eager":  # outputs of random weights are ~0.03; tolerance 1e-4 + 1e-3 x max
        assert result.parity_max_abs <= parity_tolerance(torch.full((1,), 0.1), torch.float32)


def test_onnx_export_is_cached_and_shared_by_onnxruntime_and_openvino() -> None:
    first = timed(SmallNet(), "onnxruntime", SHAPE)
    second = timed(SmallNet(), "openvino", SHAPE)
    assert second.runtime_details["cached"] is True
    assert second.runtime_details["artefact"] == first.runtime_details["artefact"]
    assert second.runtime_details["precision"] == "f32"  # never OpenVINO's silent bf16


def test_the_cache_key_follows_the_weights_and_the_structure() -> None:
    target = Target("cpu", torch.float32, 1)
    x = torch.zeros(1, *SHAPE)
    a, b = SmallNet(), SmallNet()
    assert weights_digest(a) == weights_digest(b)
    assert artefact_key(a, x, target, ()) == artefact_key(b, x, target, ())
    with torch.no_grad():
        b.fc.bias.add_(1.0)
    assert artefact_key(a, x, target, ()) != artefact_key(b, x, target, ())
    assert artefact_key(a, x, target, ()) != artefact_key(a, torch.zeros(2, *SHAPE), target, ())
    # the same weights in another architecture: g4 without its shortcut has identical tensors
    with_add, without = build_model("g4:c=8,units=1"), build_model("g4:c=8,units=1,shortcut=false")
    assert weights_digest(with_add) == weights_digest(without)
    inputs = torch.zeros(1, 8, 56, 56)
    assert artefact_key(with_add, inputs, target, ()) != artefact_key(without, inputs, target, ())


def test_a_spec_gets_the_same_weights_every_time() -> None:
    first, second = get_model("g1:c1=4,c2=8,blocks=1"), get_model("g1:c1=4,c2=8,blocks=1")
    assert not torch.equal(first[0].weight, second[0].weight)  # netdefs itself is unseeded
    state = torch.get_rng_state()
    assert torch.equal(build_model("resnet18").fc.weight, build_model("resnet18").fc.weight)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone


# --- suites, rows and the CLI ----------------------------------------------------------------

SUITE = """
name: rt
defaults: {threads: 1, budget_s: 0.2, runtimes: [eager, onnxruntime]}
cases:
  - name: small
    models: ["g1:c1=4,c2=4,blocks=1,size=8"]
  - name: train
    mode: train
    runtimes: [openvino]
    models: ["g1:c1=4,c2=4,blocks=1,size=8"]
"""


def suite_file(tmp_path: Path) -> Path:
    """The runtime suite above as a file."""
    path = tmp_path / "rt.yaml"
    path.write_text(textwrap.dedent(SUITE).lstrip(), encoding="utf-8")
    return path


def test_runtimes_expand_into_cases_with_the_runtime_in_the_id(tmp_path: Path) -> None:
    suite = load_suite(suite_file(tmp_path))
    assert [(c.case_id, c.runtime) for c in suite.cases] == [
        ("small/g1:c1=4,c2=4,blocks=1,size=8/cpu/b1", "eager"),
        ("small/g1:c1=4,c2=4,blocks=1,size=8/cpu/b1/runtime=onnxruntime", "onnxruntime"),
        ("train/g1:c1=4,c2=4,blocks=1,size=8/cpu/b1/runtime=openvino", "openvino"),
    ]
    override = load_suite(suite_file(tmp_path), runtimes=["openvino"])
    assert {c.runtime for c in override.cases} == {"openvino"}
    with pytest.raises(BenchError, match="--runtime tvm"):
        load_suite(suite_file(tmp_path), runtimes=["tvm"])


def test_bad_runtimes_in_a_suite_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: b\ncases:\n  - name: a\n    runtimes: [tvm]\n    models: [g1:c1=4,c2=4]\n"
    )
    with pytest.raises(BenchError, match=r"bad.yaml:4: cases\[0\]\.runtimes.*eager, compile"):
        load_suite(path)


def test_a_runtime_that_cannot_take_a_case_is_an_error_row(tmp_path: Path) -> None:
    run_dir = run_suite(suite_file(tmp_path), out=tmp_path / "run", calibrate=False)
    run = load_run(run_dir)
    rows = run.rows.set_index("case_id")
    ort = rows.loc["small/g1:c1=4,c2=4,blocks=1,size=8/cpu/b1/runtime=onnxruntime"]
    assert ort["status"] == "ok" and ort["runtime"] == "onnxruntime"
    assert ort["parity_max_abs"] <= 1e-4 and ort["first_ms"] > 0 and ort["prepare_s"] > 0
    train = rows.loc["train/g1:c1=4,c2=4,blocks=1,size=8/cpu/b1/runtime=openvino"]
    assert train["status"] == "error" and "times infer only" in train["error"]
    assert run.env["runtimes"]["onnxruntime"]["onnxruntime"]  # its version
    assert set(run.env["runtimes"]) == {"eager", "onnxruntime", "openvino"}


def test_rows_written_before_runtimes_read_as_eager(tmp_path: Path) -> None:
    (tmp_path / "env.json").write_text(json.dumps({"results_format_version": 1}))
    pd.DataFrame([{"case_id": "a", "status": "ok"}]).to_csv(tmp_path / "results.csv", index=False)
    assert list(load_run(tmp_path).rows["runtime"]) == ["eager"]


def test_cli_time_with_a_runtime_reports_cold_start_and_parity() -> None:
    args = ["time", "g1:c1=4,c2=4,blocks=1,size=8", "--runtime", "onnxruntime", "--threads", "1"]
    result = CliRunner().invoke(app, [*args, "--budget", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["runtime"] == "onnxruntime" and data["parity_max_abs"] <= 1e-4
    assert data["prepare_s"] > 0 and data["first_ms"] > 0
    assert data["runtime_versions"]["onnxruntime"]


def test_cli_unknown_runtime_is_one_line() -> None:
    result = CliRunner().invoke(app, ["time", "g1:c1=4,c2=4", "--runtime", "tvm"])
    assert result.exit_code == 2
    assert "--runtime: unknown runtime 'tvm'; choose one of: eager" in " ".join(
        result.stderr.split()
    )


# --- analysis and report per runtime ---------------------------------------------------------


CONFIGS, PAPER_ARM_X1 = ("g=1", "g=2", "g=4"), (40.0, 35.0, 32.9)


def guideline_rows(runtime: str, throughputs: list[float]) -> list[dict]:
    """Three G2 rows measured in one runtime, with the paper's ARM x1 column as reference."""
    return [
        {
            "case_id": f"g2/{config}/{runtime}", "suite": "s", "group": "G2", "model": "g2",
            "device": "cpu", "runtime": runtime, "status": "ok", "mode": "infer", "batch": 1,
            "threads": 1, "throughput": ours, "latency_ms_median": 1000.0 / ours,
            "first_ms": 2000.0 / ours, "prepare_s": 0.5, "parity_max_abs": 1e-7,
            "ref_throughput": paper, "ref_config": config, "ref_column": "x1",
            "ref_platform": "arm", "ref_unit": "images/s",
        }
        for config, ours, paper in zip(CONFIGS, throughputs, PAPER_ARM_X1, strict=True)
    ]  # fmt: skip


def test_guidelines_are_judged_per_runtime() -> None:
    from bench.analysis.guidelines import guideline_summaries, guideline_verdicts

    rows = pd.DataFrame(
        guideline_rows("eager", [30, 20, 10]) + guideline_rows("openvino", [9, 10, 11])
    )
    summaries = guideline_summaries(rows)
    assert [(s.place, s.reproduced) for s in summaries] == [
        ("cpu", True), ("cpu (openvino)", False)
    ]  # fmt: skip
    verdicts = guideline_verdicts(summaries)
    assert verdicts[0].startswith("G2 on cpu: reproduced")
    assert verdicts[1].startswith("G2 on cpu (openvino): did not reproduce")


def test_report_runtime_section_shows_speed_ups_and_cold_starts(tmp_path: Path) -> None:
    from bench.report.runtime_section import runtime_section

    rows = pd.DataFrame(
        guideline_rows("eager", [10, 10, 10]) + guideline_rows("onnxruntime", [20, 30, 40])
    )
    rows["model"] = rows["ref_config"]
    text = "\n".join(runtime_section(rows, tmp_path))
    assert "### Runtimes on cpu, batch 1, 1 thread(s)" in text
    assert re.search(r"\| g=4 +\| 100 +\| 25\.0 \(4\.00x\) +\|", text)  # eager 100, ort 25 ms
    assert re.search(r"\| g=4 +\| onnxruntime +\| 50\.0 +\| 0\.5 +\| 25\.0 +\| 1e-07 +\|", text)
    assert list(tmp_path.glob("runtimes_cpu_b1_t1.png"))
    assert runtime_section(pd.DataFrame(guideline_rows("eager", [1, 2, 3])), tmp_path) == []


def test_shipped_runtime_suite_and_guidelines_under_a_runtime() -> None:
    suites = Path(__file__).resolve().parent.parent / "suites"
    runtimes = load_suite(suites / "runtimes.yaml")
    assert {c.runtime for c in runtimes.cases} == {
        "eager",
        "compile",
        "aoti",
        "onnxruntime",
        "openvino",
    }
    assert {(c.batch, c.threads) for c in runtimes.cases} == {(1, 1), (8, None)}
    assert "torchvision:mobilenet_v2" in {c.model for c in runtimes.cases}
    guidelines = load_suite(suites / "guidelines.yaml", runtimes=["openvino"])
    assert all(c.case_id.endswith("/runtime=openvino") for c in guidelines.cases)


def test_same_weights_in_another_architecture_get_their_own_export() -> None:
    with_add = timed("g4:c=8,units=2,size=16", "onnxruntime")
    without = timed("g4:c=8,units=2,size=16,shortcut=false", "onnxruntime")  # same tensors
    assert without.runtime_details["artefact"] != with_add.runtime_details["artefact"]
    assert without.parity_max_abs <= 1e-4
