"""`bench profile`: op categories, matching profiled ops to counted ones, the joined result."""

from __future__ import annotations

import json
import math
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.autograd import DeviceType
from typer.testing import CliRunner

from bench.cli.app import app
from bench.core.errors import BenchError
from bench.measure.categories import (
    CATEGORIES,
    OP_CATEGORIES,
    add_category,
    conv_kind,
    is_known_op,
    op_category,
)
from bench.measure.counting import record_forward
from bench.measure.node_profile import (
    ExportedGraph,
    NodeProfile,
    NodeRow,
    fused_counts,
    ort_absorbed,
    ort_conv_kind,
    step_rows,
)
from bench.measure.op_matching import CountedOp, MatchedRow, OpNode, ProfiledOp, match_ops
from bench.measure.profile import (
    category_table,
    counted_records,
    layer_table,
    median_rows,
    node_timed_rows,
    profile_model,
    unmatched_costly,
)
from bench.measure.rules import resolve_rules
from bench.measure.torch_profile import is_iteration_range, profile_forward
from bench.report.document import write_report
from bench.runs.folder import load_run
from bench.runs.runner import run_suite
from bench.runtimes.base import NodeTiming
from bench.runtimes.onnxruntime_rt import split_runs

FAST = dict(iterations=3, warmup=1, latency_budget_s=0.2, threads=1)


class Known(nn.Module):
    """conv -> bn -> relu -> shuffle -> split/cat -> pool -> fc: an op order known in advance."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.gconv = nn.Conv2d(8, 8, 1, groups=2, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)
        self.input_shape = (3, 16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autograd.profiler.record_function("users_own_range"):  # looked through
            x = torch.relu(self.bn(self.conv(x)))
        x = nn.functional.channel_shuffle(self.dw(x), 2)
        a, b = x.chunk(2, dim=1)
        x = self.gconv(torch.cat([a, b + 1], dim=1))
        return self.fc(x.mean([2, 3]))


def test_every_category_op_lands_in_exactly_one_category() -> None:
    assert set(OP_CATEGORIES.values()) <= set(CATEGORIES)
    assert op_category("aten.convolution") == op_category("aten::convolution") == "conv"
    assert op_category("aten::channel_shuffle") == "data"
    assert op_category("aten::relu_") == "elementwise"
    assert op_category("mylib::mystery") == "other" and not is_known_op("mylib::mystery")


def test_conv_kinds_follow_groups() -> None:
    assert conv_kind(1, 64) == "dense"
    assert conv_kind(64, 64) == "depthwise"
    assert conv_kind(3, 240) == "group"
    assert conv_kind(None, None) == "unknown"


def test_a_user_op_can_be_given_a_category() -> None:
    add_category("mylib::fused_shuffle", "data")
    try:
        assert op_category("mylib.fused_shuffle") == "data"
        with pytest.raises(BenchError, match="choose one of conv"):
            add_category("mylib::x", "shuffling")
    finally:
        OP_CATEGORIES.pop("mylib::fused_shuffle")


def node(name: str, time_us: float, *children: OpNode) -> OpNode:
    """A profiled call-tree node."""
    return OpNode(name, time_us, list(children))


def test_matching_takes_the_dispatch_op_below_wrappers_and_keeps_all_time() -> None:
    counted = [
        CountedOp("conv", "aten.convolution"),
        CountedOp("bn", "aten.empty"),
        CountedOp("bn", "aten.native_batch_norm"),
    ]
    conv = node("aten::conv2d", 100, node("aten::convolution", 95, node("aten::empty", 5)))
    bn = node(
        "aten::batch_norm", 30,
        node("aten::_batch_norm_impl_index", 28,
             node("aten::empty", 1), node("aten::native_batch_norm", 25)),
    )  # fmt: skip
    rows = match_ops(counted, [ProfiledOp("conv", conv), ProfiledOp("bn", bn)])
    assert [(r.op, r.index, r.matched) for r in rows] == [
        ("aten::convolution", 0, True),
        ("aten::empty", 1, True),
        ("aten::native_batch_norm", 2, True),
    ]
    # the wrappers' own time goes to the longest matched op of each profiled op
    assert [r.time_us for r in rows] == [100, 1, 29]


def test_matching_uses_the_module_and_aliases_of_device_kernels() -> None:
    counted = [CountedOp("a", "aten.relu_"), CountedOp("b", "aten.native_batch_norm")]
    profiled = [
        ProfiledOp("b", node("aten::batch_norm", 10, node("aten::cudnn_batch_norm", 9))),
        ProfiledOp("b", node("aten::relu_", 2)),
    ]
    rows = match_ops(counted, profiled)
    # relu_ of module a was not profiled: it keeps time 0; relu_ of module b matches nothing
    assert rows == [
        MatchedRow("a", "aten::relu_", 0, 0.0, False),
        MatchedRow("b", "aten::native_batch_norm", 1, 10.0, True),
        MatchedRow("b", "aten::relu_", None, 2.0, False),
    ]


def test_matching_keeps_every_counted_record_and_every_profiled_microsecond() -> None:
    counted = [CountedOp("m", f"aten.op{k}") for k in range(5)]
    profiled = [ProfiledOp("m", node(f"aten::op{k}", 10.0 + k)) for k in (0, 2, 4)]
    profiled.insert(1, ProfiledOp("m", node("aten::surprise", 7.0)))
    rows = match_ops(counted, profiled)
    assert sorted(r.index for r in rows if r.index is not None) == list(range(5))
    assert sum(r.time_us for r in rows) == pytest.approx(sum(p.node.time_us for p in profiled))
    assert [r.index for r in rows if not r.matched] == [None, 1, 3]


def test_median_rows_takes_each_rows_median_over_iterations() -> None:
    iterations = [
        [MatchedRow("m", "aten::x", 0, t, True), MatchedRow("m", "aten::y", None, 1.0, False)]
        for t in (1000.0, 3000.0, 2000.0)
    ]
    iterations[1].pop()  # the unmatched op was seen in two of three iterations: median of 1, 1, 0
    timed = median_rows(iterations)
    assert [r.op for r in timed.rows] == ["aten::x", "aten::y"]
    assert timed.time_ms == [2.0, pytest.approx(0.001)]


def test_the_profiler_sees_the_counted_ops_of_a_known_network_in_order() -> None:
    model = Known().eval()
    records = counted_records(model, (1, 3, 16, 16), torch.float32)
    (iteration,) = profile_forward(model, torch.randn(1, 3, 16, 16), "cpu", 1, 1)
    rows = match_ops([CountedOp(r.module, r.op) for r in records], iteration.ops)
    assert all(r.matched for r in rows) and len(rows) == len(records)
    order = [r.op for r in rows if r.op != "aten::empty"]
    assert order[:4] == [
        "aten::convolution",
        "aten::native_batch_norm",
        "aten::relu",
        "aten::convolution",
    ]
    assert "aten::channel_shuffle" in order and "aten::cat" in order and order[-1] == "aten::addmm"
    assert {r.module for r in rows if r.op == "aten::convolution"} == {"conv", "dw", "gconv"}


@pytest.fixture(scope="module")
def known_profile():
    """The known network profiled once for several tests."""
    return profile_model(Known(), **FAST)


def test_shares_add_up_and_every_row_has_one_category(known_profile) -> None:
    result = known_profile
    for share in ("time_share", "mult_adds_share", "mac_share"):
        total = sum(values[share] for values in result.categories.values())
        assert total == pytest.approx(1.0, abs=1e-9), share
        kinds = result.categories["conv"]["kinds"].values()
        assert sum(k[share] for k in kinds) == pytest.approx(result.categories["conv"][share])
    assert set(result.layers["category"]) <= set(CATEGORIES)
    assert result.total_profiled_ms == pytest.approx(result.layers["time_ms"].sum())
    assert set(result.categories["conv"]["kinds"]) == {"dense", "depthwise", "group"}
    assert result.unmatched_counted == 0 and result.unmatched_profiled == 0
    assert result.latency_median_ms > 0 and math.isfinite(result.overhead_ratio)


def test_layers_carry_counted_cost_and_achieved_rates(known_profile) -> None:
    layers = known_profile.layers
    fc = layers[layers["op"] == "aten::addmm"].iloc[0]
    assert fc["module"] == "fc" and fc["mult_adds"] == 8 * 4 and fc["category"] == "linear"
    conv = layers[layers["module"] == "conv"].iloc[0]
    assert conv["mult_adds"] == 8 * 16 * 16 * 27 and conv["conv_kind"] == "dense"
    assert conv["output_shape"] == "1x8x16x16"
    expected = 2 * conv["mult_adds"] / (conv["time_ms"] / 1000) / 1e9
    assert conv["gflops_per_s"] == pytest.approx(expected)


def test_time_shares_are_the_suite_columns(known_profile) -> None:
    shares = known_profile.time_shares()
    assert list(shares) == [f"time_share_{c}" for c in CATEGORIES]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_on_a_g1_block_convolutions_carry_all_mult_adds() -> None:
    result = profile_model("g1:c1=16,c2=16,blocks=2,size=8", **FAST)
    assert result.categories["conv"]["mult_adds_share"] == pytest.approx(1.0)
    assert result.categories["conv"]["time_share"] == pytest.approx(1.0)


@pytest.mark.slow
def test_shufflenet_v2_spends_time_moving_data() -> None:
    result = profile_model("shufflenet_v2_x1_0", input_shape="3x64x64", **FAST)
    data = result.categories["data"]
    assert data["time_share"] > 0 and data["mult_adds_share"] == 0
    assert "aten::channel_shuffle" in set(result.layers["op"])
    assert result.unmatched_counted == 0


def test_unknown_runtime_and_bad_iterations_are_refused() -> None:
    with pytest.raises(BenchError, match="choose one of eager"):
        profile_model(Known(), runtime="aoti")
    with pytest.raises(BenchError, match="onnxruntime, openvino"):
        profile_model(Known(), runtime="compile")
    with pytest.raises(BenchError, match="iterations must be >= 1"):
        profile_model(Known(), iterations=0)


def test_cli_prints_one_json_object_with_the_fields() -> None:
    result = CliRunner().invoke(
        app, ["profile", "g1:c1=8,c2=8,blocks=1,size=8", "--threads", "1", "--iterations", "2",
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["categories"]) == set(CATEGORIES)
    assert {"total_profiled_ms", "latency_median_ms", "layers"} <= set(data)
    assert data["layers"][0]["op"] == "aten::convolution"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_kernels_device_time_is_matched_to_the_counted_ops() -> None:
    result = profile_model(Known(), device="cuda", batch=8, **FAST)
    assert result.device == "cuda" and result.unmatched_counted == 0
    assert sum(v["time_share"] for v in result.categories.values()) == pytest.approx(1.0)
    assert result.categories["conv"]["time_ms"] > 0


def test_unmatched_counts_ignore_views_and_allocations() -> None:
    records, _ = record_forward(Known(), (1, 3, 16, 16), torch.float32, resolve_rules(None))
    free = next(i for i, r in enumerate(records) if r.kind == "free")
    costly = next(i for i, r in enumerate(records) if r.kind == "compute")
    rows = [MatchedRow("", records[i].op, i, 0.0, False) for i in (free, costly)]
    assert unmatched_costly(rows, records) == 1


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (["--batch", "0"], ["batch"]),
        (["--input", "3x0x8"], ["3x0x8"]),
        (["--input", "5x8x8"], ["cannot profile input 5x8x8"]),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], parts: list[str]) -> None:
    bad = CliRunner().invoke(app, ["profile", "g1:c1=8,c2=8,blocks=1,size=8", *args])
    text = " ".join(bad.stderr.split())
    assert bad.exit_code == 2 and "Traceback" not in bad.output and text.startswith("error:")
    assert all(part in text for part in parts)


def test_cli_table_and_a_bad_runtime_in_one_line() -> None:
    ok = CliRunner().invoke(app, ["profile", "g1:c1=8,c2=8,blocks=1,size=8", "--iterations", "2"])
    assert ok.exit_code == 0 and "where the time goes" in ok.stdout and "top" in ok.stdout
    bad = CliRunner().invoke(app, ["profile", "g1:c1=8,c2=8", "--runtime", "aoti"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "choose one of eager" in " ".join(bad.stderr.split())


SUITE = """\
name: prof
defaults: {threads: 1, budget_s: 0.2, metrics: [count, profile]}
cases:
  - name: blocks
    models: ["g1:c1=8,c2=8,blocks=1,size=8", "g3:c=8,fragments=2,layout=parallel,blocks=1,size=8"]
  - name: compiled
    runtimes: [compile]
    models: ["g1:c1=8,c2=8,blocks=1,size=8"]
"""


def test_suite_metric_profile_adds_category_share_columns(tmp_path) -> None:
    suite = tmp_path / "prof.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    run_dir = run_suite(suite, out=tmp_path / "run", calibrate=False, quick=True)
    rows = load_run(run_dir).rows.set_index("case")
    assert set(rows["status"]) == {"ok"}, rows["error"].tolist()
    eager = rows[rows["runtime"] == "eager"]
    shares = eager[[f"time_share_{c}" for c in CATEGORIES]].sum(axis=1)
    assert shares.round(6).tolist() == [1.0, 1.0]
    assert eager["mult_adds_share_conv"].round(6).tolist() == [1.0, 1.0]
    assert eager["mult_adds_share_conv_dense"].round(6).tolist() == [1.0, 1.0]
    assert eager["time_share_conv_depthwise"].tolist() == [0.0, 0.0]
    top = json.loads(eager["profile_top_layers"].iloc[0])
    assert top[0]["op"] == "aten::convolution" and top[0]["mult_adds"] > 0
    compiled = rows[rows["runtime"] == "compile"].iloc[0]
    assert "not profiled per op" in compiled["profile_note"]
    report = write_report([run_dir], tmp_path / "report.md")
    text = report.read_text(encoding="utf-8")
    assert "## Where the time goes" in text and "Top layers by time, g1:c1=8" in text
    assert "| 100.0% / 100.0%" in text  # conv: all the time, all the mult-adds
    assert (tmp_path / "report_files" / "breakdown_cpu_b1_t1_eager.png").stat().st_size > 0


def test_ort_profile_events_split_into_runs_with_their_kernels() -> None:
    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        {"cat": "Node", "name": "relu_nchwc_kernel_time", "ts": 10, "dur": 30,
         "args": {"op_name": "Conv", "input_type_shape": [{"float": [1, 8, 4, 4]},
                                                         {"float": [8, 1, 3, 3]}]}},
        {"cat": "Node", "name": "relu_nchwc_fence_before", "ts": 9, "dur": 0, "args": {}},
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 50},
        {"cat": "Node", "name": "node_cat_kernel_time", "ts": 210, "dur": 5,
         "args": {"op_name": "Concat"}},
    ]  # fmt: skip
    first, second = split_runs(events)
    assert [(n.name, n.op_type, n.time_us) for n in first] == [("relu_nchwc", "Conv", 30.0)]
    assert [n.name for n in second] == ["node_cat"]
    assert ort_conv_kind(first[0]) == "depthwise"
    graph = ExportedGraph({"node_relu": "Relu"}, {"relu": "Relu"}, Counter(Relu=1, Conv=1))
    assert ort_absorbed(first[0], graph) == "Relu"
    assert ort_absorbed(second[0], graph) == ""  # only convs and matmuls absorb
    assert fused_counts("onnxruntime", first, graph) == {"Relu": 1}
    fused = NodeTiming("node_conv", "FusedConv", 4.0)  # conv + activation in one kernel
    assert ort_absorbed(fused, graph) == "activation"
    assert fused_counts("onnxruntime", [fused], graph) == {"Relu": 1}  # it still runs the conv


def test_openvino_nodes_not_run_are_shown_fused_into_the_node_before() -> None:
    step = [
        NodeTiming("x", "Parameter", 0.0, executed=False),
        NodeTiming("conv", "GroupConvolution", 12.0, detail={"exec_type": "brgconv_dw_f32"}),
        NodeTiming("relu", "Relu", 0.0, executed=False),
        NodeTiming("cat", "Concat", 3.0),
    ]
    rows = step_rows("openvino", step, ExportedGraph({}, {}, Counter()))
    assert rows == [
        ("conv", "openvino::GroupConvolution", 12.0, "Relu", "depthwise"),
        ("cat", "openvino::Concat", 3.0, "", ""),
    ]
    assert fused_counts("openvino", step, ExportedGraph({}, {}, Counter())) == {"Relu": 1}


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_runtime_profilers_give_nodes_in_the_same_categories(runtime: str) -> None:
    result = profile_model("shufflenet_v2_x0_5", input_shape="3x32x32", runtime=runtime, **FAST)
    nodes = result.layers[result.layers["op"].str.startswith(f"{runtime}::")]
    assert len(nodes) > 10 and nodes["time_ms"].sum() == pytest.approx(result.total_profiled_ms)
    assert {"conv", "data", "pooling", "linear"} <= set(nodes["category"])
    counted = result.layers[result.layers["op"] == "aten::convolution"]["mult_adds"].sum()
    conv_share = counted / result.layers["mult_adds"].sum()  # counted on PyTorch's graph
    assert result.categories["conv"]["mult_adds_share"] == pytest.approx(conv_share)
    assert (nodes["mult_adds"] == 0).all()
    assert sum(v["time_share"] for v in result.categories.values()) == pytest.approx(1.0)
    assert result.fused_ops.get("Relu", 0) > 0 and (nodes["fused"] == "Relu").any()


def test_node_rows_carry_time_and_the_counted_rows_carry_the_cost() -> None:
    model = Known().eval()
    records, _ = record_forward(model, (1, 3, 16, 16), torch.float32, resolve_rules(None))
    nodes = NodeProfile(
        [NodeRow("conv_relu", "openvino::Convolution", 3.0, "Relu", "dense"),
         NodeRow("shuffle", "openvino::ShuffleChannels", 1.0, "", "")],
        wall_ms=4.5, fused_ops={"Relu": 1},
    )  # fmt: skip
    layers = layer_table(model, records, node_timed_rows(nodes, records))
    categories = category_table(layers)
    assert categories["conv"]["time_share"] == pytest.approx(0.75)
    assert categories["data"]["time_share"] == pytest.approx(0.25)
    assert categories["conv"]["mult_adds_share"] > 0.9  # from the counted rows, which have no time
    assert layers.loc[0, "fused"] == "Relu" and layers.loc[0, "mult_adds"] == 0
    assert (layers["time_ms"][2:] == 0).all() and len(layers) == 2 + len(records)


def test_only_the_cpu_copy_of_an_iteration_range_counts() -> None:
    def event(name: str, device: DeviceType, parent: object = None) -> SimpleNamespace:
        return SimpleNamespace(name=name, device_type=device, cpu_parent=parent)

    assert is_iteration_range(event("bench.iteration:0", DeviceType.CPU))
    assert not is_iteration_range(event("bench.iteration:0", DeviceType.CUDA))  # GPU mirror
    assert not is_iteration_range(event("bench.iteration:0", DeviceType.CPU, parent=object()))
    assert not is_iteration_range(event("aten::add", DeviceType.CPU))
