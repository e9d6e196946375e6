"""TensorFlow: the network's Keras twin with the PyTorch weights ported, in a `tf.function`.

This adapter is light: `bench/runtimes/keras_session.py` (TensorFlow, Keras, the twins) is
imported when a case is prepared, in the child process the engine measures TensorFlow in
(`own_process`: TensorFlow fixes its thread pools once per process), so a run that only
describes or chooses the runtime does not pay TensorFlow's import (10-20 s) in the parent.
"""

from __future__ import annotations

from importlib import import_module
from typing import ClassVar

import torch
from torch import nn

from bench.core.errors import BenchError
from bench.runtimes.base import Runtime, Session, Target

SESSION_MODULE = "bench.runtimes.keras_session"


class TensorFlowRuntime(Runtime):
    """The Keras twin (TensorFlow backend) with ported weights, in a traced `tf.function`."""

    name = "tensorflow"
    modes: ClassVar[tuple[str, ...]] = ("infer", "train")
    packages: ClassVar[tuple[str, ...]] = ("tensorflow-cpu", "keras", "torch")
    own_process: ClassVar[bool] = True
    # Keras runs its own graph; and a meta forward there would import torch._dynamo (and
    # triton) into a process that has loaded TensorFlow, which crashes in triton's import
    torch_graph: ClassVar[bool] = False

    def check(self, target: Target) -> None:
        """Beyond mode and device: float32 only; then import TensorFlow (before prepare's clock).

        The import (10-20 s) is not part of `prepare_s`, as no other runtime's import is.
        """
        super().check(target)
        if target.dtype != torch.float32:
            raise BenchError(
                f"runtime tensorflow times float32 only, not {str(target.dtype).split('.')[-1]}"
            )
        import_module(SESSION_MODULE)

    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        """Set TensorFlow's threads, build the twin, port the weights, trace the step."""
        return import_module(SESSION_MODULE).prepare_session(model, inputs, target)
