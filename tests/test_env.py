"""Environment record: fields present, JSON-serialisable, absent tools never fail, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.measure import env

FIELDS = {
    "python", "torch", "torchvision", "platform", "cpu_model", "cores_physical", "cores_logical",
    "threads", "cuda_available", "gpu_name", "gpu_driver", "cuda_version", "cudnn_version",
    "git_commit", "git_dirty", "hostname", "timestamp", "calibration",
}  # fmt: skip


def test_env_fields_present_and_json_ready() -> None:
    record = env.collect_env(calibrate=False)
    assert set(record) >= FIELDS
    assert record["calibration"] is None
    assert record["torch"] == torch.__version__
    assert record["cores_logical"] >= 1 and record["threads"] >= 1
    assert record["timestamp"].endswith("Z")
    assert json.loads(json.dumps(record)) == record


def test_calibration_measures_positive_rates() -> None:
    calibration = env.run_calibration("cpu")
    assert calibration["gemm_flops_per_s"] > 1e8
    assert calibration["copy_bytes_per_s"] > 1e8
    assert calibration["ref_workload_ms"] > 0
    assert calibration["ref_workload"].startswith("ref_convstack_v1")
    json.dumps(calibration)


def test_reference_net_is_fixed() -> None:
    first, second = env.reference_net(), env.reference_net()
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_missing_tools_never_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env.shutil, "which", lambda name: None)
    assert env.gpu_driver() is None
    assert env._run(["/nonexistent/tool-xyz", "--version"]) is None


def test_git_commit_is_hash_or_unknown() -> None:
    commit = env.git_commit()
    assert commit == "unknown" or all(c in "0123456789abcdef" for c in commit)
    assert env.git_dirty() in (True, False, None)


def test_cpu_model_is_text() -> None:
    assert isinstance(env.cpu_model(), str) and env.cpu_model()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_env_cuda_without_cuda_raises() -> None:
    with pytest.raises(BenchError, match="CUDA is not available"):
        env.collect_env(calibrate=False, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_env_cuda_calibration() -> None:
    record = env.collect_env(calibrate=True, device="cuda")
    assert record["gpu_name"] and record["calibration"]["device"] == "cuda"
    assert record["calibration"]["gemm_flops_per_s"] > 1e11


def test_cli_env_json() -> None:
    result = CliRunner().invoke(app, ["env", "--no-calibrate", "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) >= FIELDS


def test_cli_env_table() -> None:
    result = CliRunner().invoke(app, ["env", "--no-calibrate"])
    assert result.exit_code == 0, result.output
    assert "cpu_model" in result.stdout and "git_commit" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cli_env_cuda_without_cuda_exits_2() -> None:
    result = CliRunner().invoke(app, ["env", "--device", "cuda", "--no-calibrate"])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.stderr
