"""Eager PyTorch: the model's own forward (or a training step), the reference for parity."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from bench.runtimes.base import Runtime, Session, Target, output_tensor


def make_step(
    model: nn.Module,
    forward: Callable[[torch.Tensor], object],
    inputs: torch.Tensor,
    mode: str,
) -> Callable[[], object]:
    """One iteration: inference forward, or forward + loss + backward + SGD step (train mode)."""
    if mode == "infer":
        model.eval()
        return lambda: forward(inputs)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    targets: dict[str, torch.Tensor] = {}

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        training_loss(output_tensor(forward(inputs)), targets).backward()
        optimizer.step()

    return train_step


def training_loss(output: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy on fixed random targets for (N, classes) logits, else the output's sum."""
    if output.dim() != 2:
        return output.float().sum()
    if "y" not in targets:
        targets["y"] = torch.randint(0, output.shape[1], (output.shape[0],), device=output.device)
    return nn.functional.cross_entropy(output.float(), targets["y"])


def forward_session(
    model: nn.Module, forward: Callable[[torch.Tensor], object], inputs: torch.Tensor, mode: str
) -> Session:
    """A session that calls `forward` on the bound inputs and keeps the last output."""
    step = make_step(model, forward, inputs, mode)
    last: list[object] = []

    def run() -> None:
        if mode == "infer":
            last[:] = [step()]
        else:
            step()

    return Session(step=run, output=lambda: output_tensor(last[0]).detach().float().cpu())


class EagerRuntime(Runtime):
    """The model's forward in eager PyTorch, as `model(x)` runs it."""

    name = "eager"
    modes: ClassVar[tuple[str, ...]] = ("infer", "train")
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")

    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        """Nothing to prepare: the session calls the module itself."""
        return forward_session(model, model, inputs, target.mode)
