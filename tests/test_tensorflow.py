"""Keras twins of the ResNets, the weight port and the `tensorflow` runtime.

Importing TensorFlow takes 10-20 s, once for this file. The runtime's fast tests run in this
process (claimed for TensorFlow, one intra-op thread); one slow test goes through the child
process the engine normally uses.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.core.models import build_model
from bench.measure import isolated
from bench.measure.timing import measure_latency
from bench.report.runtime_section import runtime_section
from bench.runs.folder import load_run
from bench.runs.runner import run_suite
from bench.runs.suite import load_suite
from bench.runtimes import keras_session
from netdefs import get_model
from netdefs.keras_port import port_state_dict
from netdefs.keras_resnet import conv, keras_resnet, keras_twin, stem
from netdefs.resnet import VARIANTS

# isort: split
import keras
import tensorflow as tf

TINY = "resnet:layers=1-1-1-1,num_classes=7"
TINY_GROUPED = "resnet:layers=1-1-1-1,block=bottleneck,groups=4,width_per_group=8,num_classes=7"
SMALL_INPUT = (3, 32, 32)
# TensorFlow takes its thread counts before it first runs, once: here, at import, before any test
try:
    TEST_THREADS: tuple[int, int] | None = keras_session.configure_threads(1)
except BenchError:  # something ran TensorFlow before this file was imported
    TEST_THREADS = None


def nhwc(x: torch.Tensor) -> np.ndarray:
    """An NCHW torch batch as an NHWC numpy array."""
    return x.permute(0, 2, 3, 1).numpy()


def calibrated(model: torch.nn.Module) -> torch.nn.Module:
    """The model with BN statistics of random batches (as a trained network's fit its data)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for _ in range(2):
            model.train()(torch.randn(4, 3, 224, 224, generator=generator))
    return model.eval()


def ported(spec: str, calibrate: bool = False) -> tuple[torch.nn.Module, keras.Model]:
    """Our model for a spec (eval mode) and its Keras twin with our weights ported."""
    ours = build_model(spec).eval()
    ours = calibrated(ours) if calibrate else ours
    twin = keras_twin(spec)
    port_state_dict(twin, ours.state_dict())
    return ours, twin


def differences(spec: str, size: int, calibrate: bool = False) -> tuple[float, float]:
    """(max |twin - ours|, max |ours|) of eval outputs on one random batch of two."""
    ours, twin = ported(spec, calibrate)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = ours(x).numpy()
    output = twin(nhwc(x), training=False).numpy()
    return float(np.abs(output - reference).max()), float(np.abs(reference).max())


# --- the twins ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    ["resnet18", TINY_GROUPED, "resnet:layers=1-2-1-1,include_top=false", "torchvision:resnet18"],
)
def test_twin_outputs_agree_with_ours(spec: str) -> None:
    assert differences(spec, 64)[0] <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["resnet18", "resnet50", "resnext50_32x4d"])
def test_twins_agree_with_ours_at_224(spec: str) -> None:
    difference, _ = differences(spec, 224, calibrate=True)  # logits of order 1, as trained
    assert difference <= 1e-4
    difference, largest = differences(spec, 224)  # as built: ResNet-50's logits reach ~110
    assert difference <= 1e-5 * largest  # float32 rounding, relative


@pytest.mark.parametrize("spec", ["resnet18", "resnet50", "resnext50_32x4d"])
def test_twin_trainable_weights_equal_our_parameters(spec: str) -> None:
    ours, twin = build_model(spec, meta=True), keras_twin(spec)
    trainable = sum(int(np.prod(v.shape)) for v in twin.trainable_weights)
    moving = sum(int(np.prod(v.shape)) for v in twin.non_trainable_weights)
    assert trainable == sum(p.numel() for p in ours.parameters())
    running = [b for n, b in ours.named_buffers() if not n.endswith("num_batches_tracked")]
    assert moving == sum(b.numel() for b in running)  # moving statistics: buffers on both sides


def test_padding_rule_at_stride_2_is_pytorchs_not_same() -> None:
    weight = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(2))
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    reference = torch.nn.functional.conv2d(x, weight, stride=2, padding=1).permute(0, 2, 3, 1)
    inputs = keras.Input((8, 8, 3))
    ours = keras.Model(inputs, conv(inputs, 4, 3, 2, "c"))
    same = keras.Model(inputs, keras.layers.Conv2D(4, 3, 2, "same", use_bias=False)(inputs))
    for model in (ours, same):
        model.layers[-1].kernel.assign(weight.permute(2, 3, 1, 0).numpy())
    assert np.abs(ours(nhwc(x)).numpy() - reference.numpy()).max() <= 1e-5
    assert np.abs(same(nhwc(x)).numpy() - reference.numpy()).max() > 1e-2  # 'same' shifts


def test_stem_pools_as_pytorch_pools() -> None:
    torch_stem = build_model("resnet18").eval()
    x = torch.randn(1, 3, 30, 30, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        m = torch_stem
        reference = m.maxpool(m.relu(m.bn1(m.conv1(x)))).permute(0, 2, 3, 1).numpy()
    inputs = keras.Input((30, 30, 3))
    keras_stem = keras.Model(inputs, stem(inputs))
    port_state_dict(
        keras_stem, {k: v for k, v in m.state_dict().items() if k.split(".")[0] in ("conv1", "bn1")}
    )
    assert np.abs(keras_stem(nhwc(x), training=False).numpy() - reference).max() <= 1e-5


def test_networks_without_a_twin_and_bad_options_are_named() -> None:
    with pytest.raises(ValueError, match="'shufflenet_v2_x1_0' has no Keras twin; .*resnet18, "):
        keras_twin("shufflenet_v2_x1_0")
    with pytest.raises(ValueError, match="invalid option 'groups'.*allowed: num_classes"):
        keras_twin("resnet50:groups=2")
    with pytest.raises(ValueError, match="'torchvision:mobilenet_v2' has no Keras twin"):
        keras_twin("torchvision:mobilenet_v2")
    with pytest.raises(ValueError, match="block=basic"):
        keras_resnet("2-2-2-2", "basic", groups=2)


# --- the port ----------------------------------------------------------------------------------


def tiny_state() -> dict[str, torch.Tensor]:
    """The tiny network's state dict."""
    return dict(get_model(TINY).state_dict())


def test_port_names_a_missing_tensor() -> None:
    state = tiny_state()
    del state["layer1.0.conv1.weight"]
    with pytest.raises(ValueError, match=r"missing tensor layer1\.0\.conv1\.weight"):
        port_state_dict(keras_twin(TINY), state)


def test_port_names_a_misshaped_tensor() -> None:
    state = tiny_state()
    state["fc.weight"] = torch.zeros(8, 512)
    with pytest.raises(ValueError, match=r"fc\.weight has shape \(8, 512\).*needs \(512, 7\)"):
        port_state_dict(keras_twin(TINY), state)


def test_port_names_a_tensor_without_counterpart() -> None:
    state = {**tiny_state(), "extra.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match=r"extra\.weight has no Keras counterpart"):
        port_state_dict(keras_twin(TINY), state)


def test_port_copies_every_tensor_but_the_batch_counters() -> None:
    state = tiny_state()
    report = port_state_dict(keras_twin(TINY), state)
    assert report.ported == len(state) - len(report.left_out)
    assert report.left_out and all(k.endswith("num_batches_tracked") for k in report.left_out)


# --- the runtime, in this process (claimed, one intra-op thread) -----------------------------


@pytest.fixture
def owned(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process measures TensorFlow itself, with 1/1 threads (skip if TF runs otherwise)."""
    if TEST_THREADS is None:
        pytest.skip("TensorFlow ran in this process before its threads could be set")
    monkeypatch.setitem(isolated._STATE, "owned", True)


def test_threads_are_set_once_and_a_change_is_refused(owned: None) -> None:
    assert keras_session.thread_settings() == (1, 1)
    tf.constant(1.0) + 1.0  # TensorFlow runs now  # noqa: B018
    assert keras_session.configure_threads(1) == (1, 1)
    with pytest.raises(BenchError, match=r"already runs .* 1/1 .* cannot change to 2/1"):
        keras_session.configure_threads(2)


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_runtime_times_the_ported_twin(owned: None, mode: str) -> None:
    result = measure_latency(TINY, SMALL_INPUT, batch=2, threads=1, mode=mode, budget_s=0.3,
                             runtime="tensorflow")  # fmt: skip
    assert result.runtime == "tensorflow" and result.n_samples >= 1 and result.median_ms > 0
    assert result.prepare_s > 0 and result.first_ms > 0
    assert result.runtime_details["intra_op_threads"] == 1
    counters = [k for k in tiny_state() if k.endswith("num_batches_tracked")]
    assert result.runtime_details["ported_tensors"] == len(tiny_state()) - len(counters)
    if mode == "infer":
        assert result.parity_max_abs is not None and result.parity_max_abs <= 1e-4
    else:
        assert result.runtime_details["optimizer"].startswith("adam")


SUITE = """
name: tf
defaults: {threads: 1, budget_s: 0.2, input: 3x32x32, runtimes: [eager, tensorflow]}
cases:
  - name: twin
    models: ["resnet:layers=1-1-1-1,num_classes=7", shufflenet_v2_x0_5]
  - name: half
    dtype: bfloat16
    runtimes: [tensorflow]
    models: ["resnet:layers=1-1-1-1,num_classes=7"]
"""


def test_runtime_error_rows_name_the_problem(owned: None, tmp_path: Path) -> None:
    path = tmp_path / "tf.yaml"
    path.write_text(textwrap.dedent(SUITE).lstrip(), encoding="utf-8")
    rows = load_run(run_suite(path, out=tmp_path / "run", calibrate=False)).rows
    by_id = rows.set_index("case_id")
    twin = by_id.loc[f"twin/{TINY}/cpu/b1/runtime=tensorflow"]
    assert twin["status"] == "ok" and twin["parity_max_abs"] <= 1e-4
    none = by_id.loc["twin/shufflenet_v2_x0_5/cpu/b1/runtime=tensorflow"]
    assert none["status"] == "error"
    assert "has no Keras twin; networks with one: resnet18, resnet34" in none["error"]
    half = by_id.loc[f"half/{TINY}/cpu/b1/runtime=tensorflow"]
    assert half["status"] == "error" and "float32 only, not bfloat16" in half["error"]
    assert by_id.loc["twin/shufflenet_v2_x0_5/cpu/b1"]["status"] == "ok"  # eager still runs


def test_cli_says_which_networks_have_a_twin(owned: None) -> None:
    result = CliRunner().invoke(
        app, ["time", "shufflenet_v2_x0_5", "--runtime", "tensorflow", "--threads", "1"]
    )
    assert result.exit_code == 2 and "has no Keras twin" in result.output
    assert "Traceback" not in result.output


# --- the runtime, as the engine normally runs it: in a child process ---------------------------


@pytest.mark.slow
def test_an_unclaimed_process_measures_tensorflow_in_a_child() -> None:
    assert not isolated.process_is_owned()
    try:
        result = measure_latency(TINY, SMALL_INPUT, threads=2, budget_s=0.3, runtime="tensorflow")
        assert result.runtime_details["intra_op_threads"] == 2  # set in the fresh child
        assert result.parity_max_abs <= 1e-4
        with pytest.raises(BenchError, match="has no Keras twin"):  # errors come back as raised
            measure_latency("shufflenet_v2_x0_5", threads=2, runtime="tensorflow")
    finally:
        isolated.close_child()


def test_importing_netdefs_and_the_adapter_does_not_import_tensorflow() -> None:
    code = (
        "import sys, netdefs, bench.runtimes.tensorflow_rt; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- the architectures suite and the report ----------------------------------------------------


def test_architectures_suite_times_every_resnet_in_tensorflow_on_cpu() -> None:
    suite = load_suite(Path(__file__).resolve().parent.parent / "suites" / "architectures.yaml")
    tf_cases = [c for c in suite.cases if c.runtime == "tensorflow"]
    assert {c.model for c in tf_cases} == set(VARIANTS)
    assert {(c.device, c.batch) for c in tf_cases} == {("cpu", 1), ("cpu", 8)}
    eager = {(c.model, c.batch) for c in suite.cases if c.runtime == "eager" and c.device == "cpu"}
    assert {(c.model, c.batch) for c in tf_cases} <= eager  # each beside its PyTorch case


def framework_rows() -> pd.DataFrame:
    """Rows of resnet18 and resnet50 in both frameworks, and an eager-only network."""
    rows = [
        {"model": model, "runtime": runtime, "latency_ms_median": ms, "status": "ok",
         "mode": "infer", "device": "cpu", "batch": 1, "threads": 2, "first_ms": 3 * ms,
         "prepare_s": 1.5, "parity_max_abs": None if runtime == "eager" else 3e-6}
        for model, runtime, ms in [("resnet18", "eager", 40.0), ("resnet18", "tensorflow", 80.0),
                                   ("resnet50", "eager", 90.0), ("resnet50", "tensorflow", 60.0),
                                   ("shufflenet_v2_x1_0", "eager", 9.0)]
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_report_puts_pytorch_and_tensorflow_side_by_side(tmp_path: Path) -> None:
    text = "\n".join(runtime_section(framework_rows(), tmp_path))
    assert "`tensorflow` is another framework" in text
    assert re.search(r"\| resnet18 +\| 40\.0 +\| 80\.0 \(0\.5x\) +\|", text)  # TF 2x slower
    assert re.search(r"\| resnet50 +\| 90\.0 +\| 60\.0 \(1\.50x\) +\|", text)
    assert re.search(r"\| resnet18 +\| tensorflow +\| 240 +\| 1\.50 +\| 80\.0 +\| 3e-06 +\|", text)
    assert "shufflenet_v2_x1_0" not in text  # measured in one framework only: not compared here
