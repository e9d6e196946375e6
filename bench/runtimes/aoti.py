"""AOTInductor: `torch.export`, compiled ahead of time into a package, loaded and run.

On CPU inference the package is compiled with inductor's freezing on (weights folded into the
compiled code as constants), as for deployment.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch
from torch import nn

from bench.core.errors import BenchError, first_line
from bench.runtimes.base import Runtime, Session, Target, output_tensor
from bench.runtimes.cache import artefact_key, cached_artefact


def compile_package(model: nn.Module, inputs: torch.Tensor, target: Target, path: Path) -> None:
    """Export the model with torch.export and write its AOTInductor package to `path`."""
    options = {"freezing": target.device == "cpu" and target.mode == "infer"}
    with contextlib.redirect_stdout(io.StringIO()):  # inductor prints compiler progress
        program = torch.export.export(model, (inputs,))
        torch._inductor.aoti_compile_and_package(
            program, package_path=str(path), inductor_configs=options
        )


class AotiRuntime(Runtime):
    """torch.export + AOTInductor: a compiled package loaded back, the way C++ deploys it."""

    name = "aoti"
    devices = ("cpu", "cuda")

    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        """Compile (or find in the cache) the package, load it, bind the inputs."""
        key = artefact_key(model, inputs, target, ())
        try:
            build = lambda path: compile_package(model, inputs, target, path)  # noqa: E731
            path, cached = cached_artefact(key, "model.pt2", build)
            runner = torch._inductor.aoti_load_package(str(path))
        except Exception as exc:  # export and compile failures come in many types
            raise BenchError(
                f"AOTInductor could not compile the model: {first_line(exc)}"
            ) from None
        last: list[object] = []
        session = Session(
            step=lambda: last.__setitem__(slice(None), [runner(inputs)]),
            output=lambda: output_tensor(last[0]).detach().float().cpu(),
        )
        session.details.update(artefact=str(path), cached=cached)
        return session
