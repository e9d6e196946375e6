"""Weights in and out of a fine-tune: torchvision or file weights, checkpoints, prediction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.core.errors import BenchError
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


def load_matching_weights(model: nn.Module, path: Path) -> dict[str, list[str]]:
    """Copy the tensors whose names and shapes match; report skipped and missing names."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise BenchError(f"weights: cannot read {path} ({exc})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    own = model.state_dict()
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(keep, strict=False)
    return {
        "loaded": sorted(keep),
        "skipped": sorted(k for k in state if k not in keep),
        "missing": sorted(k for k in own if k not in keep),
    }


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
    atomic_write_with(paths[0], lambda tmp: torch.save(payload, tmp))
    text = json.dumps({str(i): c for i, c in enumerate(classes)}, indent=2)
    atomic_write_text(paths[1], text + "\n")


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the model of a saved checkpoint; returns (model in eval mode, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(payload["spec"], num_classes=len(payload["classes"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, EOFError, OSError) as exc:
        raise BenchError(f"checkpoint {path}: not a bench fine-tune checkpoint ({exc})") from None
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.eval(), meta


def predict_images(model: nn.Module, meta: dict, images: list[Path]) -> list[dict[str, Any]]:
    """Class probabilities for each image file, using the checkpoint's eval transform."""
    ev = meta["eval"]
    results = []
    for path in images:
        img = imgdata.load_image(path, ev["resize"])
        if img is None:
            raise BenchError(f"{path}: not a readable image")
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
    return results
