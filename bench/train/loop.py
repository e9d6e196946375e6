"""Fine-tunes on image folders: options, the training loop, checkpoints and prediction."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from bench import data as imgdata
from bench.errors import BenchError

log = logging.getLogger("bench.train")

CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("cosine", "onecycle", "none"),
    "freeze": ("none", "backbone"),
    "amp": ("none", "bf16", "fp16"),
    "device": ("cpu", "cuda", "auto"),
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


@dataclass
class FinetuneOutcome:
    """What one fine-tune produced: the result-row columns and one dict per epoch."""

    row: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)


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


# ----------------------------------------------------------------------------- distributed


def world_size() -> int:
    """Number of processes in the data-parallel job (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0 (the only process that writes files)."""
    return rank() == 0


def init_distributed(device: str) -> bool:
    """Join the process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    if world_size() <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return True


def _all_sum(values: list[float], distributed: bool) -> list[float]:
    """Sum a few numbers across processes (identity when not distributed)."""
    if not distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


# ----------------------------------------------------------------------------- setup


def seed_everything(seed: int) -> None:
    """Seed Python, torch and cuDNN for reproducible CPU runs."""
    random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False


def lr_factor(progress: float, schedule: str, lrf: float, warmup: float) -> float:
    """LR multiplier at a progress in [0, 1]: linear warmup (onecycle), then cosine down to lrf."""
    if schedule == "none":
        return 1.0
    warm = warmup if schedule == "onecycle" else 0.0
    if progress < warm:
        return 0.04 + 0.96 * progress / warm
    rest = (progress - warm) / max(1e-12, 1.0 - warm)
    return lrf + (1 - lrf) * 0.5 * (1 + math.cos(math.pi * min(1.0, rest)))


def build_optimizer(model: nn.Module, options: TrainOptions) -> torch.optim.Optimizer:
    """Adam/AdamW/SGD(momentum 0.9); no weight decay on biases and norm parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": options.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if options.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=options.lr, momentum=0.9, nesterov=True)
    cls = torch.optim.AdamW if options.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=options.lr)


def classifier_of(model: nn.Module) -> nn.Linear:
    """The network's last nn.Linear layer (the classifier head)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise BenchError(f"{type(model).__name__} has no nn.Linear classifier to fine-tune")
    return linears[-1]


def freeze_backbone(model: nn.Module) -> None:
    """Leave only the classifier trainable."""
    for p in model.parameters():
        p.requires_grad_(False)
    for p in classifier_of(model).parameters():
        p.requires_grad_(True)


# ----------------------------------------------------------------------------- weights


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


def build_model(spec: str, num_classes: int, options: TrainOptions) -> tuple[nn.Module, dict]:
    """Build the network with a new head, load weights if asked, apply freeze."""
    from netdefs import get_model

    try:
        model = get_model(spec, num_classes=num_classes)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    report: dict = {}
    if options.weights != "none":
        path = torchvision_weights_file(spec) if options.weights == "torchvision" else None
        path = path or Path(options.weights).expanduser()
        if not path.is_file():
            raise BenchError(f"weights: file {str(path)!r} does not exist")
        report = load_matching_weights(model, path)
        msg = f"weights {path.name}: loaded {len(report['loaded'])} tensors, skipped "
        warnings.warn(msg + f"{report['skipped']}, missing {report['missing']}", stacklevel=2)
    if options.freeze == "backbone":
        freeze_backbone(model)
    return model, report


# ----------------------------------------------------------------------------- data


@dataclass
class Prepared:
    """The decoded training and validation images, ready to index."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    classes: tuple[str, ...]
    skipped: int
    root: Path


def prepare_data(source: str, options: TrainOptions) -> Prepared:
    """Find the image folder, decode every image once, split train/val (stratified, seeded)."""
    root = imgdata.resolve_data_root(source)
    store = max((options.image_size, *options.progressive))
    if imgdata.is_presplit(root):
        train = imgdata.decode_folder(imgdata.scan_classes(root / "train"), store, options.workers)
        val = imgdata.decode_folder(imgdata.scan_classes(root / "val"), store, options.workers)
        if val.classes != train.classes:
            raise BenchError(f"{root}: train/ and val/ hold different class folders")
        return Prepared(
            train.images,
            train.labels,
            val.images,
            val.labels,
            train.classes,
            train.skipped + val.skipped,
            root,
        )
    full = imgdata.decode_folder(imgdata.scan_classes(root), store, options.workers)
    tr, va = imgdata.stratified_split(full.labels, options.val_fraction, options.split_seed)
    return Prepared(
        full.images[tr],
        full.labels[tr],
        full.images[va],
        full.labels[va],
        full.classes,
        full.skipped,
        root,
    )


def size_at(progress: float, options: TrainOptions) -> int:
    """Training image size at a progress in [0, 1]: progressive sizes in equal phases."""
    if not options.progressive:
        return options.image_size
    phase = min(len(options.progressive) - 1, int(progress * len(options.progressive) + 1e-9))
    return options.progressive[phase]


def eval_resize(options: TrainOptions) -> int:
    """The resize before the centre crop at evaluation."""
    return round(options.image_size / options.eval_crop)


# ----------------------------------------------------------------------------- loop


@dataclass
class Loop:
    """Everything one training loop needs to carry between epochs."""

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    options: TrainOptions
    data: Prepared
    device: str
    distributed: bool
    steps_per_epoch: int
    total_steps: int
    step: int = 0
    started: float = field(default_factory=time.perf_counter)
    scaler: Any = None

    def progress(self) -> float:
        """Fraction of training done: steps, or elapsed/budget when the budget drives it."""
        done = self.step / max(1, self.total_steps)
        opts = self.options
        if opts.budget_schedule and opts.time_budget_s:
            elapsed = _from_rank0(time.perf_counter() - self.started, self.distributed)
            done = max(done, elapsed / opts.time_budget_s)
        return min(1.0, done)


def _autocast(options: TrainOptions, device: str) -> Any:
    """The autocast context for the chosen mixed precision (a no-op for `none`)."""
    if options.amp == "none":
        return torch.autocast(device_type=device.split(":")[0], enabled=False)
    dtype = torch.bfloat16 if options.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


def _to_device(x: torch.Tensor, loop: Loop) -> torch.Tensor:
    """Move a batch to the device (channels_last when asked)."""
    fmt = torch.channels_last if loop.options.channels_last else torch.contiguous_format
    return x.to(loop.device, memory_format=fmt, non_blocking=True)


def epoch_order(loop: Loop, epoch: int) -> torch.Tensor:
    """This rank's seeded, shuffled share of the training indices for an epoch."""
    sampler = DistributedSampler(
        range(len(loop.data.train_labels)),
        num_replicas=world_size(),
        rank=rank(),
        shuffle=True,
        seed=loop.options.seed,
        drop_last=True,
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler))


def train_epoch(loop: Loop, epoch: int, size: int) -> tuple[float, int]:
    """One pass over this rank's shard of the training set; returns (loss sum, images)."""
    opts = loop.options
    order = epoch_order(loop, epoch)
    gen = torch.Generator().manual_seed(opts.seed * 100_003 + epoch * 101 + rank())
    criterion = nn.CrossEntropyLoss(label_smoothing=opts.label_smoothing)
    loop.net.train()
    loss_sum, seen = 0.0, 0
    for start in range(0, len(order) - opts.batch + 1, opts.batch):
        if opts.budget_schedule and loop.progress() >= 1.0:
            break
        idx = order[start : start + opts.batch]
        x = imgdata.augment_batch(loop.data.train_images[idx], size, (opts.min_scale, 1.0), gen)
        loss_sum += _train_step(loop, x, loop.data.train_labels[idx], criterion) * len(idx)
        seen += len(idx)
    return loss_sum, seen


def _train_step(loop: Loop, x: torch.Tensor, y: torch.Tensor, criterion: nn.Module) -> float:
    """One optimizer step on a batch at the scheduled learning rate; returns the loss."""
    _set_lr(loop)
    with _autocast(loop.options, loop.device):
        loss = criterion(loop.net(_to_device(x, loop)), y.to(loop.device))
    loop.optimizer.zero_grad(set_to_none=True)
    loop.scaler.scale(loss).backward()
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    loop.step += 1
    return float(loss.detach())


def current_lr(loop: Loop) -> float:
    """The schedule's learning rate at the loop's current progress."""
    opts = loop.options
    return opts.lr * lr_factor(loop.progress(), opts.schedule, opts.lrf, opts.warmup)


def _set_lr(loop: Loop) -> None:
    """Apply the schedule's learning rate for the current step."""
    lr = current_lr(loop)
    for group in loop.optimizer.param_groups:
        group["lr"] = lr


@torch.no_grad()
def evaluate(loop: Loop) -> tuple[int, int]:
    """Count correct top-1 predictions on this rank's share of the validation set."""
    opts = loop.options
    loop.model.eval()
    idx_all = torch.arange(rank(), len(loop.data.val_labels), world_size())
    correct = 0
    for start in range(0, len(idx_all), 128):
        idx = idx_all[start : start + 128]
        x = imgdata.eval_batch(loop.data.val_images[idx], opts.image_size, eval_resize(opts))
        probs = predict_probs(loop.model, _to_device(x, loop), opts.tta_flip, opts, loop.device)
        correct += int((probs.argmax(1).cpu() == loop.data.val_labels[idx]).sum())
    return correct, len(idx_all)


def predict_probs(
    model: nn.Module,
    x: torch.Tensor,
    tta_flip: bool,
    options: TrainOptions | None = None,
    device: str = "cpu",
) -> torch.Tensor:
    """Softmax probabilities, averaged with the mirrored image when tta_flip."""
    ctx = _autocast(options, device) if options else torch.autocast("cpu", enabled=False)
    with ctx:
        probs = model(x).float().softmax(1)
        if tta_flip:
            probs = (probs + model(x.flip(3)).float().softmax(1)) / 2
    return probs


# ----------------------------------------------------------------------------- finetune


def finetune(
    spec: str, options: TrainOptions, run_dir: Path, device: str = "cpu", data: str | None = None
) -> FinetuneOutcome:
    """Train spec on an image folder; keep the best validation checkpoint in run_dir."""
    source = data or options.data
    if not source:
        raise BenchError("train.data: no data given (set train.data or pass --data)")
    device = _resolve(device or options.device)
    previous_threads = torch.get_num_threads()
    if options.threads:
        torch.set_num_threads(options.threads)
    try:
        return _finetune(spec, options, Path(run_dir), device, str(source))
    finally:
        torch.set_num_threads(previous_threads)


def _finetune(
    spec: str, options: TrainOptions, run_dir: Path, device: str, source: str
) -> FinetuneOutcome:
    """The body of finetune once device, threads and data source are settled."""
    distributed = init_distributed(device)
    seed_everything(options.seed)
    prepared = prepare_data(source, options)
    model, weights_report = build_model(spec, len(prepared.classes), options)
    loop = _make_loop(model, options, prepared, device, distributed)
    writer = _tensorboard(options.tensorboard)
    slug = spec.replace(":", "_").replace("=", "-").replace(",", "_")
    paths = (run_dir / f"{slug}.pt", run_dir / f"{slug}.class_indices.json")
    epochs, train_seconds = _run_epochs(loop, spec, paths, writer)
    if writer is not None:
        writer.close()
    row = _summary_row(loop, epochs, train_seconds, paths, weights_report)
    return FinetuneOutcome(row=row, epochs=epochs)


def _resolve(device: str) -> str:
    """Map auto/cpu/cuda to a usable device string."""
    from bench.timing import resolve_device

    return resolve_device(device)


def _make_loop(
    model: nn.Module, options: TrainOptions, prepared: Prepared, device: str, distributed: bool
) -> Loop:
    """Move the model, wrap it for DDP when distributed, and build the optimizer."""
    fmt = torch.channels_last if options.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=fmt)
    net: nn.Module = model
    if distributed:
        ids = [torch.device(device).index] if device.startswith("cuda") else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    per_rank = len(prepared.train_labels) // world_size()
    steps = max(1, per_rank // options.batch)
    if per_rank < options.batch:
        raise BenchError(
            f"train.batch: {options.batch} exceeds the {per_rank} training images "
            "per process; use a smaller batch"
        )
    return Loop(
        model,
        net,
        build_optimizer(model, options),
        options,
        prepared,
        device,
        distributed,
        steps,
        steps * options.epochs,
        scaler=torch.amp.GradScaler(device.split(":")[0], enabled=options.amp == "fp16"),
    )


def _run_epochs(
    loop: Loop, spec: str, paths: tuple[Path, Path], writer: Any
) -> tuple[list[dict], float]:
    """Train epoch by epoch until done or the time budget is spent; save the best epoch."""
    opts = loop.options
    epochs: list[dict] = []
    best = -1.0
    started = loop.started = time.perf_counter()
    for epoch in range(opts.epochs):
        record = _one_epoch(loop, epoch)
        record["elapsed_s"] = round(time.perf_counter() - started, 3)
        epochs.append(record)
        if record["val_top1"] > best:
            best = record["val_top1"]
            if is_main_process():
                save_checkpoint(paths, loop, spec, record)
        _log_epoch(writer, record)
        log.info("%s epoch %d: %s", spec, epoch + 1, record)
        if opts.time_budget_s and _stop_for_budget(
            record["elapsed_s"], opts.time_budget_s, loop.distributed
        ):
            break
    return epochs, time.perf_counter() - started


def _from_rank0(value: float, distributed: bool) -> float:
    """Rank 0's value of a number on every rank (so all ranks take the same decisions)."""
    if not distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def _stop_for_budget(elapsed: float, budget: float, distributed: bool) -> bool:
    """All ranks stop together once rank 0's elapsed time exceeds the budget."""
    return _from_rank0(elapsed, distributed) >= budget


def _one_epoch(loop: Loop, epoch: int) -> dict:
    """Train and validate once; metrics are summed over processes."""
    size = size_at(loop.progress(), loop.options)
    lr = current_lr(loop)
    t0 = time.perf_counter()
    loss_sum, seen = train_epoch(loop, epoch, size)
    train_s = time.perf_counter() - t0
    correct, total = evaluate(loop)
    epoch_s = time.perf_counter() - t0
    loss_sum, seen, correct, total = _all_sum([loss_sum, seen, correct, total], loop.distributed)
    return {
        "epoch": epoch + 1,
        "train_loss": round(loss_sum / max(1, seen), 5),
        "val_top1": round(100.0 * correct / max(1, total), 3),
        "lr": lr,
        "epoch_seconds": round(epoch_s, 3),
        "train_images_per_s": round(seen / train_s, 2) if train_s > 0 else 0.0,
        "image_size": size,
    }


def _summary_row(
    loop: Loop, epochs: list[dict], seconds: float, paths: tuple[Path, Path], report: dict
) -> dict:
    """The result-row columns of a fine-tune."""
    images = sum(e["train_images_per_s"] * e["epoch_seconds"] for e in epochs)
    best = max(epochs, key=lambda e: e["val_top1"])
    opts = loop.options
    return {
        "best_val_acc": best["val_top1"],
        "best_epoch": best["epoch"],
        "final_val_acc": epochs[-1]["val_top1"],
        "train_seconds": round(seconds, 3),
        "epochs": len(epochs),
        "epochs_planned": opts.epochs,
        "stopped_by_budget": len(epochs) < opts.epochs,
        "time_budget_s": opts.time_budget_s,
        "images_per_s_train": round(sum(e["train_images_per_s"] for e in epochs) / len(epochs), 2),
        "train_images_seen": int(images),
        "checkpoint": str(paths[0]),
        "class_indices": str(paths[1]),
        "classes": ",".join(loop.data.classes),
        "n_train": len(loop.data.train_labels),
        "n_val": len(loop.data.val_labels),
        "skipped_files": loop.data.skipped,
        "world_size": world_size(),
        "weights_loaded": len(report.get("loaded", [])),
    }


# ----------------------------------------------------------------------------- logging


def _tensorboard(logdir: str | None) -> Any:
    """A SummaryWriter on rank 0 when asked and installed; else one warning and None."""
    if not logdir or not is_main_process():
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "tensorboard is not installed; per-epoch TensorBoard logs are off", stacklevel=2
        )
        return None
    return SummaryWriter(log_dir=logdir)


def _log_epoch(writer: Any, record: dict) -> None:
    """Write one epoch's loss, accuracy and learning rate to TensorBoard."""
    if writer is None:
        return
    writer.add_scalar("train/loss", record["train_loss"], record["epoch"])
    writer.add_scalar("val/top1", record["val_top1"], record["epoch"])
    writer.add_scalar("train/lr", record["lr"], record["epoch"])


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(paths: tuple[Path, Path], loop: Loop, spec: str, record: dict) -> None:
    """Write the checkpoint and class_indices.json atomically."""
    opts = loop.options
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in loop.model.state_dict().items()},
        "classes": list(loop.data.classes),
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
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    _atomic(paths[0], lambda tmp: torch.save(payload, tmp))
    text = json.dumps({str(i): c for i, c in enumerate(loop.data.classes)}, indent=2)
    _atomic(paths[1], lambda tmp: tmp.write_text(text + "\n"))


def _atomic(path: Path, write: Any) -> None:
    """Write through a temporary file and os.replace."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the model of a saved checkpoint; returns (model in eval mode, metadata)."""
    from netdefs import get_model

    path = Path(path)
    if not path.is_file():
        raise BenchError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = get_model(payload["spec"], num_classes=len(payload["classes"]))
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
