"""Params, mult-adds and memory access cost (MAC) of one forward, counted per aten op.

A `TorchDispatchMode` sees every aten op of one inference forward run on the meta device (shapes
only: no real compute, no real copies); `bench.measure.rules` says what each op costs. Model MAC
is the plain sum over ops: no reuse between ops (no cache model).
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, fields
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode

from bench.core.errors import BenchError, first_line
from bench.core.models import build_model, settle_input_shape
from bench.core.options import check_batch, dtype_name, format_input_shape, parse_dtype
from bench.measure.meta_shapes import empty_meta_like
from bench.measure.rules import (
    FAST_META,
    MultAddHandler,
    op_kind,
    op_traffic,
    resolve_rules,
    tensors_in,
)

if TYPE_CHECKING:
    import pandas as pd

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

    def __init__(self, live: LiveActivations, handlers: Mapping[Any, MultAddHandler]) -> None:
        super().__init__()
        self.live = live
        self.handlers = handlers
        self.module_stack: list[str] = [""]
        self.records: list[OpRecord] = []

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        """False: counting never runs under torch.compile, so torch._dynamo need not be imported.

        By default torch wraps `__torch_dispatch__` in `torch._disable_dynamo`, whose first call
        imports torch._dynamo (seconds of a `bench count` start-up).
        """
        return False

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: Any = None
    ) -> Any:
        """Run the op, then record its cost."""
        kwargs = kwargs or {}
        packet = func.overloadpacket
        out = self._run(func, packet, args, kwargs)
        handler = self.handlers.get(packet)
        elements, nbytes = op_traffic(packet, args, kwargs, out)
        outputs = tensors_in(out)
        self.records.append(
            OpRecord(
                module=self.module_stack[-1],
                op=str(packet),
                kind=op_kind(packet, self.handlers),
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
        if fast is not None and all(t.is_meta for t in tensors_in(args)):
            out = fast(args, kwargs)
            if out is not NotImplemented:  # a rule declines what it does not cover
                return out
        return func(*args, **kwargs)


@contextmanager
def module_hooks(
    model: nn.Module, enter: Callable[[str], object], leave: Callable[[], object]
) -> Iterator[None]:
    """`enter(path)` before and `leave()` after every module's forward (hooks removed after)."""

    def before(_module: nn.Module, _inputs: Any, name: str) -> None:  # None: inputs unchanged
        enter(name)

    def after(*_: Any) -> None:  # None: the output unchanged
        leave()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(partial(before, name=name)))
        handles.append(module.register_forward_hook(after))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def module_tracking(model: nn.Module, stack: list[str]) -> AbstractContextManager[None]:
    """Keep `stack[-1]` equal to the path of the innermost module running."""
    return module_hooks(model, stack.append, stack.pop)


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
    records: list[OpRecord] = field(default_factory=list, repr=False)  # every op call, in order

    @property
    def per_op(self) -> pd.DataFrame:
        """One row per aten op: calls and summed mult-adds / MAC, in order of first use."""
        return per_op_table(self.records)

    @property
    def per_layer(self) -> pd.DataFrame:
        """One row per non-free op call with its module path, costs and shares of the totals."""
        return per_layer_table(self.records)

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
    import pandas as pd  # on demand: most counts never build a table (0.9 s of start-up)

    frame = pd.DataFrame([vars(r) for r in records], columns=RECORD_FIELDS)
    grouped = frame.groupby(["op", "kind"], sort=False)
    table = grouped[["mult_adds", "mac_elements", "mac_bytes"]].sum().reset_index()
    table.insert(2, "calls", grouped.size().to_numpy())
    return table[PER_OP_COLUMNS]


def per_layer_table(records: list[OpRecord]) -> pd.DataFrame:
    """One row per non-free op call: module path, op, output shape, costs and shares of totals."""
    import pandas as pd  # on demand, as in per_op_table

    rows = [vars(r) for r in records if r.kind != "free"]
    frame = pd.DataFrame(rows, columns=RECORD_FIELDS)
    for column, total_of in (("mult_adds_share", "mult_adds"), ("mac_share", "mac_bytes")):
        total = frame[total_of].sum()
        frame[column] = frame[total_of] / total if total else 0.0
    return frame[PER_LAYER_COLUMNS].reset_index(drop=True)


def meta_state(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Meta stand-ins for every parameter and buffer; floating ones cast to `dtype`."""
    state = dict(model.named_parameters())  # tied weights once: functional_call re-ties them
    state.update(model.named_buffers())
    return {
        name: empty_meta_like(t, dtype if t.is_floating_point() else t.dtype)
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
    model: nn.Module,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    handlers: Mapping[Any, MultAddHandler],
) -> tuple[list[OpRecord], int]:
    """Run one eval forward on meta tensors under the counting mode; return records and peak."""
    state = meta_state(model, dtype)
    x = torch.empty(shape, device="meta", dtype=dtype)
    live = LiveActivations(list(state.values()))
    live.add([x])
    mode = CountingMode(live, handlers)
    with eval_mode(model), torch.no_grad(), module_tracking(model, mode.module_stack), mode:
        torch.func.functional_call(model, state, (x,))
    return mode.records, live.peak


def activation_peak(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> int:
    """Peak bytes of activations alive in one eval forward of a (batch, ...) input (meta device).

    The input counts, parameters and buffers do not: what a forward needs beyond the weights.
    """
    return record_forward(model, shape, dtype, resolve_rules(None))[1]


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
    rules: Mapping[Any, MultAddHandler] | None = None,
) -> CountResult:
    """Count params, mult-adds, MAC and activation peak of one inference forward (meta device).

    `rules` adds cost rules for a user's own ops: `{op: handler}`, where op is an op packet,
    overload or `namespace::name` and `handler(args, out)` returns the op's mult-adds.
    """
    batch = check_batch(batch)
    dtype = parse_dtype(dtype)
    handlers = resolve_rules(rules)
    model = build_model(model_or_spec, meta=True)
    shape = settle_input_shape(model, input_shape)
    try:
        records, peak = record_forward(model, (batch, *shape), dtype, handlers)
    except BenchError:
        raise
    except Exception as exc:  # a forward may assert anything about the input it is given
        name = getattr(model, "spec", type(model).__name__)
        raise BenchError(
            f"cannot count input {format_input_shape(shape)} of {name}: "
            f"{type(exc).__name__}: {first_line(exc).split('. ')[0]}"
        ) from None
    result = totals_from_records(records, peak, sum(p.numel() for p in model.parameters()))
    result.input, result.batch, result.dtype = format_input_shape(shape), batch, dtype_name(dtype)
    if fvcore:
        result.mult_adds_fvcore = fvcore_mult_adds(build_model(model_or_spec), (batch, *shape))
    return result


def totals_from_records(records: list[OpRecord], peak: int, params: int) -> CountResult:
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
        records=records,
    )
