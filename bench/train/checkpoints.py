"""Weights in and out of a fine-tune: torchvision or file weights, checkpoints, prediction.

Every `.pt` is read with `torch.load(weights_only=True)`: a pickle holding anything beyond
tensors and plain data is refused (and never retried unsafely), and a checkpoint's metadata is
checked (types, ranges, the class count against the head) before anything is built from it.
"""

from __future__ import annotations

import json
import math
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.core.errors import BenchError, first_line, unpickling_detail
from bench.core.io import atomic_write_text, atomic_write_with
from bench.core.models import build_model
from bench.train import data as imgdata
from bench.train.options import TrainOptions, eval_resize


def torchvision_weights_file(spec: str) -> Path:
    """The torchvision checkpoint for spec's model in the local torch hub cache (no download)."""
    import torchvision

    name = spec.removeprefix("torchvision:").split(":")[0]
    try:
        url = torchvision.models.get_model_weights(name).DEFAULT.url
    except (ValueError, KeyError, AttributeError):
        raise BenchError(f"weights: torchvision has no pretrained weights for {name!r}") from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise BenchError(f"weights: torchvision file {path} is absent (fetch {url} by hand)")
    return path


MAX_CLASSES = 100_000
MAX_IMAGE_SIZE = 4096
CHECKPOINT_KEYS = ("state_dict", "classes", "spec", "eval")


def read_torch_file(path: Path, what: str) -> Any:
    """`torch.load(path, weights_only=True)`; BenchError (one line, no unsafe advice) if refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BenchError(
            f"{what} {path}: refused, it holds more than tensors and plain data "
            f"({unpickling_detail(exc)}); loading such a file can run code"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise BenchError(f"{what} {path}: not a readable torch file ({first_line(exc)})") from None


def save_torch(path: Path, payload: Any) -> None:
    """torch.save atomically (through a file object, so a full disk is reported as one)."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as out:
            torch.save(payload, out)

    atomic_write_with(path, write)


def checkpoint_stem(spec: str) -> str:
    """The file-name stem of a spec's checkpoints (`g1:c1=4` -> `g1_c1-4`)."""
    return spec.replace(":", "_").replace("=", "-").replace(",", "_").replace("/", "_")


def checkpoint_paths(run_dir: Path, spec: str) -> tuple[Path, Path]:
    """The best checkpoint and its class_indices.json in a run folder."""
    stem = checkpoint_stem(spec)
    return run_dir / f"{stem}.pt", run_dir / f"{stem}.class_indices.json"


def check_state_dict(where: str, state: Any) -> dict[str, torch.Tensor]:
    """`state` if it maps names to tensors, else BenchError naming what is wrong."""
    if not isinstance(state, dict) or not state:
        raise BenchError(f"{where}: expected a non-empty state dict of tensors")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise BenchError(f"{where}: entry {str(key)[:60]!r} is not a named tensor")
    return state


def load_matching_weights(model: nn.Module, path: Path) -> dict[str, list[str]]:
    """Copy the tensors whose names and shapes match; report skipped and missing names."""
    state = read_torch_file(path, "weights:")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    state = check_state_dict(f"weights: {path}", state)
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(keep, strict=False)
    return {
        "loaded": sorted(keep),
        "skipped": sorted(k for k in state if k not in keep),
        "missing": sorted(k for k in own if k not in keep),
    }


def classifier_of(model: nn.Module) -> nn.Linear:
    """The network's last nn.Linear layer (the classifier head)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise BenchError(f"{type(model).__name__} has no nn.Linear classifier to fine-tune")
    return linears[-1]


def autocast_for(options: TrainOptions, device: str) -> Any:
    """The autocast context for the chosen mixed precision (a no-op for `none`)."""
    if options.amp == "none":
        return torch.autocast(device_type=device.split(":")[0], enabled=False)
    dtype = torch.bfloat16 if options.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


def predict_probs(
    model: nn.Module,
    x: torch.Tensor,
    tta_flip: bool,
    options: TrainOptions | None = None,
    device: str = "cpu",
) -> torch.Tensor:
    """Softmax probabilities, averaged with the mirrored image when tta_flip."""
    ctx = autocast_for(options, device) if options else torch.autocast("cpu", enabled=False)
    with ctx:
        probs = model(x).float().softmax(1)
        if tta_flip:
            probs = (probs + model(x.flip(3)).float().softmax(1)) / 2
    return probs


def save_checkpoint(
    paths: tuple[Path, Path],
    model: nn.Module,
    classes: tuple[str, ...],
    opts: TrainOptions,
    spec: str,
    record: dict,
) -> None:
    """Write the checkpoint and class_indices.json atomically."""
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": list(classes),
        "spec": spec,
        "eval": {
            "image_size": opts.image_size,
            "resize": eval_resize(opts),
            "mean": list(imgdata.IMAGENET_MEAN),
            "std": list(imgdata.IMAGENET_STD),
            "tta_flip": opts.tta_flip,
        },
        "epoch": record["epoch"],
        "val_top1": record["val_top1"],
    }
    save_torch(paths[0], payload)
    text = json.dumps({str(i): c for i, c in enumerate(classes)}, indent=2)
    atomic_write_text(paths[1], text + "\n")


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the model of a saved checkpoint; returns (model in eval mode, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"checkpoint {str(path)!r} does not exist")
    payload = read_torch_file(path, "checkpoint")
    meta = check_checkpoint_meta(f"checkpoint {path}", payload)
    state = check_state_dict(f"checkpoint {path}: state_dict", payload["state_dict"])
    model = build_model(meta["spec"], num_classes=len(meta["classes"]))
    check_fits(f"checkpoint {path}", model, state, len(meta["classes"]))
    model.load_state_dict(state)
    return model.eval(), meta


def check_checkpoint_meta(where: str, payload: Any) -> dict:
    """The metadata of a fine-tune checkpoint (all but the weights), checked field by field."""
    if not isinstance(payload, dict) or any(k not in payload for k in CHECKPOINT_KEYS):
        needs = ", ".join(CHECKPOINT_KEYS)
        raise BenchError(f"{where}: not a bench fine-tune checkpoint (it needs {needs})")
    classes, spec, ev = payload["classes"], payload["spec"], payload["eval"]
    if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_CLASSES:
        raise BenchError(f"{where}: classes: expected a list of 2 to {MAX_CLASSES} names")
    if not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes):
        raise BenchError(f"{where}: classes: expected distinct, non-empty names")
    if not isinstance(spec, str) or not spec.strip():
        raise BenchError(f"{where}: spec: expected a model spec string")
    check_eval_meta(where, ev)
    return {k: v for k, v in payload.items() if k != "state_dict"}


def check_eval_meta(where: str, ev: Any) -> None:
    """The eval transform of a checkpoint: sizes in range, 3 finite means, 3 positive stds."""
    if not isinstance(ev, dict):
        raise BenchError(f"{where}: eval: expected a mapping")
    size, resize = ev.get("image_size"), ev.get("resize")
    if not _int_in(size, 1, MAX_IMAGE_SIZE) or not _int_in(resize, size, 2 * MAX_IMAGE_SIZE):
        raise BenchError(
            f"{where}: eval: image_size {size!r} / resize {resize!r}; expected "
            f"1 <= image_size <= resize <= {2 * MAX_IMAGE_SIZE}"
        )
    for key, low in (("mean", -math.inf), ("std", 0.0)):
        values = ev.get(key)
        ok = isinstance(values, list | tuple) and len(values) == 3
        if not ok or not all(_number_above(v, low) for v in values):
            raise BenchError(f"{where}: eval.{key}: {values!r}; expected 3 finite numbers")
    if not isinstance(ev.get("tta_flip", False), bool):
        raise BenchError(f"{where}: eval.tta_flip: expected true or false")


def _int_in(value: Any, low: Any, high: int) -> bool:
    """Whether value is an int in [low, high] (False when low is not an int)."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (value, low))
    return ints and low <= value <= high


def _number_above(value: Any, low: float) -> bool:
    """Whether value is a finite real number above `low`."""
    real = isinstance(value, int | float) and not isinstance(value, bool)
    return real and math.isfinite(value) and value > low


def check_fits(where: str, model: nn.Module, state: dict[str, torch.Tensor], classes: int) -> None:
    """BenchError unless the state dict has exactly the model's names and shapes."""
    own = model.state_dict()
    heads = [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and name]
    rows = state.get(f"{heads[-1]}.weight") if heads else None
    if rows is not None and rows.ndim == 2 and rows.shape[0] != classes:
        raise BenchError(
            f"{where}: its head ({heads[-1]}) has {rows.shape[0]} outputs "
            f"but it lists {classes} classes"
        )
    for key, value in own.items():
        if key not in state:
            raise BenchError(f"{where}: state_dict lacks {key!r} of {model.spec}")
        if tuple(state[key].shape) != tuple(value.shape):
            raise BenchError(
                f"{where}: {key} has shape {tuple(state[key].shape)}, "
                f"{model.spec} expects {tuple(value.shape)}"
            )
    extra = [key for key in state if key not in own]
    if extra:
        raise BenchError(f"{where}: state_dict holds {extra[0]!r}, unknown to {model.spec}")


def predict_images(model: nn.Module, meta: dict, images: list[Path]) -> list[dict[str, Any]]:
    """Class probabilities for each readable image file, using the checkpoint's eval transform.

    Unreadable files are skipped with one warning that counts them (as training does); none
    readable at all is a BenchError.
    """
    ev = meta["eval"]
    results, skipped = [], []
    for path in images:
        img = imgdata.load_image(path, ev["resize"])
        if img is None:
            skipped.append(path)
            continue
        x = imgdata.eval_batch(img[None], ev["image_size"], ev["resize"])
        with torch.no_grad():
            probs = predict_probs(model, x, bool(ev.get("tta_flip")))[0]
        best = int(probs.argmax())
        results.append(
            {
                "image": str(path),
                "class": meta["classes"][best],
                "prob": round(float(probs[best]), 6),
                "probs": {
                    c: round(float(p), 6) for c, p in zip(meta["classes"], probs, strict=True)
                },
            }
        )
    _report_skipped(skipped, len(images))
    return results


def _report_skipped(skipped: list[Path], total: int) -> None:
    """Warn about the unreadable files (BenchError when every file was unreadable)."""
    if not skipped:
        return
    if len(skipped) == total:
        raise BenchError(f"none of the {total} file(s) is a readable image (e.g. {skipped[0]})")
    warnings.warn(
        f"skipped {len(skipped)} unreadable or non-image file(s) of {total} (e.g. {skipped[0]})",
        stacklevel=3,
    )
