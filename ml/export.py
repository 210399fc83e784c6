"""Export the trained PyTorch model to TFLite.

The network is rebuilt op by op in TensorFlow from the PyTorch weights, with
batch norm folded into the convolutions (the EfficientNet-Lite blocks already
use TensorFlow's SAME padding, so both graphs compute the same function). The
calibration temperature and the softmax are part of the graph. TFLite's
converter then writes:

* ``int8``: full-integer quantisation calibrated on training images, float32
  input and output. It avoids the dynamic-range FULLY_CONNECTED v12 kernels,
  so tflite-runtime 2.14 loads it as well as ai-edge-litert;
* ``float16``: float16 weights, float32 compute, the accuracy reference.

The input has a fixed batch of 1; callers may resize it for batches.

A run trained with a vote head (ml/vote_loss.py) gets a second output, ``vote_fractions``: the
expected share of volunteers choosing each Galaxy Zoo answer within its question (the Dirichlet
mean of the head's concentrations), read off the same pooled features as the classifier. It has
``NUM_ANSWERS`` values against the probabilities' 10, and the TFLite file does not keep the
outputs in the order the graph returns them, so readers tell them apart by their width
(ml/evaluate.py, classifier/core/interpreters.py). In the int8 export the per-question
normalisation stays float (``FLOAT_OPS``; the converter's quantisation debugger leaves listed
operations unquantised); everything before it is int8 as in a model without the head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classifier.core.galaxy_zoo import ANSWER_SLICES
from ml.vote_loss import ALPHA_MIN, ALPHA_RANGE, VoteHead

VOTE_FRACTIONS = "vote_fractions"
# The int8 export keeps the vote fractions' normalisation float: tflite-runtime 2.14 has no int8
# division, and int8 question totals would leave each question's fractions a step off 1.
FLOAT_OPS = ("SUM", "DIV", "CONCATENATION")

TensorFn = Callable[[Any], Any]
Representative = Callable[[], Iterator[list[np.ndarray]]]


def _folded(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Convolution weights (TensorFlow layout) and bias with the batch norm folded in."""
    scale = bn.weight.detach().numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
    bias = bn.bias.detach().numpy() - bn.running_mean.numpy() * scale
    weight = conv.weight.detach().numpy()
    if conv.groups > 1:  # depthwise: (C, 1, kh, kw) -> (kh, kw, C, 1)
        kernel = weight.transpose(2, 3, 0, 1) * scale[None, None, :, None]
    else:  # (O, I, kh, kw) -> (kh, kw, I, O)
        kernel = weight.transpose(2, 3, 1, 0) * scale[None, None, None, :]
    return kernel.astype(np.float32), bias.astype(np.float32)


def inference_function(
    model: torch.nn.Module, temperature: float, vote_head: VoteHead | None = None
) -> Callable:
    """A TensorFlow function (NHWC image -> probabilities) equal to ``model`` in eval mode; with
    ``vote_head``, (probabilities, vote fractions) equal to ml.vote_loss.expected_fractions.

    Built from constants rather than Keras layers: the converter then sees no
    variables, and batch norm is folded exactly as TFLite would fold it.
    """
    import tensorflow as tf

    model.eval()

    def conv_bn(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d, activate: bool) -> TensorFn:
        kernel, bias = (tf.constant(a) for a in _folded(conv, bn))
        stride = conv.stride[0]
        depthwise = conv.groups > 1

        def apply(x: Any) -> Any:
            if depthwise:
                y = tf.nn.depthwise_conv2d(x, kernel, [1, stride, stride, 1], "SAME")
            else:
                y = tf.nn.conv2d(x, kernel, stride, "SAME")
            y = tf.nn.bias_add(y, bias)
            return tf.nn.relu6(y) if activate else y

        return apply

    stem = conv_bn(model._conv_stem, model._bn0, True)
    blocks = []
    for block in model._blocks:
        args = block._block_args
        stages = []
        if args.expand_ratio != 1:
            stages.append(conv_bn(block._expand_conv, block._bn0, True))
        stages.append(conv_bn(block._depthwise_conv, block._bn1, True))
        stages.append(conv_bn(block._project_conv, block._bn2, False))
        stride = int(np.atleast_1d(args.stride)[0])
        residual = args.id_skip and stride == 1 and args.input_filters == args.output_filters
        blocks.append((stages, residual))
    head = conv_bn(model._conv_head, model._bn1, True)
    dense_w = tf.constant(model._fc.weight.detach().numpy().T / temperature)
    dense_b = tf.constant(model._fc.bias.detach().numpy() / temperature)

    def features(image: Any) -> Any:
        x = stem(image)
        for stages, residual in blocks:
            y = x
            for stage in stages:
                y = stage(y)
            x = x + y if residual else y
        return tf.reduce_mean(head(x), axis=[1, 2])

    def probabilities(image: Any) -> Any:
        return tf.nn.softmax(tf.matmul(features(image), dense_w) + dense_b, name="probabilities")

    if vote_head is None:
        return probabilities
    vote_head.eval()
    vote_w = tf.constant(vote_head.linear.weight.detach().numpy().T)
    vote_b = tf.constant(vote_head.linear.bias.detach().numpy())

    def probabilities_and_votes(image: Any) -> tuple[Any, Any]:
        x = features(image)
        probs = tf.nn.softmax(tf.matmul(x, dense_w) + dense_b, name="probabilities")
        alpha = ALPHA_MIN + ALPHA_RANGE * tf.sigmoid(tf.matmul(x, vote_w) + vote_b)
        means = [
            alpha[:, part] / tf.reduce_sum(alpha[:, part], axis=1, keepdims=True)
            for part in ANSWER_SLICES.values()
        ]
        return probs, tf.concat(means, axis=1, name=VOTE_FRACTIONS)

    return probabilities_and_votes


def convert(
    model: torch.nn.Module,
    image_size: int,
    temperature: float,
    quantization: str,
    representative: Callable[[], Iterator[list[np.ndarray]]] | None = None,
    vote_head: VoteHead | None = None,
) -> bytes:
    import tensorflow as tf

    holder = tf.Module()
    holder.serve = tf.function(
        inference_function(model, temperature, vote_head),
        input_signature=[tf.TensorSpec([1, image_size, image_size, 3], tf.float32, "image")],
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [holder.serve.get_concrete_function()], holder
    )
    converter = _configure(converter, quantization, representative)
    if vote_head is None or quantization != "int8":
        return converter.convert()
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=representative,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(FLOAT_OPS)),
    )
    return debugger.get_nondebug_quantized_model()


def _configure(converter: Any, quantization: str, representative: Representative | None) -> Any:
    import tensorflow as tf

    if quantization == "int8":
        if representative is None:
            raise ValueError("int8 quantisation needs a representative dataset")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    elif quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization != "float32":
        raise ValueError(f"unknown quantisation {quantization!r}")
    return converter


def export(
    model: torch.nn.Module,
    image_size: int,
    temperature: float,
    out: Path,
    quantization: str,
    representative_inputs: np.ndarray | None = None,
    vote_head: VoteHead | None = None,
) -> Path:
    """Write ``out`` and return it. ``representative_inputs``: preprocessed NHWC float32;
    ``vote_head``: the run's, for the second output."""

    def representative() -> Iterator[list[np.ndarray]]:
        for row in representative_inputs:
            yield [row[None].astype(np.float32)]

    data = convert(
        model,
        image_size,
        temperature,
        quantization,
        representative if representative_inputs is not None else None,
        vote_head,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def load_vote_head(run_dir: Path, model: torch.nn.Module) -> VoteHead | None:
    """The run's vote head (``vote_head.pt``, saved with the best weights), or None."""
    path = run_dir / "vote_head.pt"
    if not path.exists():
        return None
    head = VoteHead(model._fc.in_features)
    head.load_state_dict(torch.load(path))
    return head.eval()
