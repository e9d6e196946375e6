"""Where the time goes: measured time per layer and per kind of op, beside the counted cost.

`profile_model` counts one forward (`bench.measure.counting`: module path, op, mult-adds, MAC per
op call), profiles several warmed-up forwards of the real model (`bench.measure.torch_profile`,
or a runtime's own profiler: `bench.measure.node_profile`), joins the two in execution order
(`bench.measure.op_matching`), takes each row's median time over the profiled iterations, and
sums rows into the ShuffleNet V2 paper's categories (`bench.measure.categories`). The same model
is also timed without the profiler (`latency_median_ms`), so the profiler's overhead shows.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from bench.core.errors import BenchError, first_line
from bench.core.models import model_and_shape
from bench.core.options import (
    check_batch,
    dtype_name,
    fixed_threads,
    format_input_shape,
    parse_dtype,
    resolve_device,
)
from bench.measure.categories import (
    CATEGORIES,
    conv_kind,
    is_known_op,
    op_category,
    profiler_name,
)
from bench.measure.counting import OpRecord, record_forward
from bench.measure.node_profile import NODE_PROFILED_RUNTIMES, NodeProfile, profile_nodes
from bench.measure.op_matching import CountedOp, MatchedRow, match_ops
from bench.measure.rules import resolve_rules
from bench.measure.timing import check_dtype_support, measure_latency
from bench.measure.torch_profile import profile_forward

LAYER_COLUMNS = [
    "module", "op", "output_shape", "category", "conv_kind", "matched", "fused", "time_ms",
    "time_share",
    "mult_adds", "mac_bytes", "mult_adds_share", "mac_share", "gflops_per_s", "gb_per_s",
]  # fmt: skip
SHARES = ("time_share", "mult_adds_share", "mac_share")
PROFILED_RUNTIMES = ("eager", *NODE_PROFILED_RUNTIMES)


@dataclass
class ProfileResult:
    """Per-layer and per-category time beside counted cost, with the unprofiled latency."""

    model: str
    device: str
    runtime: str
    batch: int
    input: str
    dtype: str
    threads: int
    iterations: int
    total_profiled_ms: float
    profiled_wall_ms: float
    latency_median_ms: float | None
    categories: dict[str, dict[str, Any]]
    unknown_ops: list[str]
    unmatched_counted: int
    unmatched_profiled: int
    fused_ops: dict[str, int] = field(default_factory=dict)
    layers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=LAYER_COLUMNS))

    @property
    def overhead_ratio(self) -> float | None:
        """Profiled sum of layer times / end-to-end median without the profiler."""
        if not self.latency_median_ms:
            return None
        return self.total_profiled_ms / self.latency_median_ms

    def time_shares(self) -> dict[str, float]:
        """`time_share_<category>` of every category (the suite's columns)."""
        return {f"time_share_{c}": self.categories[c]["time_share"] for c in CATEGORIES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the scalar fields, the categories and the layers as records."""
        data = {k: v for k, v in vars(self).items() if k != "layers"}
        data["overhead_ratio"] = self.overhead_ratio
        data["layers"] = self.layers.to_dict(orient="records")
        return data


@dataclass(frozen=True)
class TimedRows:
    """Rows of the joined table with their median time over the profiled iterations."""

    rows: list[MatchedRow]
    time_ms: list[float]
    fused: list[str]
    conv_kinds: list[str | None]  # None: from the row's module (PyTorch rows)


def median_rows(per_iteration: list[list[MatchedRow]]) -> TimedRows:
    """Key rows across iterations (record index, or module/op/occurrence); median time each."""
    keyed: dict[tuple, list[float]] = defaultdict(list)
    first: dict[tuple, MatchedRow] = {}
    for rows in per_iteration:
        seen: dict[tuple, int] = defaultdict(int)
        for row in rows:
            key = ("c", row.index) if row.index is not None else ("p", row.module, row.op)
            seen[key] += 1
            key = (*key, seen[key])
            first.setdefault(key, row)
            keyed[key].append(row.time_us)
    n = len(per_iteration)
    times = [statistics.median(v + [0.0] * (n - len(v))) / 1000.0 for v in keyed.values()]
    return TimedRows([first[k] for k in keyed], times, [""] * len(times), [None] * len(times))


def _conv_kind_of(model: nn.Module, module: str, category: str) -> str:
    """The conv kind of a conv row from its module's groups ('' for other categories)."""
    if category != "conv":
        return ""
    try:
        layer = model.get_submodule(module)
    except AttributeError:
        return conv_kind(None, None)
    return conv_kind(getattr(layer, "groups", None), getattr(layer, "in_channels", None))


def layer_table(model: nn.Module, records: list[OpRecord], timed: TimedRows) -> pd.DataFrame:
    """The joined per-layer table: time, counted cost, their shares and achieved rates."""
    rows = []
    columns = (timed.rows, timed.time_ms, timed.fused, timed.conv_kinds)
    for row, time_ms, fused, kind in zip(*columns, strict=True):
        record = records[row.index] if row.index is not None else None
        category = op_category(row.op)
        kind = _conv_kind_of(model, row.module, category) if kind is None else kind
        rows.append(
            {
                "module": row.module,
                "op": row.op,
                "output_shape": record.output_shape if record else "",
                "category": category,
                "conv_kind": kind,
                "matched": row.matched,
                "fused": fused,
                "time_ms": time_ms,
                "mult_adds": record.mult_adds if record else 0,
                "mac_bytes": record.mac_bytes if record else 0,
            }
        )
    return with_shares_and_rates(pd.DataFrame(rows, columns=LAYER_COLUMNS))


def with_shares_and_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill the share columns (of the table's totals) and GFLOP/s, GB/s from time and cost."""
    for share, column in zip(SHARES, ("time_ms", "mult_adds", "mac_bytes"), strict=True):
        total = float(frame[column].sum())
        frame[share] = frame[column] / total if total else 0.0
    seconds = frame["time_ms"] / 1000.0
    positive = seconds > 0
    frame["gflops_per_s"] = (2 * frame["mult_adds"] / seconds / 1e9).where(positive, 0.0)
    frame["gb_per_s"] = (frame["mac_bytes"] / seconds / 1e9).where(positive, 0.0)
    return frame


def _sums(frame: pd.DataFrame) -> dict[str, float]:
    """time_ms and the three shares summed over a group of rows."""
    return {
        "time_ms": float(frame["time_ms"].sum()),
        **{share: float(frame[share].sum()) for share in SHARES},
    }


def category_table(layers: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every category's time and shares; conv split by kind, `other` naming its ops."""
    table = {name: _sums(layers[layers["category"] == name]) for name in CATEGORIES}
    conv = layers[layers["category"] == "conv"]
    table["conv"]["kinds"] = {k: _sums(g) for k, g in conv.groupby("conv_kind", sort=True)}
    other = layers[layers["category"] == "other"]
    table["other"]["ops"] = {
        op: float(t) for op, t in other.groupby("op", sort=True)["time_ms"].sum().items()
    }
    return table


def unmatched_costly(rows: list[MatchedRow], records: list[OpRecord]) -> int:
    """Counted ops with a cost (not views or allocations) that no profiled op matched."""
    return sum(
        r.index is not None and not r.matched and records[r.index].kind != "free" for r in rows
    )


def check_runtime(runtime: str) -> str:
    """The runtime's name when it can be profiled, else a BenchError naming the choices."""
    if runtime not in PROFILED_RUNTIMES:
        raise BenchError(
            f"runtime {runtime!r} cannot be profiled per op; choose one of "
            f"{', '.join(PROFILED_RUNTIMES)}"
        )
    return runtime


def _counted(records: list[OpRecord]) -> list[CountedOp]:
    """The counted records as the matcher sees them."""
    return [CountedOp(r.module, r.op) for r in records]


def node_timed_rows(nodes: NodeProfile, records: list[OpRecord]) -> TimedRows:
    """A runtime's timed nodes, then the counted ops with no time (their mult-adds and MAC)."""
    rows = [MatchedRow(r.name, r.op, None, r.time_ms * 1000.0, False) for r in nodes.rows]
    rows += [
        MatchedRow(r.module, profiler_name(r.op), i, 0.0, False) for i, r in enumerate(records)
    ]
    blank = [0.0] * len(records)
    return TimedRows(
        rows,
        [r.time_ms for r in nodes.rows] + blank,
        [r.fused for r in nodes.rows] + [""] * len(records),
        [r.conv_kind for r in nodes.rows] + [None] * len(records),
    )


@dataclass(frozen=True)
class ProfileSetup:
    """How the profiled forwards run: runtime, device, threads, iterations after warm-up."""

    runtime: str
    device: str
    threads: int
    iterations: int
    warmup: int


def _profiled_rows(
    model: nn.Module, records: list[OpRecord], inputs: torch.Tensor, setup: ProfileSetup
) -> tuple[TimedRows, float, dict[str, int]]:
    """Median rows, the median profiled forward's wall time (ms) and the runtime's fused nodes."""
    if setup.runtime == "eager":
        profiled = profile_forward(model, inputs, setup.device, setup.iterations, setup.warmup)
        per_iteration = [match_ops(_counted(records), it.ops) for it in profiled]
        wall_ms = statistics.median(it.wall_us for it in profiled) / 1000.0
        return median_rows(per_iteration), wall_ms, {}
    nodes = profile_nodes(
        model, inputs, setup.runtime, setup.threads, setup.iterations, setup.warmup
    )
    return node_timed_rows(nodes, records), nodes.wall_ms, nodes.fused_ops


def counted_records(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> list:
    """The counting's op records of one forward (BenchError when the input does not fit).

    A model's own `record_function` ranges are ops to the counter (`profiler::...`) but ranges
    to the profiler: they are left out.
    """
    try:
        records, _ = record_forward(model, shape, dtype, resolve_rules(None))
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        raise BenchError(
            f"cannot profile input {format_input_shape(shape[1:])}: {first_line(exc)}"
        ) from None
    return [r for r in records if not r.op.startswith("profiler.")]


def profile_model(
    model_or_spec: nn.Module | str,
    input_shape: str | tuple[int, ...] | None = None,
    batch: int = 1,
    device: str = "cpu",
    threads: int | None = None,
    dtype: torch.dtype | str = torch.float32,
    runtime: str = "eager",
    iterations: int = 20,
    warmup: int = 5,
    latency_budget_s: float = 3.0,
) -> ProfileResult:
    """Profile a model's forward per layer and per op category, beside its counted cost."""
    batch, dtype, device = check_batch(batch), parse_dtype(dtype), resolve_device(device)
    runtime = check_runtime(str(runtime))
    if iterations < 1 or warmup < 0:
        raise BenchError(f"iterations must be >= 1 and warmup >= 0, got {iterations}, {warmup}")
    model, shape = model_and_shape(model_or_spec, input_shape)
    check_dtype_support(device, dtype, shape, channels_last=False)
    records = counted_records(model, (batch, *shape), dtype)
    with fixed_threads(threads) as n_threads:
        model = model.to(device=device, dtype=dtype).eval()
        inputs = torch.randn(batch, *shape, device=device).to(dtype)
        setup = ProfileSetup(runtime, device, n_threads, iterations, warmup)
        timed, wall_ms, fused_ops = _profiled_rows(model, records, inputs, setup)
        latency = measure_latency(
            model, shape, batch, device, n_threads, dtype, budget_s=latency_budget_s,
            runtime=runtime,
        )  # fmt: skip
    layers = layer_table(model, records, timed)
    return ProfileResult(
        model=getattr(model, "spec", type(model).__name__), device=device, runtime=runtime,
        batch=batch, input=format_input_shape(shape), dtype=dtype_name(dtype), threads=n_threads,
        iterations=iterations, total_profiled_ms=float(layers["time_ms"].sum()),
        profiled_wall_ms=wall_ms, latency_median_ms=latency.median_ms,
        categories=category_table(layers),
        unknown_ops=sorted({op for op in layers["op"] if not is_known_op(op)}),
        unmatched_counted=unmatched_costly(timed.rows, records) if runtime == "eager" else 0,
        unmatched_profiled=sum(r.index is None for r in timed.rows) if runtime == "eager" else 0,
        fused_ops=fused_ops,
        layers=layers,
    )  # fmt: skip
