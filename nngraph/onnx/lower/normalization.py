"""ONNX lowerings of dropout's mask and batch normalization (nngraph/ops/normalization.py).

The mask's hash is `counter_hash` itself, run on `_Int64` names that turn + * % into ONNX Add,
Mul and Mod nodes: one formula for every backend. Training-mode batch norm is ReduceMean and
elementwise nodes (ONNX's BatchNormalization in training mode returns running statistics, not the
batch's); inference-mode batch norm is BatchNormalization; layer norm is LayerNormalization."""
from __future__ import annotations

import numpy as np

from nngraph.onnx.lower.registry import LOWERINGS, onnx_shape
from nngraph.ops.normalization import counter_hash, keep_threshold, stat_axes


class _Int64:
    """An int64 ONNX value for which +, * and % (with another one or a Python int) add nodes."""

    def __init__(self, b, name: str):
        self.b, self.name = b, name

    def _other(self, x) -> str:
        return x.name if isinstance(x, _Int64) else self.b.const(np.int64(x))

    def _apply(self, op: str, x) -> _Int64:
        return _Int64(self.b, self.b.op(op, self.name, self._other(x)))

    def __add__(self, x):
        return self._apply("Add", x)

    def __mul__(self, x):
        return self._apply("Mul", x)

    def __mod__(self, x):
        return self._apply("Mod", x)

    __radd__, __rmul__ = __add__, __mul__


def _dropout_mask(b, node, inputs):
    like = node.inputs[0]
    rate, dtype = node.attrs.get("rate", 0.5), like.dtype
    count = b.op("Size", inputs[0])
    index = b.op("Reshape", b.op("Range", b.const(np.int64(0)), count, b.const(np.int64(1))),
                 onnx_shape(b, like, inputs[0]))
    step = _Int64(b, b.op("Cast", inputs[1], to=b.dtype("int64")))
    h = counter_hash(_Int64(b, index), step, int(node.attrs.get("seed", 0)))
    keep = b.op("GreaterOrEqual", h.name, b.const(np.int64(keep_threshold(rate))))
    return [b.op("Where", keep, b.const(np.asarray(1 / (1 - rate), dtype)), b.const(np.asarray(0, dtype)))]


def _batch_norm(b, node, inputs):
    x = node.inputs[0]
    axes, eps = b.ints(stat_axes(x.type.rank)), np.asarray(node.attrs.get("eps", 1e-5), x.dtype)
    mean = b.op("ReduceMean", inputs[0], axes, keepdims=1)
    centred = b.op("Sub", inputs[0], mean)
    var = b.op("ReduceMean", b.op("Mul", centred, centred), axes, keepdims=1)
    normal = b.op("Div", centred, b.op("Sqrt", b.op("Add", var, b.const(eps))))
    y = b.op("Add", b.op("Mul", normal, b.op("Unsqueeze", inputs[1], axes)), b.op("Unsqueeze", inputs[2], axes))
    return [y, b.op("Squeeze", mean, axes), b.op("Squeeze", var, axes)]


def _batch_norm_inference(b, node, inputs):
    """BatchNormalization's `epsilon` is a float32 attribute: what float32 cannot hold of a float64
    model's eps is added to the variance first."""
    eps = node.attrs.get("eps", 1e-5)
    eps32, inputs = float(np.float32(eps)), list(inputs)
    if node.inputs[0].dtype == "float64" and eps32 != eps:
        inputs[4] = b.op("Add", inputs[4], b.const(np.float64(eps - eps32)))
    return [b.op("BatchNormalization", *inputs, epsilon=eps32)]


def _layer_norm(b, node, inputs):
    """ONNX LayerNormalization (opset 17), whose outputs are y, mean and inv_std as this op's. Its
    epsilon is a float32 attribute and its statistics are computed in float32 (stash_type), so a
    float64 model is lowered to the formula instead."""
    x, eps = node.inputs[0], node.attrs.get("eps", 1e-5)
    if x.dtype != "float64":
        return b.op("LayerNormalization", *inputs, axis=-1, epsilon=float(np.float32(eps)), n_outputs=3)
    last = b.ints([-1])
    mean = b.op("ReduceMean", inputs[0], last, keepdims=1)
    centred = b.op("Sub", inputs[0], mean)
    var = b.op("ReduceMean", b.op("Mul", centred, centred), last, keepdims=1)
    inv = b.op("Reciprocal", b.op("Sqrt", b.op("Add", var, b.const(np.asarray(eps, x.dtype)))))
    return [b.op("Add", b.op("Mul", b.op("Mul", centred, inv), inputs[1]), inputs[2]), mean, inv]


LOWERINGS.update({
    "layer_norm": _layer_norm,
    "dropout_mask": _dropout_mask,
    "batch_norm": _batch_norm,
    "batch_norm_inference": _batch_norm_inference,
})
