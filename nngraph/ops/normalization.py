"""Training-time layers: dropout's mask and batch normalization, in their training and inference forms.

dropout_mask(like, step; rate, seed): a tensor shaped like `like` holding 0 (dropped) or
1 / (1 - rate) (kept), so `x * mask` is inverted dropout. The mask is a counter-based hash of each
element's flat index, the training step counter `step` and the node's `seed` (`counter_hash`
below), in int64 arithmetic that never overflows: every backend and ONNX draw the same mask, a
step's mask is reproducible, and the gradient of `x * mask` reuses it. No VJP: the mask is a
constant of the step. The inference graph has no dropout (nngraph/passes/modes.py).

batch_norm(x, gamma, beta; eps) -> y, mean, var: x is [N, C, ...] (channels on axis 1, as conv
layers' [N, C, H, W]); the statistics are over every axis but 1, the variance biased;
y = gamma * (x - mean) / sqrt(var + eps) + beta. Its VJP is the closed form (not autodiff through
the mean and variance). batch_norm_inference(x, gamma, beta, mean, var; eps) normalizes with given
(running) statistics instead: what the inference graph uses.

layer_norm(x, gain, bias; eps) -> y, mean, inv_std: each vector along x's last axis (d features)
normalized on its own, y = (x - mean) * inv_std * gain + bias with inv_std = 1 / sqrt(var + eps),
the variance biased; gain and bias are [d]; mean and inv_std are [..., 1], as ONNX
LayerNormalization's outputs, which the closed-form VJP reuses.
"""
from __future__ import annotations

import math

import numpy as np

from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Value
from nngraph.ir.registry import defop
from nngraph.ir.types import TensorType
from nngraph.ops.rules import require, require_float

# ---------------------------------------------------------------- dropout
MODULUS = 2147483647                 # 2**31 - 1, a prime: every value stays below 2**62 before a `%`
STEP_MUL, SEED_MUL, OFFSET, INDEX_MUL, MIX_MUL, MIX_ADD = 40503, 2654435, 1013904223, 48271, 16807, 12345


def counter_hash(index, step, seed: int):
    """The mask's random integer in [0, MODULUS) for int64 `index` and `step` (arrays of any
    library with +, * and %, or ints): a key from (step, seed), then two rounds of a linear
    congruential step followed by a squaring, which breaks the lattice a linear map leaves."""
    key = (step * STEP_MUL + (seed * SEED_MUL + OFFSET) % MODULUS) % MODULUS
    h = ((index % MODULUS) * INDEX_MUL + key) % MODULUS
    h = (h * h + key) % MODULUS
    h = (h * MIX_MUL + MIX_ADD) % MODULUS
    return (h * h + 1) % MODULUS


def keep_threshold(rate: float) -> int:
    """An element is kept when its hash is at least this: probability 1 - rate, compared exactly in integers."""
    return int(math.ceil(rate * MODULUS))


def _dropout_mask_infer(types, attrs):
    like, step = types
    require_float(like, "dropout")
    require(step.rank == 0, f"dropout's step counter must be a scalar, got {step}")
    rate = attrs.get("rate", 0.5)
    require(isinstance(rate, (int, float)) and 0 <= rate < 1, f"dropout's rate must be in [0, 1), got {rate!r}")
    return [like]


defop("dropout_mask", _dropout_mask_infer, arity=2)


# ---------------------------------------------------------------- batch normalization
def stat_axes(rank: int) -> tuple[int, ...]:
    return (0,) + tuple(range(2, rank))


def _channels(types, opname: str) -> TensorType:
    x = types[0]
    require_float(x, opname)
    require(x.rank >= 2, f"`{opname}` normalizes [N, C, ...] over all axes but the channels (1); got {x}")
    for t in types[1:]:
        require(t.dtype == x.dtype, f"`{opname}` needs operands of one dtype, got {x.dtype} and {t.dtype}")
        require(t.rank == 1 and (t.shape[0] == x.shape[1] or not all(isinstance(d, int) for d in (t.shape[0], x.shape[1]))),
                f"`{opname}`: scale, shift and statistics are [C] = [{x.shape[1]}] for {x}, got {t}")
    return TensorType(x.dtype, (x.shape[1],))


def _batch_norm_infer(types, attrs):
    channel = _channels(types, "batch_norm")
    return [types[0], channel, channel]


def _inference_infer(types, attrs):
    _channels(types, "batch_norm_inference")
    return [types[0]]


def per_channel(e: Emitter, v: Value, x: Value) -> Value:
    """A [C] vector shaped [1, C, 1, ...] to broadcast against x."""
    return e("expand_dims", v, axes=stat_axes(x.type.rank))


def _inverse_std(e: Emitter, var: Value, x: Value, eps: float) -> Value:
    return e("div", e.const(1, x), e("sqrt", e("add", per_channel(e, var, x), e.const(eps, x))))


def _is_zero(v: Value) -> bool:
    return v.node is not None and v.node.op == "constant" and not np.any(v.node.attrs["value"])


def _batch_norm_vjp(e, n, gs, w):
    x, gamma, _ = n.inputs
    _, mean, var = n.outputs
    gy, gmean, gvar = gs
    axes = stat_axes(x.type.rank)
    centred = e("sub", x, per_channel(e, mean, x))
    inv = _inverse_std(e, var, x, n.attrs.get("eps", 1e-5))
    xhat = e("mul", centred, inv)
    dxhat = e("mul", gy, per_channel(e, gamma, x))
    dx = e("mul", inv, e("sub", e("sub", dxhat, e("mean", dxhat, axes=axes, keepdims=True)),
                         e("mul", xhat, e("mean", e("mul", dxhat, xhat), axes=axes, keepdims=True))))
    if not (_is_zero(gmean) and _is_zero(gvar)):     # the statistics outputs read too (d var/dx = 2 (x - mean) / M)
        count = e("dim_size", x, axes=axes, dtype=x.dtype)
        stats = e("add", per_channel(e, gmean, x), e("mul", e.const(2, x), e("mul", centred, per_channel(e, gvar, x))))
        dx = e("add", dx, e("div", stats, count))
    return [dx if w[0] else None,
            e("sum", e("mul", gy, xhat), axes=axes, keepdims=False) if w[1] else None,
            e("sum", gy, axes=axes, keepdims=False) if w[2] else None]


def _inference_vjp(e, n, gs, w):
    """y = (x - mean) * s + beta with s = gamma / sqrt(var + eps): linear in x, beta and mean."""
    x, gamma, _, mean, var = n.inputs
    gy, axes = gs[0], stat_axes(x.type.rank)
    inv = _inverse_std(e, var, x, n.attrs.get("eps", 1e-5))
    centred = e("sub", x, per_channel(e, mean, x))
    scale = e("mul", per_channel(e, gamma, x), inv)
    summed = e("sum", gy, axes=axes, keepdims=False)
    dvar = None
    if w[4]:        # d/dvar of (var + eps)^-1/2 = -1/2 (var + eps)^-3/2
        inv3 = e("sum", e("mul", e("mul", gy, centred), e("mul", inv, e("mul", inv, inv))), axes=axes, keepdims=False)
        dvar = e("mul", e("mul", gamma, inv3), e.const(-0.5, x))
    return [e("mul", gy, scale) if w[0] else None,
            e("sum", e("mul", gy, e("mul", centred, inv)), axes=axes, keepdims=False) if w[1] else None,
            summed if w[2] else None,
            e("neg", e("mul", summed, e("reshape_like", scale, gamma))) if w[3] else None,
            dvar]


defop("batch_norm", _batch_norm_infer, _batch_norm_vjp, arity=3)
defop("batch_norm_inference", _inference_infer, _inference_vjp, arity=5)


# ---------------------------------------------------------------- layer normalization
def _layer_norm_infer(types, attrs):
    x, gain, bias = types
    require_float(x, "layer_norm")
    require(x.rank >= 1, f"`layer_norm` normalizes the last axis, got a scalar {x}")
    for name, t in (("gain", gain), ("bias", bias)):
        require(t.dtype == x.dtype, f"`layer_norm` needs operands of one dtype, got {x.dtype} and {t.dtype}")
        require(t.rank == 1 and (t.shape[0] == x.shape[-1] or not all(isinstance(d, int) for d in (t.shape[0], x.shape[-1]))),
                f"`layer_norm`'s {name} is [d] = [{x.shape[-1]}] for {x}, got {t}")
    require(isinstance(attrs.get("eps", 1e-5), (int, float)) and attrs.get("eps", 1e-5) >= 0,
            f"`layer_norm`'s eps must be a number >= 0, got {attrs.get('eps')!r}")
    stat = x.with_shape(x.shape[:-1] + (1,))
    return [x, stat, stat]


def _layer_norm_vjp(e, n, gs, w):
    """xhat = (x - mean) inv_std; dxhat = dy * gain;
    dx = inv_std (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), means over the last axis;
    when the statistics are read too: d mean/dx = 1/d, d inv_std/dx = -inv_std^2 xhat / d."""
    x, gain, _ = n.inputs
    _, mean, inv = n.outputs
    gy, gmean, ginv = gs
    last, leading = (x.type.rank - 1,), tuple(range(x.type.rank - 1))
    xhat = e("mul", e("sub", x, mean), inv)
    y_read = not _is_zero(gy)           # (a gradient of the VJP itself may read only the statistics)
    dx = None
    if w[0] and y_read:
        dxhat = e("mul", gy, gain)
        dx = e("mul", inv, e("sub", e("sub", dxhat, e("mean", dxhat, axes=last, keepdims=True)),
                             e("mul", xhat, e("mean", e("mul", dxhat, xhat), axes=last, keepdims=True))))
    if w[0] and not (_is_zero(gmean) and _is_zero(ginv)):
        stats = e("div", e("sub", gmean, e("mul", e("mul", ginv, e("mul", inv, inv)), xhat)),
                  e("dim_size", x, axes=last, dtype=x.dtype))
        dx = stats if dx is None else e("add", dx, stats)

    def over_leading(v):
        return e("sum", v, axes=leading, keepdims=False) if leading else v
    return [dx, over_leading(e("mul", gy, xhat)) if w[1] and y_read else None,
            over_leading(gy) if w[2] and y_read else None]


defop("layer_norm", _layer_norm_infer, _layer_norm_vjp, arity=3)
