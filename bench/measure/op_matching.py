"""Join profiled op times to the counting's op records, in execution order.

The counter records the ops a `TorchDispatchMode` sees (`aten::convolution`, after composite
ops such as `conv2d` have decomposed); the profiler records the ops as called, each with its
callees below it (`conv2d` > `convolution` > `_convolution` > `mkldnn_convolution`). Both runs
know the innermost module of every op (forward hooks). For each profiled top-level op, in order,
the matcher walks its call tree depth first and takes the next counted records of the same
module whose names it meets (or an alias: the kernel the device picked). The profiled op's whole
time goes to the records it matched: each its node's time, and the rest (the wrappers' own time)
to the longest of them, so no measured time is lost. A counted record that nothing matched keeps
time 0 (`matched` False); a profiled op that matched nothing becomes a row of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.measure.categories import profiler_name

# Counted op -> the profiler names the same work may carry on a real device.
ALIASES: dict[str, frozenset[str]] = {
    "aten::native_batch_norm": frozenset(
        {"aten::cudnn_batch_norm", "aten::miopen_batch_norm",
         "aten::_native_batch_norm_legit_no_training"}
    ),
    "aten::max_pool2d_with_indices": frozenset({"aten::max_pool2d", "aten::mkldnn_max_pool2d"}),
    "aten::relu_": frozenset({"aten::relu"}),
    "aten::relu": frozenset({"aten::relu_"}),
}  # fmt: skip
WINDOW = 8  # how many unmatched counted records the matcher skips to find the next match


@dataclass
class OpNode:
    """One profiled op call: its name, inclusive time (us) and the ops it called."""

    name: str
    time_us: float
    children: list[OpNode] = field(default_factory=list)


@dataclass(frozen=True)
class ProfiledOp:
    """A top-level op of one module's forward as the profiler saw it."""

    module: str
    node: OpNode


@dataclass(frozen=True)
class CountedOp:
    """The part of a counting record the matcher needs: module path and op name."""

    module: str
    op: str


@dataclass(frozen=True)
class MatchedRow:
    """One row of the joined table: a counted record (`index`) or an unmatched profiled op."""

    module: str
    op: str
    index: int | None
    time_us: float
    matched: bool


def same_op(profiled: str, counted: str) -> bool:
    """Whether a profiled op name is the counted op (or a kernel the device picked for it)."""
    return profiled == counted or profiled in ALIASES.get(counted, ())


def _walk(node: OpNode, module: str, counted: Sequence[CountedOp], start: int) -> list[tuple]:
    """(index, time) of counted records from `start` on matched in order in node's call tree."""
    hits: list[tuple[int, float]] = []
    pending = [node]
    while pending and start + len(hits) < len(counted):
        current = pending.pop()
        target = counted[start + len(hits)]
        if target.module == module and same_op(current.name, target.op):
            hits.append((start + len(hits), current.time_us))
        else:
            pending.extend(reversed(current.children))
    return hits


def _first_hits(op: ProfiledOp, counted: Sequence[CountedOp], start: int) -> list[tuple]:
    """The hits of the first start in the window where the op matches counted records."""
    for begin in range(start, min(start + WINDOW + 1, len(counted))):
        if counted[begin].module == op.module:
            hits = _walk(op.node, op.module, counted, begin)
            if hits:
                return hits
    return []


def _spread(op: ProfiledOp, hits: list[tuple], counted: Sequence[CountedOp]) -> list[MatchedRow]:
    """Rows for the matched records; the profiled op's unmatched own time to the longest."""
    rest = op.node.time_us - sum(t for _, t in hits)
    longest = max(range(len(hits)), key=lambda k: hits[k][1])
    return [
        MatchedRow(counted[i].module, counted[i].op, i, t + (rest if k == longest else 0.0), True)
        for k, (i, t) in enumerate(hits)
    ]


def _unmatched(counted: Sequence[CountedOp], begin: int, end: int) -> list[MatchedRow]:
    """Rows with time 0 for counted records nothing profiled matched."""
    return [MatchedRow(counted[i].module, counted[i].op, i, 0.0, False) for i in range(begin, end)]


def match_ops(counted: Sequence[CountedOp], profiled: Sequence[ProfiledOp]) -> list[MatchedRow]:
    """Every counted record and every unmatched profiled op as a row, in execution order."""
    counted = [CountedOp(c.module, profiler_name(c.op)) for c in counted]
    rows: list[MatchedRow] = []
    position = 0
    for op in profiled:
        hits = _first_hits(op, counted, position)
        if not hits:
            rows.append(MatchedRow(op.module, op.node.name, None, op.node.time_us, False))
            continue
        rows += _unmatched(counted, position, hits[0][0]) + _spread(op, hits, counted)
        position = hits[-1][0] + 1
    return rows + _unmatched(counted, position, len(counted))
