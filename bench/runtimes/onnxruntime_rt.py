"""ONNX Runtime: the exported file in an InferenceSession, inputs and outputs bound once.

Threads: intra-op = the case's threads, inter-op = 1; full graph optimisation; the CPU execution
provider (CUDA when a GPU and onnxruntime-gpu are present). Input and output live in numpy
buffers bound with IOBinding, so the timed call copies nothing.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from bench.core.errors import BenchError, first_line
from bench.runtimes.base import NodeTiming, Runtime, Session, Target
from bench.runtimes.onnx_export import onnx_file

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def session_options(threads: int) -> ort.SessionOptions:
    """Intra-op threads as asked, one inter-op thread, every graph optimisation on."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


def profiling_options(options: ort.SessionOptions) -> ort.SessionOptions:
    """Turn on ONNX Runtime's per-node profiler, its JSON file in the temporary folder."""
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "bench-ort-profile")
    return options


def _node_timing(event: dict[str, Any]) -> NodeTiming:
    """A node's kernel-time event as a NodeTiming (shapes kept in detail)."""
    args = event.get("args", {})
    return NodeTiming(
        name=event["name"].removesuffix("_kernel_time"),
        op_type=str(args.get("op_name", "")),
        time_us=float(event["dur"]),
        detail={k: args[k] for k in ("input_type_shape", "output_type_shape") if k in args},
    )


def split_runs(events: list[dict[str, Any]]) -> list[list[NodeTiming]]:
    """Each `model_run` of a profile's events with the node kernels that ran inside it."""
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    kernels = [
        e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
    ]
    return [[_node_timing(e) for e in kernels if start <= e["ts"] <= end] for start, end in runs]


def profiled_runs(sess: ort.InferenceSession) -> list[list[NodeTiming]]:
    """End the session's profiling; its runs' nodes (the JSON file is removed after reading)."""
    path = Path(sess.end_profiling())
    try:
        return split_runs(json.loads(path.read_text(encoding="utf-8")))
    finally:
        path.unlink(missing_ok=True)


def bound_session(sess: ort.InferenceSession, x: np.ndarray) -> tuple[Any, np.ndarray]:
    """An IOBinding with the input and a preallocated output buffer; (binding, output)."""
    out_meta = sess.get_outputs()[0]
    out = np.empty(sess.run(None, {"x": x})[0].shape, dtype=x.dtype)
    binding = sess.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output(out_meta.name, "cpu", 0, out.dtype, out.shape, out.ctypes.data)
    return binding, out


class OnnxRuntime(Runtime):
    """onnxruntime.InferenceSession on the dynamo-exported ONNX file."""

    name = "onnxruntime"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    packages: ClassVar[tuple[str, ...]] = ("onnxruntime", "onnx", "onnxscript", "torch")

    def check(self, target: Target) -> None:
        """Beyond mode and device: CUDA needs the CUDA execution provider (onnxruntime-gpu)."""
        super().check(target)
        if PROVIDERS[target.device] not in ort.get_available_providers():
            raise BenchError(
                f"onnxruntime has no {PROVIDERS[target.device]} here (install onnxruntime-gpu)"
            )

    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        """Export (or reuse) the ONNX file, open a session, bind input and output."""
        path, cached = onnx_file(model, inputs, target)
        x = np.ascontiguousarray(inputs.detach().cpu().numpy())
        try:
            options = session_options(target.threads)
            if target.profile:
                options = profiling_options(options)
            sess = ort.InferenceSession(str(path), options, providers=[PROVIDERS[target.device]])
            binding, out = bound_session(sess, x)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BenchError(f"onnxruntime cannot run the model: {first_line(exc)}") from None
        session = Session(
            step=lambda: sess.run_with_iobinding(binding),
            output=lambda: torch.from_numpy(out.copy()).float(),
        )
        session.details.update(artefact=str(path), cached=cached)
        session.keep += [x, sess, binding, out]
        if target.profile:
            session.node_times = lambda: profiled_runs(sess)
        return session
