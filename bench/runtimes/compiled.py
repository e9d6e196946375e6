"""`torch.compile` (inductor): compiled by a first call inside `prepare`, outside the samples."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from bench.core.errors import BenchError, first_line
from bench.runtimes.base import Runtime, Session, Target
from bench.runtimes.eager import forward_session

BACKEND = "inductor"


class CompileRuntime(Runtime):
    """torch.compile with the inductor backend (C++/OpenMP kernels on CPU, Triton on CUDA)."""

    name = "compile"
    modes: ClassVar[tuple[str, ...]] = ("infer", "train")
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")

    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        """Compile the forward and run it once, so that compilation happens here."""
        forward = torch.compile(model, backend=BACKEND)
        session = forward_session(model, forward, inputs, target.mode)
        try:
            with torch.inference_mode() if target.mode == "infer" else torch.enable_grad():
                session.step()
        except Exception as exc:  # compile failures come in many types; report one line
            raise BenchError(f"torch.compile failed ({BACKEND}): {first_line(exc)}") from None
        session.details["backend"] = BACKEND
        return session
