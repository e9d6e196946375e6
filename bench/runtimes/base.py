"""The one small interface every runtime adapter implements: prepare, run one batch, describe.

The timing engine (`bench.measure.timing`) builds the model and a random input batch, hands
both to `Runtime.prepare` and gets back a `Session`: `step()` runs one batch on the input bound at
preparation (the engine times it), `output()` returns the last result as a CPU tensor (the engine
compares it with eager PyTorch). The engine never knows which runtime it drives.
"""

from __future__ import annotations

import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from bench.core.errors import BenchError


@dataclass(frozen=True)
class Target:
    """Where and how one batch runs: device, dtype, threads, mode, memory format."""

    device: str
    dtype: torch.dtype
    threads: int
    mode: str = "infer"
    channels_last: bool = False
    profile: bool = False  # a runtime with its own per-node profiler turns it on (bench profile)


@dataclass(frozen=True)
class NodeTiming:
    """One node of a runtime's executed graph in one profiled step: its time and what it is."""

    name: str
    op_type: str
    time_us: float
    executed: bool = True  # False: fused into another node or optimised out
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    """A prepared model: `step()` runs one batch, `output()` is the last result on the CPU.

    `details` holds plain facts for the result (the artefact's path, whether it was cached);
    `keep` holds objects the runtime needs alive while `step` runs (bound buffers, sessions).
    With `Target.profile`, `node_times()` returns each profiled step's nodes (runtimes with a
    per-node profiler of their own; the timing engine never asks).
    """

    step: Callable[[], object]
    output: Callable[[], torch.Tensor]
    details: dict[str, Any] = field(default_factory=dict)
    keep: list[object] = field(default_factory=list)
    node_times: Callable[[], list[list[NodeTiming]]] = list  # per profiled step, when profiling


class Runtime(ABC):
    """One way to execute a network (eager PyTorch, a compiler, an inference engine)."""

    name: ClassVar[str]
    modes: ClassVar[tuple[str, ...]] = ("infer",)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    packages: ClassVar[tuple[str, ...]] = ("torch",)
    # True: the runtime fixes process-wide state (TensorFlow's thread pools), so the engine
    # measures it in a child process of its own (`bench.measure.isolated`)
    own_process: ClassVar[bool] = False
    # True: the network runs as PyTorch's graph, so its counted activation peak (a forward on
    # the meta device) describes what runs; False for another framework's twin of it
    torch_graph: ClassVar[bool] = True

    def check(self, target: Target) -> None:
        """BenchError (one line) when this runtime cannot run in the target's mode or device."""
        if target.mode not in self.modes:
            raise BenchError(
                f"runtime {self.name} times {', '.join(self.modes)} only, not mode {target.mode}"
            )
        if target.device not in self.devices:
            raise BenchError(
                f"runtime {self.name} runs on {', '.join(self.devices)} here, "
                f"not on {target.device}"
            )

    @abstractmethod
    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        """Export, compile or load the model for the target; the session runs `inputs`."""

    def describe(self) -> dict[str, Any]:
        """The runtime's name and the versions of the packages it runs on (for env.json)."""
        return {"runtime": self.name, **{p: package_version(p) for p in self.packages}}


def package_version(name: str) -> str | None:
    """An installed package's version, read without importing it (None when absent)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def output_tensor(value: Any) -> torch.Tensor:
    """The first tensor of a model's output (a tensor, or a tuple/list/dict holding tensors)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple) and value:
        return output_tensor(value[0])
    raise BenchError(f"the model's output {type(value).__name__} holds no tensor to compare")
