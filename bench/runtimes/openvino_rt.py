"""OpenVINO: the exported ONNX file compiled for the CPU, one synchronous request reused.

Compiled with the latency hint, INFERENCE_NUM_THREADS = the case's threads and the inference
precision pinned to the case's dtype: on CPUs with AVX512-BF16 or AMX, OpenVINO's default is to
run float32 models in bfloat16, which would time another computation than the other runtimes
(and fail parity). The input is a tensor sharing the numpy buffer's memory, so the timed
`infer()` copies nothing in.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import openvino as ov
import torch
from torch import nn

from bench.core.errors import BenchError, first_line
from bench.runtimes.base import NodeTiming, Runtime, Session, Target
from bench.runtimes.onnx_export import onnx_file

PRECISIONS = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}


def compile_options(target: Target) -> dict[str, object]:
    """The latency hint, the thread count and the inference precision of the case's dtype."""
    return {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": target.threads,
        "INFERENCE_PRECISION_HINT": PRECISIONS.get(target.dtype, "f32"),
    }


def node_timings(request: ov.InferRequest) -> list[NodeTiming]:
    """The last inference's per-node performance counters as NodeTimings, in execution order."""
    return [
        NodeTiming(
            name=info.node_name,
            op_type=info.node_type,
            time_us=info.real_time.total_seconds() * 1e6,
            executed=str(info.status).endswith("EXECUTED"),
            detail={"exec_type": info.exec_type},
        )
        for info in request.profiling_info
    ]


def profiled_session(request: ov.InferRequest, session: Session) -> Session:
    """The session with a step that keeps each inference's performance counters."""
    steps: list[list[NodeTiming]] = []

    def step() -> None:
        request.infer()
        steps.append(node_timings(request))

    session.step = step
    session.node_times = lambda: list(steps)
    return session


class OpenVinoRuntime(Runtime):
    """openvino.Core().compile_model on the ONNX file, device CPU."""

    name = "openvino"
    packages: ClassVar[tuple[str, ...]] = ("openvino", "onnx", "onnxscript", "torch")

    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        """Export (or reuse) the ONNX file, compile it, bind the input to one request."""
        path, cached = onnx_file(model, inputs, target)
        x = np.ascontiguousarray(inputs.detach().cpu().numpy())
        try:
            options = compile_options(target) | ({"PERF_COUNT": True} if target.profile else {})
            compiled = ov.Core().compile_model(str(path), "CPU", options)
            request = compiled.create_infer_request()
            request.set_input_tensor(ov.Tensor(x, shared_memory=True))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise BenchError(f"OpenVINO cannot compile the model: {first_line(exc)}") from None
        session = Session(
            step=request.infer,
            output=lambda: torch.from_numpy(request.get_output_tensor().data.copy()).float(),
        )
        precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        session.details.update(artefact=str(path), cached=cached, precision=precision)
        session.keep += [x, compiled, request]
        return profiled_session(request, session) if target.profile else session
