"""Params, mult-adds and memory access cost (MAC) of one forward, counted per aten op.

A `TorchDispatchMode` sees every aten op of one inference forward run on the meta device (shapes
only: no real compute, no real copies). Each op falls in exactly one class:

- compute: a handler in `MULT_ADD_HANDLERS` gives its mult-adds (convolution, mm, addmm, bmm...);
- free: a view / alias / allocation in `FREE_OPS`: 0 mult-adds and 0 MAC;
- zero mult-adds: in `ZERO_MULT_ADD_OPS` (element-wise, norm, pooling, cat, copies...): 0
  mult-adds but MAC by the rule below;
- unhandled: anything else; reported by name with its call count, MAC by the rule below.

MAC (ShuffleNet V2 sense) of a non-free op = elements read (every tensor input, weights included)
+ elements written (every non-empty tensor output); `mac_bytes` weights each tensor by its element
size. Model MAC is the plain sum over ops: no reuse between ops (no cache model).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from bench.errors import BenchError
from bench.options import check_batch, dtype_name, format_input_shape, parse_dtype
from bench.options import parse_input_shape as parse_shape_text

aten = torch.ops.aten

PER_OP_COLUMNS = ["op", "kind", "calls", "mult_adds", "mac_elements", "mac_bytes"]
PER_LAYER_COLUMNS = [
    "module",
    "op",
    "output_shape",
    "mult_adds",
    "mac_elements",
    "mac_bytes",
    "mult_adds_share",
    "mac_share",
]

MultAddHandler = Callable[[tuple, Any], int]


def _prod(values: Any) -> int:
    """Product of ints (1 for an empty sequence)."""
    return math.prod(int(v) for v in values)


def _conv_mult_adds(args: tuple, out: Any) -> int:
    """Convolution (any stride/padding/dilation/groups, transposed too): one MAC per weight use."""
    x, weight = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    per_element = _prod(weight.shape[1:])  # (C_in/g or C_out/g) * kernel volume
    return (x.numel() if transposed else out.numel()) * per_element


def _mm_mult_adds(args: tuple, out: Any) -> int:
    """mm(a, b): n*k*m."""
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * b.shape[1]


def _addmm_mult_adds(args: tuple, out: Any) -> int:
    """addmm(bias, a, b): the product's n*k*m (the bias add is not a mult-add)."""
    return _mm_mult_adds(args[1:], out)


def _bmm_mult_adds(args: tuple, out: Any) -> int:
    """bmm(a, b): batch*n*k*m."""
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def _baddbmm_mult_adds(args: tuple, out: Any) -> int:
    """baddbmm(bias, a, b): the batched product's mult-adds."""
    return _bmm_mult_adds(args[1:], out)


def _mv_mult_adds(args: tuple, out: Any) -> int:
    """mv(a, v) and dot(a, b): one mult-add per element of the first operand."""
    return args[0].numel()


def _addmv_mult_adds(args: tuple, out: Any) -> int:
    """addmv(bias, a, v): the matrix-vector product's mult-adds."""
    return args[1].numel()


MULT_ADD_HANDLERS: dict[Any, MultAddHandler] = {
    aten.convolution: _conv_mult_adds,
    aten._convolution: _conv_mult_adds,
    aten.mm: _mm_mult_adds,
    aten.addmm: _addmm_mult_adds,
    aten.bmm: _bmm_mult_adds,
    aten.baddbmm: _baddbmm_mult_adds,
    aten.mv: _mv_mult_adds,
    aten.dot: _mv_mult_adds,
    aten.addmv: _addmv_mult_adds,
}

FREE_OPS = frozenset(
    {
        *(aten.view, aten._unsafe_view, aten._reshape_alias, aten.alias, aten.as_strided),
        *(aten.transpose, aten.transpose_, aten.permute, aten.t, aten.t_, aten.expand),
        *(aten.slice, aten.select, aten.narrow, aten.diagonal, aten.unfold),
        *(aten.squeeze, aten.squeeze_, aten.unsqueeze, aten.unsqueeze_),
        *(aten.split, aten.split_with_sizes, aten.chunk, aten.unbind),
        *(aten.detach, aten.detach_, aten.lift_fresh, aten.view_as_real, aten.view_as_complex),
        *(aten.empty, aten.empty_like, aten.empty_strided),
    }
)

ZERO_MULT_ADD_OPS = frozenset(
    {
        *(aten.add, aten.add_, aten.sub, aten.sub_, aten.mul, aten.mul_, aten.div, aten.div_),
        *(aten.neg, aten.exp, aten.log, aten.sqrt, aten.rsqrt, aten.pow, aten.abs, aten.tanh),
        *(aten.maximum, aten.minimum, aten.where, aten.addcmul, aten.addcdiv),
        *(aten.relu, aten.relu_, aten.hardtanh, aten.hardtanh_, aten.clamp, aten.clamp_),
        *(aten.clamp_min, aten.clamp_min_, aten.leaky_relu, aten.leaky_relu_, aten.elu),
        *(aten.sigmoid, aten.sigmoid_, aten.silu, aten.silu_, aten.gelu),
        *(aten.hardswish, aten.hardswish_, aten.hardsigmoid, aten.hardsigmoid_),
        *(aten.native_batch_norm, aten._native_batch_norm_legit_no_training),
        *(aten._native_batch_norm_legit, aten.native_layer_norm, aten.native_group_norm),
        *(aten.max_pool2d, aten.max_pool2d_with_indices, aten.max_pool3d_with_indices),
        *(aten.avg_pool2d, aten.avg_pool3d, aten.adaptive_avg_pool2d, aten._adaptive_avg_pool2d),
        *(aten.adaptive_max_pool2d, aten.mean, aten.sum, aten.amax, aten.amin),
        *(aten.cat, aten.stack, aten.clone, aten.copy_, aten._to_copy),
        *(aten.channel_shuffle, aten.native_channel_shuffle),
        *(aten.pixel_shuffle, aten.pixel_unshuffle, aten.constant_pad_nd),
        *(aten.upsample_nearest2d, aten.upsample_bilinear2d),
        *(aten._softmax, aten._log_softmax, aten.softmax, aten.log_softmax),
        *(aten.fill_, aten.zero_, aten.zeros, aten.ones, aten.full),
        *(aten.zeros_like, aten.ones_like, aten.full_like),
    }
)

# Extra outputs that inference does not produce: saved batch-norm statistics (kept for backward)
# and max-pooling indices. Only the first output of these ops is counted as written.
FIRST_OUTPUT_ONLY = frozenset(
    {
        *(aten.native_batch_norm, aten._native_batch_norm_legit_no_training),
        *(aten._native_batch_norm_legit, aten.native_layer_norm, aten.native_group_norm),
        *(aten.max_pool2d_with_indices, aten.max_pool3d_with_indices, aten.adaptive_max_pool2d),
    }
)


def _batch_norm_shapes(args: tuple, kwargs: dict) -> tuple[torch.Tensor, ...]:
    """Meta outputs of a batch norm: the normalised map and two empty saved statistics."""
    x = args[0]
    return torch.empty_like(x), x.new_empty((0,)), x.new_empty((0,))


# Shape rules for meta ops whose own meta kernel is a slow Python decomposition (batch norm's
# takes ~4 ms per call); outputs have the shapes and dtypes the real op returns in inference.
FAST_META: dict[Any, Callable[[tuple, dict], Any]] = {
    aten.native_batch_norm: _batch_norm_shapes,
    aten._native_batch_norm_legit_no_training: _batch_norm_shapes,
}


def op_kind(packet: Any) -> str:
    """The class of an aten op packet: compute, free, zero or unhandled."""
    if packet in MULT_ADD_HANDLERS:
        return "compute"
    if packet in FREE_OPS:
        return "free"
    if packet in ZERO_MULT_ADD_OPS:
        return "zero"
    return "unhandled"


def _tensors(tree: Any) -> list[torch.Tensor]:
    """The tensors among the leaves of a nested structure of args or outputs."""
    leaves, _ = tree_flatten(tree)
    return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]


def _traffic(tensors: list[torch.Tensor]) -> tuple[int, int]:
    """(elements, bytes) of a list of tensors."""
    elements = sum(t.numel() for t in tensors)
    return elements, sum(t.numel() * t.element_size() for t in tensors)


def op_traffic(packet: Any, args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """MAC (elements, bytes) of one op: inputs read + non-empty outputs written; views free."""
    if packet in FREE_OPS:
        return 0, 0
    reads = _tensors((args, {k: v for k, v in kwargs.items() if k != "out"}))
    outputs = _tensors(out)
    if packet in FIRST_OUTPUT_ONLY:
        outputs = outputs[:1]
    read_elements, read_bytes = _traffic(reads)
    write_elements, write_bytes = _traffic([t for t in outputs if t.numel() > 0])
    return read_elements + write_elements, read_bytes + write_bytes


class LiveActivations:
    """Bytes of activation storage alive during a forward and their peak (parameters excluded)."""

    def __init__(self, ignored: list[torch.Tensor]) -> None:
        self.ignored = {StorageWeakRef(t.untyped_storage()).cdata for t in ignored}
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def add(self, tensors: list[torch.Tensor]) -> None:
        """Free expired storages, then add the storages of these tensors not seen before."""
        for key, (ref, nbytes) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.current -= nbytes
        for tensor in tensors:
            ref = StorageWeakRef(tensor.untyped_storage())
            if ref.cdata in self.ignored or ref.cdata in self.live:
                continue
            nbytes = tensor.untyped_storage().nbytes()
            self.live[ref.cdata] = (ref, nbytes)
            self.current += nbytes
        self.peak = max(self.peak, self.current)


@dataclass
class OpRecord:
    """One op call: where it ran, what it produced and what it cost."""

    module: str
    op: str
    kind: str
    output_shape: str
    mult_adds: int
    mac_elements: int
    mac_bytes: int


RECORD_FIELDS = [f.name for f in fields(OpRecord)]


class CountingMode(TorchDispatchMode):
    """Dispatch mode recording every aten op with its mult-adds, MAC and enclosing module."""

    def __init__(self, live: LiveActivations) -> None:
        super().__init__()
        self.live = live
        self.module_stack: list[str] = [""]
        self.records: list[OpRecord] = []

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: Any = None
    ) -> Any:
        """Run the op, then record its cost."""
        kwargs = kwargs or {}
        packet = func.overloadpacket
        out = self._run(func, packet, args, kwargs)
        handler = MULT_ADD_HANDLERS.get(packet)
        elements, nbytes = op_traffic(packet, args, kwargs, out)
        outputs = _tensors(out)
        self.records.append(
            OpRecord(
                module=self.module_stack[-1],
                op=str(packet),
                kind=op_kind(packet),
                output_shape=" ".join(format_input_shape(t.shape) for t in outputs[:1]),
                mult_adds=int(handler(args, out)) if handler else 0,
                mac_elements=elements,
                mac_bytes=nbytes,
            )
        )
        self.live.add(outputs)
        return out

    @staticmethod
    def _run(func: Any, packet: Any, args: tuple, kwargs: dict) -> Any:
        """Run the op, through a fast shape rule when it has one and all tensors are meta."""
        fast = FAST_META.get(packet)
        if fast is not None and all(t.is_meta for t in _tensors(args)):
            return fast(args, kwargs)
        return func(*args, **kwargs)


@contextmanager
def module_tracking(model: nn.Module, stack: list[str]) -> Iterator[None]:
    """Keep `stack[-1]` equal to the path of the innermost module running (hooks removed after)."""

    def leave(*_: Any) -> None:
        stack.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(lambda *_, n=name: stack.append(n)))
        handles.append(module.register_forward_hook(leave))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class CountResult:
    """Counts of one forward: params, mult-adds (flops = 2x), MAC, per-op and per-layer tables."""

    params: int
    mult_adds: int
    flops: int
    mac_elements: int
    mac_bytes: int
    activation_peak_bytes: int
    unhandled: dict[str, int]
    input: str
    batch: int
    dtype: str
    mult_adds_fvcore: int | None = None
    per_op: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PER_OP_COLUMNS))
    per_layer: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PER_LAYER_COLUMNS))

    def to_dict(self) -> dict:
        """JSON-ready dict of the scalar fields (no DataFrames)."""
        names = (
            "params",
            "mult_adds",
            "flops",
            "mac_elements",
            "mac_bytes",
            "activation_peak_bytes",
            "unhandled",
            "mult_adds_fvcore",
            "input",
            "batch",
            "dtype",
        )
        return {name: getattr(self, name) for name in names}


def per_op_table(records: list[OpRecord]) -> pd.DataFrame:
    """One row per aten op: calls and summed mult-adds / MAC, in order of first use."""
    frame = pd.DataFrame([vars(r) for r in records], columns=RECORD_FIELDS)
    grouped = frame.groupby(["op", "kind"], sort=False)
    table = grouped[["mult_adds", "mac_elements", "mac_bytes"]].sum().reset_index()
    table.insert(2, "calls", grouped.size().to_numpy())
    return table[PER_OP_COLUMNS]


def per_layer_table(records: list[OpRecord]) -> pd.DataFrame:
    """One row per non-free op call: module path, op, output shape, costs and shares of totals."""
    rows = [vars(r) for r in records if r.kind != "free"]
    frame = pd.DataFrame(rows, columns=RECORD_FIELDS)
    for column, total_of in (("mult_adds_share", "mult_adds"), ("mac_share", "mac_bytes")):
        total = frame[total_of].sum()
        frame[column] = frame[total_of] / total if total else 0.0
    return frame[PER_LAYER_COLUMNS].reset_index(drop=True)


def settle_input_shape(
    model: nn.Module, input_shape: str | tuple[int, ...] | list[int] | None
) -> tuple[int, ...]:
    """The per-sample input shape: given (CxHxW text or ints) or the model's `input_shape`."""
    if isinstance(input_shape, str):
        return parse_shape_text(input_shape)
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise BenchError("input_shape is required for a model without .input_shape (C, H, W)")
    values = tuple(shape)
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
    if not values or not ok:
        raise BenchError(
            f"input shape {shape!r} is not a sequence of positive ints (e.g. 3x224x224)"
        )
    return values


def build_on_meta(spec: str) -> nn.Module:
    """Build a spec with netdefs on the meta device (no weight init work, no memory)."""
    from netdefs import get_model

    try:
        with torch.device("meta"):
            return get_model(spec)
    except ValueError as exc:
        raise BenchError(str(exc)) from None


def meta_state(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Meta stand-ins for every parameter and buffer; floating ones cast to `dtype`."""
    state = dict(model.named_parameters())  # tied weights once: functional_call re-ties them
    state.update(model.named_buffers())
    return {
        name: torch.empty_like(t, device="meta", dtype=dtype if t.is_floating_point() else t.dtype)
        for name, t in state.items()
    }


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put the model in eval mode for the block and restore each module's flag afterwards."""
    flags = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags.items():
            module.training = flag


def record_forward(
    model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype
) -> tuple[list[OpRecord], int]:
    """Run one eval forward on meta tensors under the counting mode; return records and peak."""
    state = meta_state(model, dtype)
    x = torch.empty(shape, device="meta", dtype=dtype)
    live = LiveActivations(list(state.values()))
    live.add([x])
    mode = CountingMode(live)
    with eval_mode(model), torch.no_grad(), module_tracking(model, mode.module_stack), mode:
        torch.func.functional_call(model, state, (x,))
    return mode.records, live.peak


def fvcore_mult_adds(model: nn.Module, shape: tuple[int, ...]) -> int:
    """fvcore's FlopCountAnalysis total (its "flops" are mult-adds) on a real CPU float32 copy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notices raised by fvcore
        from fvcore.nn import FlopCountAnalysis

    if any(t.is_meta for t in model.parameters()):
        raise BenchError("fvcore=True needs a model with real (non-meta) parameters")
    if any(t.dtype != torch.float32 or t.device.type != "cpu" for t in model.parameters()):
        model = copy.deepcopy(model).float().cpu()
    with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model, torch.randn(shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(analysis.total())


def count(
    model_or_spec: nn.Module | str,
    input_shape: str | tuple[int, ...] | list[int] | None = None,
    batch: int = 1,
    dtype: torch.dtype | str = torch.float32,
    fvcore: bool = False,
) -> CountResult:
    """Count params, mult-adds, MAC and activation peak of one inference forward (meta device)."""
    batch = check_batch(batch)
    dtype = parse_dtype(dtype)
    model = build_on_meta(model_or_spec) if isinstance(model_or_spec, str) else model_or_spec
    shape = settle_input_shape(model, input_shape)
    try:
        records, peak = record_forward(model, (batch, *shape), dtype)
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(f"cannot count input {format_input_shape(shape)}: {first}") from None
    result = summarize(records, peak, sum(p.numel() for p in model.parameters()))
    result.input, result.batch, result.dtype = format_input_shape(shape), batch, dtype_name(dtype)
    if fvcore:
        real = _real_model(model_or_spec) if isinstance(model_or_spec, str) else model
        result.mult_adds_fvcore = fvcore_mult_adds(real, (batch, *shape))
    return result


def _real_model(spec: str) -> nn.Module:
    """Build a spec on the CPU (for fvcore, which needs real tensors)."""
    from netdefs import get_model

    return get_model(spec)


def summarize(records: list[OpRecord], peak: int, params: int) -> CountResult:
    """Totals and tables from the op records (the setup fields are filled in by the caller)."""
    unhandled = Counter(r.op for r in records if r.kind == "unhandled")
    mult_adds = sum(r.mult_adds for r in records)
    return CountResult(
        params=params,
        mult_adds=mult_adds,
        flops=2 * mult_adds,
        mac_elements=sum(r.mac_elements for r in records),
        mac_bytes=sum(r.mac_bytes for r in records),
        activation_peak_bytes=peak,
        unhandled=dict(unhandled),
        input="",
        batch=0,
        dtype="",
        per_op=per_op_table(records),
        per_layer=per_layer_table(records),
    )
