"""Latency of suites/ci.yaml's cases with the pytest-benchmark fixture (eval, inference_mode)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bench.core.options import fixed_threads
from bench.measure.env import reference_net
from bench.runs.suite import Case, load_suite

CI_SUITE = Path(__file__).resolve().parents[2] / "suites" / "ci.yaml"
CI_CASES = load_suite(CI_SUITE).cases
TIMING = {"min_rounds": 15, "max_time": 2.0, "warmup": True, "warmup_iterations": 3}


def build_case(case: Case) -> tuple[nn.Module, torch.Tensor]:
    """The case's model in eval mode and a random input batch of its shape."""
    from netdefs import get_model

    torch.manual_seed(0)
    model = get_model(case.model).eval()
    return model, torch.randn(case.batch, *case.input)


@pytest.mark.benchmark(group="ci", **TIMING)
@pytest.mark.parametrize("case", CI_CASES, ids=[case.case_id for case in CI_CASES])
def test_ci_case(benchmark, case: Case) -> None:
    """One forward pass of the case; its case_id goes to extra_info so compare can match it."""
    model, inputs = build_case(case)
    benchmark.extra_info["case_id"] = case.case_id
    with fixed_threads(case.threads), torch.inference_mode():
        output = benchmark(model, inputs)
    assert output.shape[0] == case.batch and torch.isfinite(output).all()


@pytest.mark.benchmark(group="calibration", **TIMING)
def test_reference_workload(benchmark, one_thread: int) -> None:
    """bench.env's reference network: `bench compare` normalises by it across machines."""
    model, inputs = reference_net().eval(), torch.randn(1, 3, 64, 64)
    benchmark.extra_info["role"] = "calibration"
    with torch.inference_mode():
        output = benchmark(model, inputs)
    assert output.shape == (1, 10) and one_thread == 1
