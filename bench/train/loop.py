"""The fine-tune loop: optimizer and schedule, epochs within a time budget, DDP under torchrun."""

from __future__ import annotations

import logging
import math
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from bench.core.errors import BenchError
from bench.core.models import build_model as build_network
from bench.core.options import fixed_threads, resolve_device
from bench.train import data as imgdata
from bench.train.checkpoints import (
    autocast_for,
    checkpoint_paths,
    classifier_of,
    load_matching_weights,
    predict_probs,
    save_checkpoint,
    torchvision_weights_file,
)
from bench.train.data import Prepared, prepare_data
from bench.train.distributed import (
    all_sum,
    from_rank0,
    init_distributed,
    is_main_process,
    rank,
    stop_for_budget,
    world_size,
)
from bench.train.options import TrainOptions, eval_resize, size_at
from bench.train.state import (
    load_train_state,
    restore_rng_states,
    save_train_state,
    train_state_path,
    training_fingerprint,
)

log = logging.getLogger("bench.train")


@dataclass
class FinetuneOutcome:
    """What one fine-tune produced: the result-row columns and one dict per epoch."""

    row: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)


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


def freeze_backbone(model: nn.Module) -> None:
    """Leave only the classifier trainable."""
    for p in model.parameters():
        p.requires_grad_(False)
    for p in classifier_of(model).parameters():
        p.requires_grad_(True)


def build_finetune_model(
    spec: str, num_classes: int, options: TrainOptions
) -> tuple[nn.Module, dict]:
    """Build the network with a new head, load weights if asked, apply freeze."""
    model = build_network(spec, num_classes=num_classes)
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
            elapsed = from_rank0(time.perf_counter() - self.started, self.distributed)
            done = max(done, elapsed / opts.time_budget_s)
        return min(1.0, done)


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
    with autocast_for(loop.options, loop.device):
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


def finetune(
    spec: str,
    options: TrainOptions,
    run_dir: Path,
    device: str = "cpu",
    data: str | None = None,
    keep_state: bool = False,
) -> FinetuneOutcome:
    """Train spec on an image folder; keep the best validation checkpoint in run_dir.

    A fine-tune killed mid-training continues from its last-epoch state in run_dir. The state is
    deleted when training ends, unless `keep_state` (the runner deletes it once the row is saved).
    """
    source = data or options.data
    if not source:
        raise BenchError("train.data: no data given (set train.data or pass --data)")
    device = resolve_device(device or options.device)
    with fixed_threads(options.threads):
        return _finetune(spec, options, Path(run_dir), device, str(source), keep_state)


def _finetune(
    spec: str, options: TrainOptions, run_dir: Path, device: str, source: str, keep_state: bool
) -> FinetuneOutcome:
    """The body of finetune once device, threads and data source are settled."""
    distributed = init_distributed(device)
    seed_everything(options.seed)
    prepared = prepare_data(source, options)
    model, weights_report = build_finetune_model(spec, len(prepared.classes), options)
    loop = _make_loop(model, options, prepared, device, distributed)
    writer = _tensorboard(options.tensorboard)
    paths = checkpoint_paths(run_dir, spec)
    sizes = (len(prepared.train_labels), len(prepared.val_labels), world_size())
    fingerprint = training_fingerprint(spec, options, prepared.classes, sizes)
    resume = Resume(train_state_path(run_dir, spec), fingerprint)
    epochs, train_seconds = _run_epochs(loop, spec, paths, writer, resume)
    if writer is not None:
        writer.close()
    if not keep_state and is_main_process():
        resume.path.unlink(missing_ok=True)
    row = _summary_row(loop, epochs, train_seconds, paths, weights_report)
    return FinetuneOutcome(row=row, epochs=epochs)


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


@dataclass(frozen=True)
class Resume:
    """Where a fine-tune keeps its last-epoch state, and what that state must match."""

    path: Path
    fingerprint: dict[str, Any]


def _resume(loop: Loop, resume: Resume) -> tuple[list[dict], float, float, bool]:
    """Restore a saved state into the loop: (epochs, best val_top1, seconds, finished)."""
    state = load_train_state(resume.path, resume.fingerprint)
    if state is None:
        return [], -1.0, 0.0, False
    loop.model.load_state_dict(state["model"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scaler.load_state_dict(state["scaler"])
    loop.step = int(state["step"])
    restore_rng_states(state["rng"])
    log.info("resuming from %s after epoch %d", resume.path, len(state["epochs"]))
    return list(state["epochs"]), float(state["best"]), float(state["seconds"]), state["finished"]


def _save_state(
    loop: Loop, resume: Resume, epochs: list[dict], best: float, finished: bool
) -> None:
    """Write the last-epoch training state (rank 0 only)."""
    if not is_main_process():
        return
    state = {
        "model": {k: v.detach().cpu() for k, v in loop.model.state_dict().items()},
        "optimizer": loop.optimizer.state_dict(),
        "scaler": loop.scaler.state_dict(),
        "step": loop.step,
        "epochs": epochs,
        "best": best,
        "seconds": time.perf_counter() - loop.started,
        "finished": finished,
        "fingerprint": resume.fingerprint,
    }
    save_train_state(resume.path, state)


def _run_epochs(
    loop: Loop, spec: str, paths: tuple[Path, Path], writer: Any, resume: Resume
) -> tuple[list[dict], float]:
    """Train epoch by epoch until done or the time budget is spent; save the best epoch.

    After every epoch the training state is saved, and a saved state is continued from: a
    killed fine-tune loses at most the epoch it was in, and the best checkpoint is only ever
    replaced by a better epoch.
    """
    opts = loop.options
    epochs, best, seconds, finished = _resume(loop, resume)
    started = loop.started = time.perf_counter() - seconds
    for epoch in range(len(epochs), 0 if finished else opts.epochs):
        record = _one_epoch(loop, epoch)
        record["elapsed_s"] = round(time.perf_counter() - started, 3)
        epochs.append(record)
        if record["val_top1"] > best:
            best = record["val_top1"]
            if is_main_process():
                save_checkpoint(paths, loop.model, loop.data.classes, loop.options, spec, record)
        _log_epoch(writer, record)
        log.info("%s epoch %d: %s", spec, epoch + 1, record)
        stop = bool(opts.time_budget_s) and stop_for_budget(
            record["elapsed_s"], opts.time_budget_s, loop.distributed
        )
        _save_state(loop, resume, epochs, best, stop or epoch + 1 == opts.epochs)
        if stop:
            break
    return epochs, time.perf_counter() - started


def _one_epoch(loop: Loop, epoch: int) -> dict:
    """Train and validate once; metrics are summed over processes."""
    size = size_at(loop.progress(), loop.options)
    lr = current_lr(loop)
    t0 = time.perf_counter()
    loss_sum, seen = train_epoch(loop, epoch, size)
    train_s = time.perf_counter() - t0
    correct, total = evaluate(loop)
    epoch_s = time.perf_counter() - t0
    loss_sum, seen, correct, total = all_sum([loss_sum, seen, correct, total], loop.distributed)
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
