"""The ONNX file both ONNX Runtime and OpenVINO run: `torch.onnx.export(..., dynamo=True)`.

The TorchScript-based exporter cannot export `aten::channel_shuffle` (ShuffleNets); the dynamo
exporter decomposes it. One file per weights, input shape and dtype, cached (`cache.py`).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from bench.core.errors import BenchError, first_line
from bench.runtimes.base import Target
from bench.runtimes.cache import artefact_key, cached_artefact

EXPORTER_PACKAGES = ("onnx", "onnxscript")


def write_onnx(model: nn.Module, inputs: torch.Tensor, path: Path) -> None:
    """Export the model's inference forward to `path` (one input `x`, one output)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter narrates its passes
        program = torch.onnx.export(
            model.eval(), (inputs,), dynamo=True, input_names=["x"], verbose=False
        )
        program.save(str(path))


def onnx_file(model: nn.Module, inputs: torch.Tensor, target: Target) -> tuple[Path, bool]:
    """The model's ONNX file for these inputs (exported once); (path, was cached)."""
    key = artefact_key(model, inputs, target, EXPORTER_PACKAGES)
    try:
        return cached_artefact(key, "model.onnx", lambda path: write_onnx(model, inputs, path))
    except Exception as exc:  # the exporter raises many types; report its first line
        raise BenchError(f"ONNX export failed: {first_line(exc)}") from None
