"""measure_interleaved on tiny real models: one result per member, raw samples with rounds."""

from __future__ import annotations

import pytest

from bench.core.errors import BenchError
from bench.measure.interleaved import measure_interleaved

TINY = ["g1:c1=4,c2=8,blocks=1,size=8", "g1:c1=4,c2=8,blocks=3,size=8"]


def test_one_result_per_member_with_rounds_and_paired_ratios() -> None:
    results = measure_interleaved(TINY, threads=1, budget_s=1.0)
    assert len(results) == 2
    first, second = results
    assert first.paired_ratio == 1.0 and first.paired_low == first.paired_high == 1.0
    assert first.rounds == second.rounds and first.rounds >= 1
    for result in results:
        assert result.n_samples == len(result.samples_ms) == len(result.sample_rounds)
        assert set(result.sample_rounds) == set(range(result.rounds))
        assert result.stop_reason in ("converged", "budget", "max_rounds")
        assert result.threads == 1 and result.median_ms > 0
    assert second.paired_ratio > 0


def test_a_model_and_its_shape_can_be_given_as_a_pair() -> None:
    results = measure_interleaved([(TINY[0], (4, 8, 8))], threads=1, budget_s=0.3)
    assert results[0].paired_ratio == 1.0 and results[0].n_samples > 0


def test_an_empty_group_is_refused() -> None:
    with pytest.raises(BenchError, match="at least one model"):
        measure_interleaved([])
