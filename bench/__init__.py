"""The measuring engine: `bench.count`, `bench.measure_latency`, `bench.collect_env`, suites."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "count": "bench.counting",
    "measure_latency": "bench.timing",
    "collect_env": "bench.env",
    "load_suite": "bench.suite",
    "run_suite": "bench.runner",
    "load_run": "bench.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the public API lazily, so `bench --help` does not pay for every module."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
