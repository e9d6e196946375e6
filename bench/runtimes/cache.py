"""Exported artefacts (ONNX files, AOTInductor packages), cached so that a suite exports once.

The key covers everything the artefact depends on: the model's spec and structure (every
module's class and plain attributes, such as a block's `shortcut` flag, which no weight shows),
every parameter and buffer (so the same spec with other weights is another artefact), the
input's shape and dtype, the target, and the versions of the packages that export.
`BENCH_EXPORT_CACHE` moves the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from bench.runtimes.base import Target, package_version

CACHE_ENV = "BENCH_EXPORT_CACHE"


def cache_dir() -> Path:
    """The export cache: $BENCH_EXPORT_CACHE, else ~/.cache/bench/exports."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "bench" / "exports"


PLAIN = (bool, int, float, str, type(None))


def structure_digest(model: nn.Module) -> str:
    """A digest of the spec and of every module's path, class and plain (non-tensor) attributes."""
    digest = hashlib.blake2b(str(getattr(model, "spec", "")).encode(), digest_size=16)
    for path, module in model.named_modules():
        plain = {
            key: value
            for key, value in vars(module).items()
            if key != "training" and not key.startswith("_") and isinstance(value, PLAIN)
        }
        digest.update(f"{path}:{type(module).__qualname__}:{sorted(plain.items())}".encode())
    return digest.hexdigest()


def weights_digest(model: nn.Module) -> str:
    """A digest of the model's class, parameter and buffer names, shapes, dtypes and values."""
    digest = hashlib.blake2b(type(model).__qualname__.encode(), digest_size=16)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        values = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(values.view(torch.uint8).numpy().tobytes() if values.numel() else b"")
    return digest.hexdigest()


def artefact_key(
    model: nn.Module, inputs: torch.Tensor, target: Target, packages: Iterable[str]
) -> str:
    """The cache key of one artefact: weights, input, target and exporter versions."""
    parts = [
        structure_digest(model),
        weights_digest(model),
        f"{tuple(inputs.shape)}:{inputs.dtype}",
        f"{target.device}:{target.dtype}:{target.mode}",
        *(f"{p}={package_version(p)}" for p in ("torch", *packages)),
    ]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest()


def cached_artefact(key: str, name: str, build: Callable[[Path], object]) -> tuple[Path, bool]:
    """The cached file `<key>/<name>`, built with `build(path)` when absent; (path, was cached).

    The artefact is built in a private folder that is renamed into place whole, so an export that
    fails or is killed leaves nothing behind that a later run could mistake for a finished one.
    """
    final = cache_dir() / key
    if (final / name).is_file():
        return final / name, True
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        build(staging / name)
        if final.exists() and not (final / name).is_file():
            shutil.rmtree(final, ignore_errors=True)  # a broken artefact from an older version
        with contextlib.suppress(OSError):  # another process finished the same artefact first
            staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / name, False
