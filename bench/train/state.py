"""A fine-tune's last-epoch training state, so that a killed fine-tune resumes where it stopped.

After every epoch rank 0 writes `<model>.last.pt` beside the best checkpoint (atomically): the
model, optimizer and grad-scaler states, the step count, the epoch rows so far, the best
validation accuracy, the training seconds spent, the RNG states, whether training is over, and
a fingerprint of what is trained (spec, options, classes, split sizes, processes). `finetune`
continues from it when the fingerprint matches and starts over (with a warning) when it does
not; the runner deletes it once the case's row is on disk.
"""

from __future__ import annotations

import dataclasses
import json
import random
import warnings
from pathlib import Path
from typing import Any

import torch

from bench.core.errors import BenchError
from bench.train.checkpoints import checkpoint_stem, read_torch_file, save_torch
from bench.train.options import TrainOptions

STATE_SUFFIX = ".last.pt"
UNFINGERPRINTED = ("data", "workers", "tensorboard")  # do not change what is trained


def train_state_path(run_dir: Path, spec: str) -> Path:
    """Where a spec's last-epoch training state lives in a run folder."""
    return Path(run_dir) / f"{checkpoint_stem(spec)}{STATE_SUFFIX}"


def discard_train_state(run_dir: Path, spec: str) -> None:
    """Delete a spec's training state (its fine-tune's row is recorded)."""
    train_state_path(run_dir, spec).unlink(missing_ok=True)


def training_fingerprint(
    spec: str, options: TrainOptions, classes: tuple[str, ...], sizes: tuple[int, int, int]
) -> dict[str, Any]:
    """What a training state must match to be resumed: spec, options, classes, split, world."""
    kept = {k: v for k, v in dataclasses.asdict(options).items() if k not in UNFINGERPRINTED}
    payload = {"spec": spec, "options": kept, "classes": list(classes), "sizes": list(sizes)}
    return json.loads(json.dumps(payload))  # tuples as lists, as they come back from disk


def rng_states() -> dict[str, Any]:
    """The Python, torch and CUDA random generator states."""
    states: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put back the generator states of `rng_states`."""
    random.setstate(_as_tuples(states["python"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuples(value: Any) -> Any:
    """Lists turned back into tuples, recursively (random.setstate wants tuples)."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def save_train_state(path: Path, state: dict[str, Any]) -> None:
    """Write the training state atomically."""
    save_torch(path, {**state, "rng": rng_states()})


def load_train_state(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state when it exists and matches the fingerprint; else None (with a warning)."""
    if not path.is_file():
        return None
    try:
        state = read_torch_file(path, "training state")
    except BenchError as exc:
        warnings.warn(f"{exc}; training starts over", stacklevel=2)
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
        warnings.warn(
            f"training state {path} was saved for another spec, options or data; "
            "training starts over",
            stacklevel=2,
        )
        return None
    return state
