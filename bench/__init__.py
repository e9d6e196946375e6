"""What does this CNN cost, here? The library under the `bench` command.

The packages are the layers, dependencies pointing down: `core` (shared definitions) ->
`measure` (one model in, one result out) -> `train` (fine-tunes) -> `runs` (suites and run
folders) -> `analysis` (compare, guidelines, fits) -> `report` -> `cli`. The most used functions
are importable from here: `bench.count`, `bench.measure_latency`, `bench.profile_model`,
`bench.collect_env`, `bench.load_suite`, `bench.run_suite`, `bench.load_run`.
"""

from __future__ import annotations

from bench.core.lazy import lazy_attributes

_EXPORTS = {
    "count": "bench.measure.counting",
    "measure_latency": "bench.measure.timing",
    "profile_model": "bench.measure.profile",
    "collect_env": "bench.measure.env",
    "load_suite": "bench.runs.suite",
    "run_suite": "bench.runs.runner",
    "load_run": "bench.runs.folder",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS)
