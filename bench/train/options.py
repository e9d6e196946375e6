"""Fine-tune options: the `train:` mapping of a suite case, validated into `TrainOptions`.

Torch-free, so that validating a suite file does not load the training loop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bench.core.choices import DEVICES
from bench.core.errors import BenchError

CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("cosine", "onecycle", "none"),
    "freeze": ("none", "backbone"),
    "amp": ("none", "bf16", "fp16"),
    "device": DEVICES,
}


@dataclass(frozen=True)
class TrainOptions:
    """Every setting of one fine-tune (the `train:` mapping of a suite case)."""

    data: str | None = None
    val_fraction: float = 0.1
    split_seed: int = 0
    image_size: int = 128
    progressive: tuple[int, ...] = ()
    eval_crop: float = 0.875
    min_scale: float = 0.25
    batch: int = 64
    epochs: int = 10
    time_budget_s: float | None = None
    budget_schedule: bool = False
    optimizer: str = "adamw"
    lr: float = 0.002
    lrf: float = 0.01
    schedule: str = "onecycle"
    warmup: float = 0.15
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    weights: str = "none"
    freeze: str = "none"
    workers: int = 2
    device: str = "cpu"
    seed: int = 0
    amp: str = "none"
    channels_last: bool = False
    tta_flip: bool = False
    threads: int | None = None
    tensorboard: str | None = None


def _fail(where: str, key: str, value: Any, valid: str) -> BenchError:
    """Build the one-line error for a bad train option."""
    return BenchError(f"{where}.{key}: {value!r} is not valid; expected {valid}")


def _coerce(where: str, key: str, value: Any, default: Any) -> Any:
    """Check and convert one option value against the type of its default."""
    if key in CHOICES:
        if str(value).lower() not in CHOICES[key]:
            raise _fail(where, key, value, "one of " + ", ".join(CHOICES[key]))
        return str(value).lower()
    if key == "progressive":
        if not isinstance(value, list | tuple) or not all(_is_int(v) and v > 0 for v in value):
            raise _fail(where, key, value, "a list of positive image sizes")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _fail(where, key, value, "true or false")
        return value
    return _coerce_number_or_text(where, key, value, default)


def _is_int(value: Any) -> bool:
    """True for ints that are not bools."""
    return isinstance(value, int) and not isinstance(value, bool)


def _coerce_number_or_text(where: str, key: str, value: Any, default: Any) -> Any:
    """Check ints, floats and strings (None allowed where the default is None)."""
    if value is None and default is None:
        return None
    if _is_int(default) or key == "threads":
        if not _is_int(value) or value < (0 if key in ("workers", "seed", "split_seed") else 1):
            raise _fail(where, key, value, "a positive integer")
        return value
    if isinstance(default, float) or key == "time_budget_s":
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise _fail(where, key, value, "a non-negative number")
        return float(value)
    if not isinstance(value, str):
        raise _fail(where, key, value, "a string")
    return value


def parse_train_options(mapping: dict, where: str = "train") -> TrainOptions:
    """Validate a `train:` mapping into TrainOptions (BenchError names where.key and choices)."""
    if not isinstance(mapping, dict):
        raise BenchError(f"{where}: expected a mapping of train options, got {mapping!r}")
    fields = {f.name: f.default for f in dataclasses.fields(TrainOptions)}
    values = {}
    for key, value in mapping.items():
        if key not in fields:
            raise _fail(where, str(key), key, "a key among " + ", ".join(fields))
        values[key] = _coerce(where, key, value, fields[key])
    options = TrainOptions(**values)
    _check_ranges(options, where)
    return options


def _check_ranges(options: TrainOptions, where: str) -> None:
    """Reject values that have the right type but an impossible range."""
    if not 0.0 < options.val_fraction < 1.0:
        raise _fail(where, "val_fraction", options.val_fraction, "a number between 0 and 1")
    if not 0.0 < options.eval_crop <= 1.0:
        raise _fail(where, "eval_crop", options.eval_crop, "a number in (0, 1]")
    if not 0.0 < options.min_scale <= 1.0:
        raise _fail(where, "min_scale", options.min_scale, "a number in (0, 1]")
    if not 0.0 <= options.label_smoothing < 1.0:
        raise _fail(where, "label_smoothing", options.label_smoothing, "a number in [0, 1)")


def size_at(progress: float, options: TrainOptions) -> int:
    """Training image size at a progress in [0, 1]: progressive sizes in equal phases."""
    if not options.progressive:
        return options.image_size
    phase = min(len(options.progressive) - 1, int(progress * len(options.progressive) + 1e-9))
    return options.progressive[phase]


def eval_resize(options: TrainOptions) -> int:
    """The resize before the centre crop at evaluation."""
    return round(options.image_size / options.eval_crop)
