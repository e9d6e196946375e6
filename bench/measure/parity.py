"""Output parity: a runtime's output against eager PyTorch's on the same input and weights.

A runtime passes when max |runtime - eager| <= atol + rtol x max |eager| (the tolerance scales
with the output's magnitude, which random weights leave anywhere from 1e-2 to 1e3). float32:
atol 1e-4, rtol 1e-3; the half types, whose rounding is 2^-8 (bfloat16) or 2^-11 (float16) of
each value: atol and rtol 5e-2 and 1e-2.
"""

from __future__ import annotations

import torch

from bench.core.errors import BenchError

TOLERANCES: dict[torch.dtype, tuple[float, float]] = {  # dtype -> (atol, rtol)
    torch.float32: (1e-4, 1e-3),
    torch.bfloat16: (5e-2, 5e-2),
    torch.float16: (1e-2, 1e-2),
}


def parity_tolerance(reference: torch.Tensor, dtype: torch.dtype) -> float:
    """The largest absolute difference allowed against this reference output."""
    atol, rtol = TOLERANCES.get(dtype, TOLERANCES[torch.float32])
    return atol + rtol * float(reference.abs().max()) if reference.numel() else atol


def check_parity(output: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype) -> float:
    """max |output - reference|; BenchError naming the difference when it is over tolerance."""
    if tuple(output.shape) != tuple(reference.shape):
        raise BenchError(
            f"runtime output shape {tuple(output.shape)} differs from eager PyTorch's "
            f"{tuple(reference.shape)}"
        )
    difference = float((output.float() - reference.float()).abs().max()) if output.numel() else 0.0
    tolerance = parity_tolerance(reference, dtype)
    if not difference <= tolerance:  # also catches NaN
        raise BenchError(
            f"runtime output differs from eager PyTorch: max |diff| {difference:.3g} > "
            f"tolerance {tolerance:.3g} (max |eager| {float(reference.abs().max()):.3g})"
        )
    return difference
