"""Per-op times of a PyTorch model from `torch.profiler`, each op with its innermost module.

Forward hooks open a `record_function` range per module (the counting's module paths), and each
profiled iteration runs in a range of its own, so the profiler's call tree says which module ran
which op in which iteration. Times are CPU time on the CPU and the kernels' device time on CUDA
(`device_time_total`: kernels launched by the op and its callees).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.autograd import DeviceType
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

from bench.measure.counting import module_hooks
from bench.measure.op_matching import OpNode, ProfiledOp

MODULE_RANGE = "bench.module:"
ITERATION_RANGE = "bench.iteration:"


@dataclass(frozen=True)
class ProfiledIteration:
    """One profiled forward: its top-level ops in order and its wall time under the profiler."""

    ops: list[ProfiledOp]
    wall_us: float


@contextmanager
def module_ranges(model: nn.Module) -> Iterator[None]:
    """A profiler range named after each module's path around its forward (hooks removed after)."""
    open_ranges: list[record_function] = []

    def enter(name: str) -> None:
        open_ranges.append(record_function(MODULE_RANGE + name).__enter__())

    def leave() -> None:
        open_ranges.pop().__exit__(None, None, None)

    with module_hooks(model, enter, leave):
        yield


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (kineto narrates start and stop there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def _sync(device: str) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def _event_time(event: Any, device: str) -> float:
    """An event's inclusive time in us: CPU time, or on CUDA its kernels' device time."""
    return float(event.device_time_total if device == "cuda" else event.cpu_time_total)


def _node(event: Any, device: str) -> OpNode:
    """The call tree below a profiler event as plain nodes."""
    children = [_node(child, device) for child in event.cpu_children]
    return OpNode(event.name, _event_time(event, device), children)


def top_level_ops(event: Any, device: str, module: str = "") -> list[ProfiledOp]:
    """The ops called directly by module forwards below an event, with their module paths.

    Other ranges (a model's own `record_function`, runtime calls) are looked through.
    """
    ops: list[ProfiledOp] = []
    for child in sorted(event.cpu_children, key=lambda e: e.time_range.start):
        if child.name.startswith(MODULE_RANGE):
            ops += top_level_ops(child, device, child.name.removeprefix(MODULE_RANGE))
        elif "::" in child.name:  # an operator: aten::, prim::, a library's namespace::
            ops.append(ProfiledOp(module, _node(child, device)))
        else:
            ops += top_level_ops(child, device, module)
    return ops


def is_iteration_range(event: Any) -> bool:
    """An iteration's range on the CPU (on CUDA kineto mirrors each range on the GPU too)."""
    on_cpu = getattr(event, "device_type", DeviceType.CPU) == DeviceType.CPU
    return on_cpu and event.name.startswith(ITERATION_RANGE) and event.cpu_parent is None


def _activities(device: str) -> list[ProfilerActivity]:
    """The profiler's activities: the CPU, plus CUDA kernels on a GPU."""
    return (
        [ProfilerActivity.CPU, ProfilerActivity.CUDA]
        if device == "cuda"
        else [ProfilerActivity.CPU]
    )


def profile_forward(
    model: nn.Module, inputs: torch.Tensor, device: str, iterations: int, warmup: int
) -> list[ProfiledIteration]:
    """Warm up, then profile `iterations` inference forwards; their ops with module paths."""
    model.eval()
    with torch.inference_mode(), module_ranges(model):
        for _ in range(warmup):
            model(inputs)
        _sync(device)
        prof = profile(activities=_activities(device))
        with native_stderr_silenced():
            prof.start()
        try:
            for k in range(iterations):
                with record_function(f"{ITERATION_RANGE}{k}"):
                    model(inputs)
                    _sync(device)
        finally:
            with native_stderr_silenced():
                prof.stop()
    marks = [e for e in prof.events() if is_iteration_range(e)]
    marks.sort(key=lambda e: int(e.name.removeprefix(ITERATION_RANGE)))
    return [ProfiledIteration(top_level_ops(m, device), float(m.cpu_time_total)) for m in marks]
