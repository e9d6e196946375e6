"""The named choices every layer shares (devices, modes, dtypes, ...), as plain-string enums.

Torch-free on purpose: the CLI builds its `--help` from these without importing torch.
"""

from __future__ import annotations

from enum import StrEnum

# Where a model runs: `auto` means CUDA when present, else the CPU.
Device = StrEnum("Device", ["cpu", "cuda", "auto"])
# What one timed iteration is: a forward, or a training step (forward, backward, update).
Mode = StrEnum("Mode", ["infer", "train"])
# Floating-point types a model is timed and counted in.
Dtype = StrEnum("Dtype", ["float32", "bfloat16", "float16"])
# Where a network is executed: eager PyTorch or a deployment runtime (bench/runtimes/).
RuntimeName = StrEnum(
    "RuntimeName", ["eager", "compile", "aoti", "onnxruntime", "openvino", "tensorflow"]
)
# The latency statistic `bench compare` judges.
LatencyStat = StrEnum(
    "LatencyStat",
    ["latency_ms_median", "latency_ms_mean", "latency_ms_p10", "latency_ms_p90", "latency_ms_p99"],
)
# Where `bench list models` looks for networks.
ModelSource = StrEnum("ModelSource", ["registry", "torchvision", "timm"])
# Whether `bench compare` divides latencies by each run's calibration.
Normalize = StrEnum("Normalize", ["auto", "none", "calibration"])

DEVICES = tuple(member.value for member in Device)
MODES = tuple(member.value for member in Mode)
RUNTIMES = tuple(member.value for member in RuntimeName)
DTYPE_ALIASES = {"fp32": Dtype.float32, "bf16": Dtype.bfloat16, "fp16": Dtype.float16}
DTYPE_NAMES = (*(member.value for member in Dtype), *DTYPE_ALIASES)
