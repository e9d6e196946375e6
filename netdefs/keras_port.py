"""Port a PyTorch state dict into a Keras twin whose layers carry the PyTorch module names.

One rule per Keras variable name: conv kernels OIHW -> HWIO (grouped: (kh, kw, in / groups,
out), the same grouping as PyTorch's), dense kernels transposed, BatchNorm gamma / beta / moving
mean / moving variance from weight / bias / running_mean / running_var. `num_batches_tracked`
has no Keras counterpart (Keras keeps no count) and is the one tensor left out on purpose.
Every Keras variable must find its tensor with the right shape and every other tensor must be
used: otherwise one ValueError names each tensor that did not match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

# isort: off
import netdefs.keras_resnet  # noqa: F401  first: the Keras backend, torch._dynamo before TensorFlow
import keras
# isort: on

# Keras variable name -> (PyTorch tensor suffix, how the PyTorch array becomes the Keras one)
PORT_RULES: dict[tuple[str, str], tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    ("Conv2D", "kernel"): ("weight", lambda w: w.transpose(2, 3, 1, 0)),
    ("Dense", "kernel"): ("weight", lambda w: w.T),
    ("Dense", "bias"): ("bias", lambda b: b),
    ("BatchNormalization", "gamma"): ("weight", lambda g: g),
    ("BatchNormalization", "beta"): ("bias", lambda b: b),
    ("BatchNormalization", "moving_mean"): ("running_mean", lambda m: m),
    ("BatchNormalization", "moving_variance"): ("running_var", lambda v: v),
}
NO_COUNTERPART = ("num_batches_tracked",)  # PyTorch buffers Keras has no variable for


@dataclass(frozen=True)
class PortReport:
    """What a port copied: Keras variables filled and PyTorch tensors left out on purpose."""

    ported: int
    left_out: tuple[str, ...]


def as_array(value: object) -> np.ndarray:
    """A float32 numpy copy of a torch tensor or array-like (torch is not imported here)."""
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()  # type: ignore[attr-defined]
    return np.asarray(value, dtype=np.float32)


def match_variable(
    layer: keras.Layer, variable: keras.Variable, state_dict: Mapping[str, object]
) -> tuple[str | None, np.ndarray | str]:
    """(the PyTorch key used, the ported value), or (key or None, the line saying what is wrong)."""
    rule = PORT_RULES.get((type(layer).__name__, variable.name))
    if rule is None:
        return None, f"no port rule for {type(layer).__name__} variable {variable.path}"
    key, convert = f"{layer.name}.{rule[0]}", rule[1]
    if key not in state_dict:
        return None, f"missing tensor {key} (for {variable.path})"
    source = as_array(state_dict[key])
    value = convert(source)
    if tuple(value.shape) != tuple(variable.shape):
        return key, (
            f"tensor {key} has shape {tuple(source.shape)} ({tuple(value.shape)} after the "
            f"port), {variable.path} needs {tuple(variable.shape)}"
        )
    return key, value


def planned_assignments(
    model: keras.Model, state_dict: Mapping[str, object]
) -> tuple[list[tuple[keras.Variable, np.ndarray]], list[str]]:
    """(variable, value) for every Keras variable, and one line per tensor that did not match."""
    plan, problems, used = [], [], set()
    for layer in model.layers:
        for variable in layer.weights:
            key, value = match_variable(layer, variable, state_dict)
            used.add(key)
            if isinstance(value, str):
                problems.append(value)
            else:
                plan.append((variable, value))
    unused = [k for k in state_dict if k not in used and not k.endswith(NO_COUNTERPART)]
    problems += [f"tensor {key} has no Keras counterpart" for key in unused]
    return plan, problems


def port_state_dict(model: keras.Model, state_dict: Mapping[str, object]) -> PortReport:
    """Copy a PyTorch state dict into the Keras twin; ValueError naming every mismatch."""
    plan, problems = planned_assignments(model, state_dict)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(f"weight port to {model.name}: {'; '.join(problems[:3])}{more}")
    for variable, value in plan:
        variable.assign(value)
    left_out = tuple(k for k in state_dict if k.endswith(NO_COUNTERPART))
    return PortReport(ported=len(plan), left_out=left_out)
