"""The machine a measurement ran on, and a quick calibration of what it can attain.

`collect_env()` is JSON-ready and is stored with every run. Calibration runs in the calling
process: best-of-N fp32 GEMM FLOP/s, best-of-N tensor-copy bandwidth (bytes read + written per
second) and the median latency of a fixed small conv stack (`reference_net`) timed with
`measure_latency` at batch 1 (one thread on CPU), the number `compare` uses to normalise latency
across machines.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import torch
from torch import nn

from bench.core.options import resolve_device
from bench.core.paths import REPO_ROOT
from bench.measure.timing import measure_latency

GEMM_SIZE = {"cpu": 1024, "cuda": 8192}
COPY_BYTES = {"cpu": 64 * 2**20, "cuda": 1024 * 2**20}
CALIBRATION_REPEATS = 3
REF_WORKLOAD = "ref_convstack_v1: 3x64x64 input, 4x (3x3 conv 32ch + BN + ReLU), pool, fc10"
REF_BUDGET_S = 1.5
REF_THREADS = {"cpu": 1, "cuda": None}  # one CPU thread: steady on shared machines, comparable


def reference_net() -> nn.Sequential:
    """The fixed reference workload: a small conv stack on a 3x64x64 input (batch 1)."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    channels = 3
    for _ in range(4):
        layers += [nn.Conv2d(channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)]
        layers.append(nn.ReLU(inplace=True))
        channels = 32
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)]
    return nn.Sequential(*layers)


def best_seconds(run: Callable[[], object], device: str, repeats: int) -> float:
    """Fastest of `repeats` timed calls (after one untimed call), synchronised on CUDA."""
    run()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def gemm_flops_per_s(device: str, repeats: int = CALIBRATION_REPEATS) -> float:
    """Attainable fp32 matmul throughput: 2*n^3 FLOPs over the best time of an n x n GEMM."""
    n = GEMM_SIZE[device]
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    return 2.0 * n**3 / best_seconds(lambda: torch.mm(a, b), device, repeats)


def copy_bytes_per_s(device: str, repeats: int = CALIBRATION_REPEATS) -> float:
    """Attainable memory bandwidth: bytes read plus written by a large tensor copy per second."""
    count = COPY_BYTES[device] // 4
    src = torch.randn(count, device=device)
    dst = torch.empty_like(src)
    return 2.0 * src.numel() * 4 / best_seconds(lambda: dst.copy_(src), device, repeats)


def run_calibration(device: str = "cpu") -> dict:
    """GEMM FLOP/s, copy bandwidth and the reference workload's median latency on `device`."""
    latency = measure_latency(
        reference_net(),
        input_shape=(3, 64, 64),
        device=device,
        threads=REF_THREADS[device],
        budget_s=REF_BUDGET_S,
    )
    return {
        "device": device,
        "gemm_flops_per_s": gemm_flops_per_s(device),
        "copy_bytes_per_s": copy_bytes_per_s(device),
        "ref_workload": REF_WORKLOAD,
        "ref_workload_ms": latency.median_ms,
        "ref_workload_threads": latency.threads,
        "ref_workload_stop_reason": latency.stop_reason,
    }


def installed_version(distribution: str) -> str | None:
    """A package's installed version from its metadata, without importing it (None if absent)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_env(calibrate: bool = True, device: str = "cpu") -> dict:
    """Versions, hardware, git state and (optionally) a calibration of `device`; JSON-ready."""
    device = resolve_device(device)
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": installed_version("torchvision"),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_logical": psutil.cpu_count(logical=True),
        "threads": torch.get_num_threads(),
        **cuda_info(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "hostname": socket.gethostname(),
        "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    env["calibration"] = run_calibration(device) if calibrate else None
    return env


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo, else platform.processor(), else 'unknown'."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cuda_info() -> dict:
    """CUDA availability, GPU name, driver, CUDA and cuDNN versions (None where absent)."""
    available = torch.cuda.is_available()
    cudnn = torch.backends.cudnn.version() if available else None
    return {
        "cuda_available": available,
        "gpu_name": torch.cuda.get_device_name(0) if available else None,
        "gpu_driver": gpu_driver(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": cudnn,
    }


def gpu_driver() -> str | None:
    """NVIDIA driver version from nvidia-smi; None when the tool is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    output = _run([exe, "--query-gpu=driver_version", "--format=csv,noheader"])
    return output.splitlines()[0].strip() if output else None


def git_commit() -> str:
    """The repository's HEAD commit (full hash), or 'unknown' outside a git checkout."""
    return _run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"]) or "unknown"


def git_dirty() -> bool | None:
    """True when the work tree has uncommitted changes; None when git is unavailable."""
    output = _run(["git", "-C", str(REPO_ROOT), "status", "--porcelain"], allow_empty=True)
    return None if output is None else bool(output.strip())


def _run(argv: list[str], allow_empty: bool = False) -> str | None:
    """stdout of a command run without a shell; None on any failure (or empty output)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 or (not done.stdout.strip() and not allow_empty):
        return None
    return done.stdout.strip()


def _sync(device: str) -> None:
    """Wait for queued device work (no-op on CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()
