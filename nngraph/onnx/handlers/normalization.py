"""Normalization: BatchNormalization (inference form), LayerNormalization, InstanceNormalization and
LRN, written with nngraph's primitives (so they differentiate and export like any composite)."""
from __future__ import annotations

from onnx import TensorProto

from nngraph.ir import Value
from nngraph.onnx.context import Ctx, Reject
from nngraph.onnx.handlers.common import need_float, norm_axis, same_dtype, target_dtype
from nngraph.onnx.handlers.registry import handles


# ---------------------------------------------------------------- normalization (inference)
@handles("BatchNormalization")
def _batch_norm(cx: Ctx) -> Value:
    """Inference form: (x - mean) / sqrt(var + eps) * scale + bias, per channel (axis 1)."""
    x, scale, bias, mean, var = (cx.x(i) for i in range(5))
    need_float(cx, x)
    cx.ignore("momentum", "consumed_inputs")
    if cx.attr("training_mode", 0) or (cx.opset < 7 and not cx.attr("is_test", 0)):
        raise Reject("training-mode batch normalization")
    if not cx.attr("spatial", 1):
        raise Reject("spatial=0")
    if len([o for o in cx.node.output if o]) > 1:
        raise Reject("running statistics outputs")
    eps = cx.attr("epsilon", 1e-5)

    def per_channel(p: Value) -> Value:      # [C] -> [C, 1, ..., 1] to line up with axis 1
        trailing = tuple(range(1, x.type.rank - 1))
        return cx.op("expand_dims", p, axes=trailing) if trailing and p.type.rank == 1 else p

    for p in (scale, bias, mean, var):
        same_dtype(cx, x, p)
    inv = cx.op("div", per_channel(scale), cx.op("sqrt", cx.op("add", per_channel(var), cx.like(eps, x))))
    return cx.op("add", cx.op("mul", cx.op("sub", x, per_channel(mean)), inv), per_channel(bias))


@handles("LayerNormalization")
def _layer_norm(cx: Ctx) -> list[Value]:
    x = cx.x(0)
    need_float(cx, x)
    rank = x.type.rank
    axis = norm_axis(cx.attr("axis", -1), rank)
    eps = cx.attr("epsilon", 1e-5)
    stash = target_dtype(cx.attr("stash_type", TensorProto.FLOAT))
    axes = tuple(range(axis, rank))
    h = x if stash == x.dtype else cx.op("cast", x, dtype=stash)
    mean = cx.op("mean", h, axes=axes, keepdims=True)
    centred = cx.op("sub", h, mean)
    var = cx.op("mean", cx.op("mul", centred, centred), axes=axes, keepdims=True)
    inv_std = cx.op("div", cx.like(1, h), cx.op("sqrt", cx.op("add", var, cx.like(eps, h))))
    y = cx.op("mul", centred, inv_std)
    y = y if stash == x.dtype else cx.op("cast", y, dtype=x.dtype)
    y = cx.op("mul", y, cx.x(1))
    if cx.has(2):
        y = cx.op("add", y, cx.x(2))
    return [y, mean, inv_std]


@handles("InstanceNormalization")
def _instance_norm(cx: Ctx) -> Value:
    """Each channel of each example normalized over its spatial axes (biased variance), then
    scale * . + B per channel: GroupNorm's export."""
    x, scale, bias = cx.x(0), cx.x(1), cx.x(2)
    need_float(cx, x)
    if x.type.rank < 3:
        raise Reject(f"an input of rank {x.type.rank} (it needs [N, C, spatial...])")
    for p in (scale, bias):
        same_dtype(cx, x, p)
    axes = tuple(range(2, x.type.rank))
    mean = cx.op("mean", x, axes=axes, keepdims=True)
    centred = cx.op("sub", x, mean)
    var = cx.op("mean", cx.op("mul", centred, centred), axes=axes, keepdims=True)
    normal = cx.op("div", centred, cx.op("sqrt", cx.op("add", var, cx.like(cx.attr("epsilon", 1e-5), x))))

    def per_channel(p: Value) -> Value:      # [C] -> [C, 1, ..., 1] to line up with axis 1
        return cx.op("expand_dims", p, axes=tuple(range(1, x.type.rank - 1)))

    return cx.op("add", cx.op("mul", normal, per_channel(scale)), per_channel(bias))


@handles("LRN")
def _lrn(cx: Ctx) -> Value:
    """Local response normalization across channels: x / (bias + alpha / size * s) ** beta, where
    s sums x**2 over the `size` channels around each one (the window cut at the edges: zero padding)."""
    x = cx.x(0)
    need_float(cx, x)
    size = cx.attr("size")
    if x.type.rank < 3 or size < 1:
        raise Reject(f"an input of rank {x.type.rank}" if x.type.rank < 3 else f"size {size}")
    alpha, beta, bias = cx.attr("alpha", 1e-4), cx.attr("beta", 0.75), cx.attr("bias", 1.0)
    before = (size - 1) // 2
    pads = [0] * (2 * x.type.rank)
    pads[1], pads[x.type.rank + 1] = before, size - 1 - before
    squares = cx.op("pad", cx.op("mul", x, x), pads=tuple(pads), value=0.0)
    window = None
    for i in range(size):       # channel c of slice i is padded channel c + i
        end = i - (size - 1) or None
        part = cx.op("slice", squares, axes=(1,), starts=(i,), ends=(end,), steps=(1,))
        window = part if window is None else cx.op("add", window, part)
    denominator = cx.op("add", cx.like(bias, x), cx.op("mul", cx.like(alpha / size, x), window))
    return cx.op("div", x, cx.op("pow", denominator, cx.like(beta, x)))
