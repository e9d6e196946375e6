"""TensorFlow: the network's Keras twin with the PyTorch weights ported, in a `tf.function`.

The twin (`netdefs.keras_resnet`) has one layer per PyTorch module, so the port
(`netdefs.keras_port`) copies every tensor and checks that each found its counterpart. The
input batch is the engine's, transposed to NHWC. `prepare` traces the `tf.function` (the graph
is built once, outside the samples); TensorFlow optimises the graph (Grappler) on the first
call, which is therefore in `first_ms`. Threads: intra-op = the case's threads, inter-op = 1,
set through `tf.config.threading` before TensorFlow first runs; TensorFlow fixes them for the
life of the process, so this runtime measures in a process of its own (`own_process`), one per
thread count. `mode: train` times one training step as the source material trains: forward,
cross-entropy on fixed random labels, backward and an Adam update with an exponentially
decaying learning rate (eager PyTorch's training step uses SGD).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from netdefs.keras_resnet import keras_twin  # first: it sets KERAS_BACKEND and TF's log level

# isort: split
import keras
import numpy as np
import tensorflow as tf
import torch
from torch import nn

from bench.core.errors import BenchError, first_line
from bench.runtimes.base import Runtime, Session, Target
from netdefs.keras_port import port_state_dict

INTER_OP_THREADS = 1
ADAM_LR, DECAY_STEPS, DECAY_RATE = 1e-3, 1000, 0.96  # Adam on an exponentially decaying rate
LABEL_SEED = 0


def configure_threads(threads: int) -> tuple[int, int]:
    """Set intra-op = `threads`, inter-op = 1 before TensorFlow runs; BenchError if it cannot."""
    wanted = (threads, INTER_OP_THREADS)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(INTER_OP_THREADS)
    except RuntimeError:  # TensorFlow already runs: its pools are fixed for this process
        current = thread_settings()
        if current != wanted:
            shown = "/".join(str(n or "default") for n in current)
            raise BenchError(
                f"TensorFlow already runs in this process with {shown} intra-/inter-op "
                f"threads and cannot change to {threads}/{INTER_OP_THREADS}; measure each thread "
                "count in a process of its own (measure_latency does so unless told otherwise)"
            ) from None
    return wanted


def thread_settings() -> tuple[int, int]:
    """TensorFlow's configured (intra-op, inter-op) thread counts (0: its default)."""
    threading = tf.config.threading
    return (
        threading.get_intra_op_parallelism_threads(),
        threading.get_inter_op_parallelism_threads(),
    )


def ported_twin(model: nn.Module) -> tuple[keras.Model, int]:
    """The Keras twin of the model's spec with its weights; (twin, tensors ported)."""
    spec = getattr(model, "spec", None)
    if not isinstance(spec, str):
        raise BenchError(
            f"runtime tensorflow needs a netdefs network (a model with a spec); "
            f"{type(model).__name__} has none"
        )
    try:
        twin = keras_twin(spec)
        report = port_state_dict(twin, model.state_dict())
    except ValueError as exc:  # netdefs' one-line messages: no twin, bad option, port mismatch
        raise BenchError(f"runtime tensorflow: {first_line(exc)}") from None
    return twin, report.ported


def nhwc(inputs: torch.Tensor) -> tf.Tensor:
    """The engine's NCHW batch as a TensorFlow NHWC float32 tensor (a copy)."""
    array = inputs.detach().float().cpu().permute(0, 2, 3, 1).contiguous().numpy()
    return tf.constant(array)


def infer_function(twin: keras.Model, x: tf.Tensor) -> tf.types.experimental.PolymorphicFunction:
    """The twin's inference forward on the bound batch, as a traced `tf.function`."""
    forward = tf.function(lambda: twin(x, training=False))
    forward.get_concrete_function()  # trace now, outside the samples
    return forward


def keras_training_loss(twin: keras.Model, x: tf.Tensor) -> Callable[[tf.Tensor], tf.Tensor]:
    """Cross-entropy on fixed random labels for (N, classes) logits, else the output's sum."""
    classes = twin.output.shape[-1] if len(twin.output.shape) == 2 else None
    if classes is None:
        return tf.reduce_sum
    labels = np.random.default_rng(LABEL_SEED).integers(0, classes, size=int(x.shape[0]))
    y = tf.constant(labels, dtype=tf.int64)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return lambda logits: cross_entropy(y, logits)


def train_function(twin: keras.Model, x: tf.Tensor) -> tf.types.experimental.PolymorphicFunction:
    """One training step (forward, loss, backward, Adam update) as a traced `tf.function`."""
    schedule = keras.optimizers.schedules.ExponentialDecay(ADAM_LR, DECAY_STEPS, DECAY_RATE)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    optimizer.build(twin.trainable_variables)
    loss_of = keras_training_loss(twin, x)

    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_of(twin(x, training=True))
        grads = tape.gradient(loss, twin.trainable_variables)
        optimizer.apply_gradients(zip(grads, twin.trainable_variables, strict=True))
        return loss

    traced = tf.function(step)
    traced.get_concrete_function()  # trace now, outside the samples
    return traced


def function_session(function: Callable[[], tf.Tensor]) -> Session:
    """A session that calls the traced function and keeps its last result."""
    last: list[Any] = []

    def run() -> None:
        last[:] = [function()]

    return Session(step=run, output=lambda: torch.from_numpy(np.array(last[0])).float())


class TensorFlowRuntime(Runtime):
    """The Keras twin (TensorFlow backend) with ported weights, in a traced `tf.function`."""

    name = "tensorflow"
    modes: ClassVar[tuple[str, ...]] = ("infer", "train")
    packages: ClassVar[tuple[str, ...]] = ("tensorflow-cpu", "keras", "torch")
    own_process: ClassVar[bool] = True
    # Keras runs its own graph; and a meta forward there would import torch._dynamo (and
    # triton) into a process that has loaded TensorFlow, which crashes in triton's import
    torch_graph: ClassVar[bool] = False

    def check(self, target: Target) -> None:
        """Beyond mode and device: float32 only (the twins are float32 Keras models)."""
        super().check(target)
        if target.dtype != torch.float32:
            raise BenchError(
                f"runtime tensorflow times float32 only, not {str(target.dtype).split('.')[-1]}"
            )

    def prepare(self, model: nn.Module, inputs: torch.Tensor, target: Target) -> Session:
        """Set the threads, build the twin, port the weights, trace the step."""
        intra, inter = configure_threads(target.threads)
        twin, ported = ported_twin(model)
        x = nhwc(inputs)
        make = infer_function if target.mode == "infer" else train_function
        try:
            function = make(twin, x)
        except Exception as exc:  # TensorFlow raises many types while tracing
            raise BenchError(f"TensorFlow cannot trace the model: {first_line(exc)}") from None
        session = function_session(function)
        session.details.update(
            ported_tensors=ported, intra_op_threads=intra, inter_op_threads=inter
        )
        if target.mode == "train":
            session.details["optimizer"] = "adam, exponential decay"
        session.keep += [twin, x, function]
        return session
