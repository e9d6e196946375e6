"""Per-node times from a runtime's own profiler: ONNX Runtime's profiling output, OpenVINO's
per-node performance counters (through `Target.profile` and `Session.node_times()`).

A runtime runs its optimised graph, not PyTorch's ops, so nodes are not matched to counted ops:
each executed node is a row (`onnxruntime::Conv`, `openvino::GroupConvolution`) in the same
categories, with what it absorbed shown as fused (OpenVINO: the nodes it did not run, each given
to the executed node before it; ONNX Runtime: a conv or matmul whose name is an element-wise
node's of the exported graph). `fused_ops` counts, per node type of the exported graph, the
nodes the runtime did not run as nodes of their own: the costs it removed.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import torch
from torch import nn

from bench.measure.categories import conv_kind, op_category
from bench.runtimes import get_runtime
from bench.runtimes.base import NodeTiming, Session, Target

NODE_PROFILED_RUNTIMES = ("onnxruntime", "openvino")
BOOKKEEPING_NODES = frozenset({"Parameter", "Result", "Constant", "Input", "Output"})
ORT_NAME_SUFFIX = re.compile(r"(_nchwc|_token_\d+)+$")
# ONNX Runtime's fused or re-laid-out kernels -> the exported op they still run
ORT_RUNS_AS = {"FusedConv": "Conv", "NchwcConv": "Conv", "FusedMatMul": "MatMul",
               "NchwcMaxPool": "MaxPool", "NchwcAveragePool": "AveragePool",
               "NchwcGlobalAveragePool": "GlobalAveragePool"}  # fmt: skip


@dataclass(frozen=True)
class NodeRow:
    """One executed node: name, `runtime::type`, median time, what it absorbed, conv kind."""

    name: str
    op: str
    time_ms: float
    fused: str
    conv_kind: str


@dataclass(frozen=True)
class NodeProfile:
    """A runtime's nodes with median times, the profiled step's wall time, the fused counts."""

    rows: list[NodeRow]
    wall_ms: float
    fused_ops: dict[str, int]


@dataclass(frozen=True)
class ExportedGraph:
    """The exported ONNX graph's op types: by node name, by output name, and their counts."""

    by_name: dict[str, str]
    by_output: dict[str, str]
    counts: Counter


def exported_graph(path: str) -> ExportedGraph:
    """Read the node types of the exported ONNX file (no weights loaded)."""
    import onnx  # seconds to import; only runtime profiles read the exported graph

    nodes = onnx.load(path, load_external_data=False).graph.node
    return ExportedGraph(
        by_name={node.name: node.op_type for node in nodes},
        by_output={out: node.op_type for node in nodes for out in node.output},
        counts=Counter(node.op_type for node in nodes),
    )


def ort_absorbed(node: NodeTiming, exported: ExportedGraph) -> str:
    """The element-wise op a conv or matmul node of ONNX Runtime took in ('' when none)."""
    if op_category(f"onnxruntime::{node.op_type}") not in ("conv", "linear"):
        return ""
    base = ORT_NAME_SUFFIX.sub("", node.name)
    names = (exported.by_name.get(base), exported.by_name.get(f"node_{base}"))
    original = next((t for t in names if t), None) or exported.by_output.get(base, "")
    if original != node.op_type and op_category(f"onnxruntime::{original}") == "elementwise":
        return original
    return "activation" if node.op_type == "FusedConv" else ""  # fused by definition


def ort_conv_kind(node: NodeTiming) -> str:
    """dense / group / depthwise of an ONNX Runtime conv node from its input and weight shapes."""
    shapes = [next(iter(s.values())) for s in node.detail.get("input_type_shape", [])[:2]]
    if len(shapes) < 2 or len(shapes[0]) != 4 or len(shapes[1]) != 4 or not shapes[1][1]:
        return conv_kind(None, None)
    return conv_kind(shapes[0][1] // shapes[1][1], shapes[0][1])


def ov_conv_kind(node: NodeTiming) -> str:
    """dense / group / depthwise of an OpenVINO conv node from its type and kernel."""
    if node.op_type != "GroupConvolution":
        return "dense"
    return "depthwise" if "dw" in str(node.detail.get("exec_type", "")) else "group"


def executed_with_fused(step: list[NodeTiming]) -> list[tuple[NodeTiming, list[str]]]:
    """OpenVINO's executed nodes, each with the types of the not-run nodes that follow it."""
    rows: list[tuple[NodeTiming, list[str]]] = []
    for node in step:
        if node.op_type in BOOKKEEPING_NODES:
            continue
        if node.executed or not rows:
            rows.append((node, []))
        else:
            rows[-1][1].append(node.op_type)
    return rows


def step_rows(runtime: str, step: list[NodeTiming], exported: ExportedGraph) -> list[tuple]:
    """(name, op, time_us, fused, conv kind) of one step's executed nodes."""
    if runtime == "openvino":
        return [
            (n.name, f"openvino::{n.op_type}", n.time_us, "+".join(f),
             ov_conv_kind(n) if op_category(f"openvino::{n.op_type}") == "conv" else "")
            for n, f in executed_with_fused(step)
        ]  # fmt: skip
    return [
        (n.name, f"onnxruntime::{n.op_type}", n.time_us, ort_absorbed(n, exported),
         ort_conv_kind(n) if op_category(f"onnxruntime::{n.op_type}") == "conv" else "")
        for n in step
    ]  # fmt: skip


def median_node_rows(steps: list[list[tuple]]) -> list[NodeRow]:
    """Rows keyed by node name and occurrence; each row's median time over the steps."""
    times: dict[tuple, list[float]] = defaultdict(list)
    first: dict[tuple, tuple] = {}
    for rows in steps:
        seen: Counter = Counter()
        for row in rows:
            seen[row[0]] += 1
            key = (row[0], seen[row[0]])
            first.setdefault(key, row)
            times[key].append(row[2])
    n = len(steps)
    return [
        NodeRow(first[k][0], first[k][1], statistics.median(v + [0.0] * (n - len(v))) / 1000.0,
                first[k][3], first[k][4])
        for k, v in times.items()
    ]  # fmt: skip


def fused_counts(runtime: str, step: list[NodeTiming], exported: ExportedGraph) -> dict:
    """Per node type, how many nodes the runtime did not run as nodes of their own."""
    if runtime == "openvino":
        gone = Counter(n.op_type for n in step if not n.executed)
        return {k: v for k, v in sorted(gone.items()) if k not in BOOKKEEPING_NODES}
    ran = Counter(ORT_RUNS_AS.get(n.op_type, n.op_type) for n in step)
    return {k: v - ran[k] for k, v in sorted(exported.counts.items()) if v > ran[k]}


def _timed_steps(session: Session, steps: int) -> list[float]:
    """Run the session's step `steps` times in inference mode; each call's wall time (s)."""
    walls = []
    with torch.inference_mode():
        for _ in range(steps):
            start = time.perf_counter()
            session.step()
            walls.append(time.perf_counter() - start)
    return walls


def profile_nodes(
    model: nn.Module, inputs: torch.Tensor, runtime: str, threads: int, iterations: int,
    warmup: int,
) -> NodeProfile:  # fmt: skip
    """Prepare the model in the runtime with its profiler on; per-node median times."""
    engine = get_runtime(runtime)
    target = Target(inputs.device.type, inputs.dtype, threads, profile=True)
    engine.check(target)
    session = engine.prepare(model, inputs, target)
    walls = _timed_steps(session, warmup + iterations)[warmup:]
    steps = session.node_times()[-iterations:]
    exported = exported_graph(session.details["artefact"])
    rows = median_node_rows([step_rows(runtime, s, exported) for s in steps])
    fused = fused_counts(runtime, steps[-1], exported)
    return NodeProfile(rows, statistics.median(walls) * 1000.0, fused)
