"""pytest-benchmark timings of the regression gate's cases (suites/ci.yaml), one per case.

In the normal test run (`--benchmark-disable` in pyproject) each body runs once as a smoke test.
Timing: `uv run pytest tests/perf --benchmark-enable --benchmark-autosave --benchmark-save-data`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.core.options import fixed_threads


@pytest.fixture
def one_thread() -> Iterator[int]:
    """torch intra-op threads fixed to 1 for the test (the previous count restored after)."""
    with fixed_threads(1) as threads:
        yield threads
