"""Data-parallel training under torchrun: process group, rank, and numbers shared by all ranks."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


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


def all_sum(values: list[float], distributed: bool) -> list[float]:
    """Sum a few numbers across processes (identity when not distributed)."""
    if not distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def from_rank0(value: float, distributed: bool) -> float:
    """Rank 0's value of a number on every rank (so all ranks take the same decisions)."""
    if not distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def stop_for_budget(elapsed: float, budget: float, distributed: bool) -> bool:
    """All ranks stop together once rank 0's elapsed time exceeds the budget."""
    return from_rank0(elapsed, distributed) >= budget
