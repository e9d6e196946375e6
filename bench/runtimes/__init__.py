"""Deployment runtimes: one adapter each behind `base.Runtime` (prepare, run one batch, describe).

`get_runtime(name)` imports an adapter on first use: onnxruntime, openvino, the ONNX exporter and
TensorFlow take seconds to import, and a run that uses only eager PyTorch should not pay for them.
"""

from __future__ import annotations

from importlib import import_module

from bench.core.choices import RUNTIMES
from bench.core.errors import BenchError
from bench.runtimes.base import Runtime

ADAPTERS = {
    "eager": "bench.runtimes.eager:EagerRuntime",
    "compile": "bench.runtimes.compiled:CompileRuntime",
    "aoti": "bench.runtimes.aoti:AotiRuntime",
    "onnxruntime": "bench.runtimes.onnxruntime_rt:OnnxRuntime",
    "openvino": "bench.runtimes.openvino_rt:OpenVinoRuntime",
    "tensorflow": "bench.runtimes.tensorflow_rt:TensorFlowRuntime",
}


def get_runtime(name: str) -> Runtime:
    """The adapter of a runtime by name; BenchError listing the runtimes otherwise."""
    if str(name) not in ADAPTERS:
        raise BenchError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
    module, _, cls = ADAPTERS[str(name)].partition(":")
    try:
        adapter = getattr(import_module(module), cls)
    except ImportError as exc:
        raise BenchError(f"runtime {name} is not installed here ({exc})") from None
    return adapter()


def describe_runtimes(names: list[str]) -> dict[str, dict]:
    """name -> the runtime's description (versions), or the one line why it is unavailable."""
    described: dict[str, dict] = {}
    for name in dict.fromkeys(names):
        try:
            described[name] = get_runtime(name).describe()
        except BenchError as exc:
            described[name] = {"runtime": name, "unavailable": str(exc)}
    return described
