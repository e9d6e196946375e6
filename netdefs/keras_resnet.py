"""Keras 3 twins (TensorFlow backend) of the ResNet family, tensor for tensor like `netdefs.resnet`.

Built from the same family description (`netdefs.resnet.VARIANTS` and `resnet_layout`), NHWC,
with every layer named as the PyTorch module it mirrors (`layer2.0.downsample.0`), so that each
PyTorch tensor has exactly one Keras counterpart (`netdefs.keras_port` copies them over):

- the stride sits on the bottleneck's 3x3 (torchvision's "v1.5"; keras.applications puts it on
  the first 1x1), the ResNeXts' 3x3 is a grouped `Conv2D`;
- no conv biases, BatchNorm epsilon 1e-5 and momentum 0.9 (PyTorch's 0.1 counted the other way);
- PyTorch pads k // 2 on every side; TensorFlow's `same` pads (k - s) // 2 at the top/left and
  the rest at the bottom/right, which at stride 2 on an even size is one row fewer at the top
  and so another computation. Every padded conv and the max-pool here is `ZeroPadding2D(k // 2)`
  then `valid`. Zero padding is exact for the max-pool too: it follows a ReLU (inputs >= 0).

Importing this module imports TensorFlow (seconds): `import netdefs` does not, only the
`tensorflow` runtime and its tests do.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "tensorflow"  # before keras is first imported

# torch._dynamo (which imports triton) must be loaded before TensorFlow: the other order
# crashes the process (SIGSEGV in triton's import) the first time anything imports dynamo
# afterwards, e.g. a meta-device forward of the counter in the same process
import torch._dynamo  # noqa: E402, F401

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # most of TensorFlow's C++ log lines off

import keras  # noqa: E402
from keras import layers as kl  # noqa: E402

from netdefs.registry import TORCHVISION_PREFIX, parse_spec  # noqa: E402
from netdefs.resnet import VARIANTS, resnet_layout  # noqa: E402
from netdefs.validate import head_options, shown  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"the Keras twins need the tensorflow backend; keras was imported with "
        f"{keras.backend.backend()} before netdefs.keras_resnet set KERAS_BACKEND"
    )

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # Keras: new = m * old + (1 - m) * batch; PyTorch's momentum 0.1 is 1 - m
EXPANSION = 4  # the bottleneck's output is 4 x its planes
KT = keras.KerasTensor  # a symbolic tensor of the functional model being built
FAMILY_SPEC = "resnet"
HEAD_OPTIONS = ("num_classes", "include_top", "zero_init_residual")
FAMILY_OPTIONS = ("layers", "block", "groups", "width_per_group", *HEAD_OPTIONS)


def pytorch_padding(kernel: int) -> int:
    """The padding PyTorch's ResNet uses on every side of a k x k conv or pool: k // 2."""
    return kernel // 2


def conv(x: KT, filters: int, kernel: int, stride: int, name: str, groups: int = 1) -> KT:
    """Bias-free conv padded as PyTorch pads: ZeroPadding2D(k // 2), then `valid`."""
    pad = pytorch_padding(kernel)
    if pad:
        x = kl.ZeroPadding2D(pad, name=f"{name}.pad")(x)
    return kl.Conv2D(
        filters, kernel, strides=stride, padding="valid", groups=groups, use_bias=False, name=name
    )(x)


def batch_norm(x: KT, name: str) -> KT:
    """BatchNormalization with PyTorch's epsilon and momentum."""
    return kl.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def relu(x: KT, name: str) -> KT:
    """ReLU as its own named layer."""
    return kl.ReLU(name=name)(x)


def shortcut(x: KT, filters: int, stride: int, name: str) -> KT:
    """The input itself, or the 1x1 projection + BN when depth or stride changes."""
    if stride == 1 and x.shape[-1] == filters:
        return x
    return batch_norm(conv(x, filters, 1, stride, f"{name}.downsample.0"), f"{name}.downsample.1")


def basic_block(x: KT, planes: int, stride: int, groups: int, base_width: int, name: str) -> KT:
    """Two 3x3 convs with a residual connection (ResNet-18/34)."""
    out = relu(
        batch_norm(conv(x, planes, 3, stride, f"{name}.conv1"), f"{name}.bn1"), f"{name}.relu1"
    )
    out = batch_norm(conv(out, planes, 3, 1, f"{name}.conv2"), f"{name}.bn2")
    out = kl.Add(name=f"{name}.add")([out, shortcut(x, planes, stride, name)])
    return relu(out, f"{name}.relu")


def bottleneck_block(
    x: KT, planes: int, stride: int, groups: int, base_width: int, name: str
) -> KT:
    """1x1 -> 3x3 (grouped, carries the stride) -> 1x1 with a residual connection."""
    width = int(planes * (base_width / 64.0)) * groups
    out = relu(batch_norm(conv(x, width, 1, 1, f"{name}.conv1"), f"{name}.bn1"), f"{name}.relu1")
    out = conv(out, width, 3, stride, f"{name}.conv2", groups)
    out = relu(batch_norm(out, f"{name}.bn2"), f"{name}.relu2")
    out = batch_norm(conv(out, planes * EXPANSION, 1, 1, f"{name}.conv3"), f"{name}.bn3")
    out = kl.Add(name=f"{name}.add")([out, shortcut(x, planes * EXPANSION, stride, name)])
    return relu(out, f"{name}.relu")


KERAS_BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def stem(x: KT) -> KT:
    """7x7/2 conv, BN, ReLU and the 3x3/2 max-pool."""
    x = relu(batch_norm(conv(x, 64, 7, 2, "conv1"), "bn1"), "relu")
    x = kl.ZeroPadding2D(pytorch_padding(3), name="maxpool.pad")(x)
    return kl.MaxPooling2D(3, strides=2, padding="valid", name="maxpool")(x)


def keras_resnet(
    layers: str = "2-2-2-2",
    block: str = "basic",
    groups: int = 1,
    width_per_group: int = 64,
    num_classes: int = 1000,
    include_top: bool = True,
) -> keras.Model:
    """The Keras twin of `netdefs.resnet.resnet(...)` with the same options, input (H, W, 3)."""
    counts, block, groups, width_per_group = resnet_layout(layers, block, groups, width_per_group)
    num_classes, include_top = head_options(num_classes, include_top)
    inputs = keras.Input((None, None, 3), name="x")
    x = stem(inputs)
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), counts, strict=True), 1):
        for index in range(blocks):
            stride = 2 if stage > 1 and index == 0 else 1
            name = f"layer{stage}.{index}"
            x = KERAS_BLOCKS[block](x, planes, stride, groups, width_per_group, name)
    x = kl.GlobalAveragePooling2D(name="avgpool")(x)
    if include_top:
        x = kl.Dense(num_classes, name="fc")(x)
    return keras.Model(inputs, x, name=f"resnet_{block}_{'-'.join(map(str, counts))}")


def twin_names() -> list[str]:
    """The networks that have a Keras twin: the ResNet/ResNeXt variants and the family spec."""
    return [*VARIANTS, f"{FAMILY_SPEC}:<options>", f"{TORCHVISION_PREFIX}<one of these>"]


def keras_twin(spec: str) -> keras.Model:
    """The Keras twin of a ResNet spec (`resnet50`, `resnext50_32x4d:num_classes=5`, `resnet:...`).

    torchvision's own ResNets (`torchvision:resnet50`) share our state dict and so the twin.
    ValueError naming the networks that have a twin for any other spec, and the allowed options
    for an unknown one.
    """
    name, options = parse_spec(spec)
    bare = name.removeprefix(TORCHVISION_PREFIX)
    if bare not in VARIANTS and name != FAMILY_SPEC:
        raise ValueError(
            f"network {shown(name)} has no Keras twin; networks with one: {', '.join(twin_names())}"
        )
    name = bare
    allowed = FAMILY_OPTIONS if name == FAMILY_SPEC else HEAD_OPTIONS
    if unknown := sorted(set(options) - set(allowed)):
        raise ValueError(
            f"invalid option {shown(unknown[0])} in {shown(spec)}; allowed: {', '.join(allowed)}"
        )
    options.pop("zero_init_residual", None)  # an initialisation: the port overwrites it
    if name in VARIANTS:
        variant = VARIANTS[name]
        layout = (variant.layers, variant.block, variant.groups, variant.width_per_group)
        options = {**dict(zip(FAMILY_OPTIONS, layout, strict=False)), **options}
    return keras_resnet(**options)  # type: ignore[arg-type]
