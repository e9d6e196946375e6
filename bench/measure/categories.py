"""What kind of work an op is: the ShuffleNet V2 paper's run-time decomposition (its Figure 2).

One table keyed by op name (`aten::x`, the profiler's spelling; `aten.x` is accepted too), each
op in exactly one category. An op the table does not know lands in `other` and is reported by
name (`unknown_ops`), never dropped. Convolutions are split below `conv` by their groups:
`dense` (groups 1), `depthwise` (one group per input channel), `group` (anything between).
Torch-free: the run schema takes the category names from here.
"""

from __future__ import annotations

from bench.core.errors import BenchError

CATEGORIES = ("conv", "elementwise", "data", "pooling", "normalization", "linear", "other")
CONV_KINDS = ("dense", "group", "depthwise", "unknown")

_CONV = (
    "convolution", "_convolution", "conv1d", "conv2d", "conv3d", "conv_transpose2d",
    "mkldnn_convolution", "cudnn_convolution", "thnn_conv2d", "_slow_conv2d_forward",
    "_conv_depthwise2d", "conv_depthwise3d", "slow_conv_dilated2d", "convolution_overrideable",
    "_nnpack_spatial_convolution", "cudnn_convolution_relu", "cudnn_convolution_add_relu",
)  # fmt: skip
_ELEMENTWISE = (
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "neg", "exp", "log", "sqrt",
    "rsqrt", "pow", "abs", "tanh", "tanh_", "maximum", "minimum", "where", "addcmul", "addcdiv",
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "clamp", "clamp_", "clamp_min",
    "clamp_min_", "threshold", "threshold_", "leaky_relu", "leaky_relu_", "elu", "elu_", "sigmoid",
    "sigmoid_", "silu", "silu_", "gelu", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_",
    "mish", "softplus", "dropout", "feature_dropout",
)  # fmt: skip
_DATA = (
    "channel_shuffle", "native_channel_shuffle", "pixel_shuffle", "pixel_unshuffle", "cat",
    "concat", "stack", "split", "split_with_sizes", "chunk", "unbind", "clone", "contiguous",
    "copy_", "_to_copy", "to", "constant_pad_nd", "pad", "reflection_pad2d", "replication_pad2d",
    "view", "_unsafe_view", "reshape", "_reshape_alias", "flatten", "transpose", "transpose_",
    "permute", "t", "t_", "expand", "slice", "select", "narrow", "squeeze", "squeeze_",
    "unsqueeze", "unsqueeze_", "as_strided", "as_strided_", "alias", "detach", "detach_",
    "lift_fresh", "resize_", "upsample_nearest2d", "upsample_bilinear2d",
)  # fmt: skip
_POOLING = (
    "max_pool2d", "max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool2d",
    "avg_pool3d", "adaptive_avg_pool2d", "_adaptive_avg_pool2d", "adaptive_max_pool2d",
    "mkldnn_max_pool2d", "mean", "sum", "amax", "amin",  # reductions: global pooling here
)  # fmt: skip
_NORMALIZATION = (
    "batch_norm", "_batch_norm_impl_index", "native_batch_norm",
    "_native_batch_norm_legit_no_training", "_native_batch_norm_legit", "cudnn_batch_norm",
    "miopen_batch_norm", "layer_norm", "native_layer_norm", "group_norm", "native_group_norm",
    "instance_norm",
)  # fmt: skip
_LINEAR = ("linear", "addmm", "mm", "bmm", "baddbmm", "matmul", "mv", "dot", "addmv")
_OTHER = (
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
    "full_like", "fill_", "zero_", "_softmax", "softmax", "_log_softmax", "log_softmax",
)  # fmt: skip

# Node types of the runtimes' own profilers (ONNX Runtime: ONNX and contrib ops, its layout
# reorders; OpenVINO CPU: its operation set and plugin nodes), spelled `onnxruntime::Conv`.
_NODE_TYPES = {
    "conv": ("Conv", "FusedConv", "NchwcConv", "ConvTranspose", "QLinearConv", "Convolution",
             "GroupConvolution", "ConvolutionBackpropData"),
    "elementwise": ("Relu", "Clip", "Add", "Sub", "Mul", "Div", "Sigmoid", "HardSigmoid",
                    "HardSwish", "Tanh", "LeakyRelu", "Gelu", "BiasGelu", "FastGelu", "Eltwise",
                    "Multiply", "Subtract", "Divide", "Clamp", "Swish", "Mish", "Exp", "Sqrt"),
    "data": ("Reshape", "Transpose", "Concat", "Split", "VariadicSplit", "Slice",
             "StridedSlice", "Gather", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Pad",
             "ShuffleChannels", "Reorder", "ReorderInput", "ReorderOutput", "DepthToSpace",
             "SpaceToDepth", "Expand", "Tile", "Cast", "Convert", "Copy", "MemcpyToHost",
             "MemcpyFromHost"),
    "pooling": ("MaxPool", "AveragePool", "AvgPool", "GlobalAveragePool", "GlobalMaxPool",
                "NchwcMaxPool", "NchwcAveragePool", "NchwcGlobalAveragePool", "ReduceMean",
                "ReduceSum", "ReduceMax", "Pooling", "Reduce"),
    "normalization": ("BatchNormalization", "LayerNormalization", "InstanceNormalization",
                      "GroupNormalization", "MVN", "NormalizeL2"),
    "linear": ("Gemm", "MatMul", "FullyConnected", "FusedMatMul"),
    "other": ("Softmax", "LogSoftmax", "Parameter", "Result", "Constant", "Input", "Output"),
}  # fmt: skip

OP_CATEGORIES: dict[str, str] = {
    f"aten::{name}": category
    for category, names in (
        ("conv", _CONV),
        ("elementwise", _ELEMENTWISE),
        ("data", _DATA),
        ("pooling", _POOLING),
        ("normalization", _NORMALIZATION),
        ("linear", _LINEAR),
        ("other", _OTHER),
    )
    for name in names
}
OP_CATEGORIES.update(
    {
        f"{runtime}::{node_type}": category
        for category, node_types in _NODE_TYPES.items()
        for node_type in node_types
        for runtime in ("onnxruntime", "openvino")
    }
)


def profiler_name(op: str) -> str:
    """An op's name as the profiler spells it: `aten.convolution` -> `aten::convolution`."""
    if "::" in op:
        return op
    namespace, sep, name = op.partition(".")
    return f"{namespace}::{name}" if sep else op


def op_category(op: str) -> str:
    """The category of an op name (`other` when the table does not know it)."""
    return OP_CATEGORIES.get(profiler_name(op), "other")


def is_known_op(op: str) -> bool:
    """Whether the category table names this op (unknown ops are listed under `other`)."""
    return profiler_name(op) in OP_CATEGORIES


def conv_kind(groups: int | None, in_channels: int | None) -> str:
    """`dense`, `group` or `depthwise` for a convolution's groups (`unknown` without them)."""
    if groups is None:
        return "unknown"
    if groups == 1:
        return "dense"
    return "depthwise" if groups == in_channels else "group"


def add_category(op: str, category: str) -> None:
    """Put an op of your own (`namespace::name`) in one of the categories."""
    if category not in CATEGORIES:
        raise BenchError(f"category {category!r}: choose one of {', '.join(CATEGORIES)}")
    OP_CATEGORIES[profiler_name(op)] = category
