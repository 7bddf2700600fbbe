"""Reductions along axes (sum, mean, max, argmax) and the softmax family, normalized along an axis."""
from __future__ import annotations

from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Value
from nngraph.ir.registry import defop
from nngraph.ir.types import TensorType
from nngraph.ops.rules import norm_axes, norm_axis, reduction, require_float


def expanded_shape(g: Value, axes, rank: int) -> list:
    """Shape of a reduction result with `keepdims` restored."""
    axes = norm_axes(axes, rank)
    it = iter(g.shape)
    return [1 if i in axes else next(it) for i in range(rank)]


def keepdims_axes(node) -> tuple[int, ...]:
    return norm_axes(node.attrs.get("axes"), node.inputs[0].type.rank)


def restore_reduced(e: Emitter, g: Value, node) -> Value:
    """Broadcast a reduction's gradient back over the reduced axes."""
    x = node.inputs[0]
    if not node.attrs.get("keepdims", False) and keepdims_axes(node):
        g = e("expand_dims", g, axes=keepdims_axes(node))
    return e("broadcast_like", g, x)


def _axis_rule(opname):
    def infer(types, attrs):
        require_float(types[0], opname)
        norm_axis(attrs.get("axis", -1), types[0].rank)
        return [types[0]]
    return infer


def _softmax_vjp(e, n, gs, w):   # y * (g - sum(g * y))
    y, axis = n.out, n.attrs.get("axis", -1)
    dot = e("sum", e("mul", gs[0], y), axes=(axis,), keepdims=True)
    return [e("mul", y, e("sub", gs[0], dot))]


def _log_softmax_vjp(e, n, gs, w):   # g - softmax * sum(g)
    axis = n.attrs.get("axis", -1)
    total = e("sum", gs[0], axes=(axis,), keepdims=True)
    return [e("sub", gs[0], e("mul", e("exp", n.out), total))]


defop("softmax", _axis_rule("softmax"), _softmax_vjp, arity=1)
defop("log_softmax", _axis_rule("log_softmax"), _log_softmax_vjp, arity=1)


def _argmax_infer(types, attrs):
    t = types[0]
    axis = norm_axis(attrs.get("axis", -1), t.rank)
    shape = [1 if i == axis else d for i, d in enumerate(t.shape)] if attrs.get("keepdims", False) else \
            [d for i, d in enumerate(t.shape) if i != axis]
    return [TensorType("int64", tuple(shape))]


defop("argmax", _argmax_infer, arity=1)

# ---------------------------------------------------------------- reductions
defop("sum", reduction("sum"), arity=1, vjp=lambda e, n, gs, w: [restore_reduced(e, gs[0], n)])


def _mean_vjp(e, n, gs, w):
    count = e("dim_size", n.inputs[0], axes=keepdims_axes(n), dtype=gs[0].dtype)
    return [restore_reduced(e, e("div", gs[0], count), n)]


defop("mean", reduction("mean"), _mean_vjp, arity=1)


def _max_vjp(e, n, gs, w):
    """The gradient goes to the maxima, shared equally between ties."""
    x = n.inputs[0]
    peak = restore_reduced(e, n.out, n)
    hits = e("cast", e("equal", x, peak), dtype=x.dtype)
    share = e("div", hits, e("sum", hits, axes=keepdims_axes(n), keepdims=True))
    return [e("mul", share, restore_reduced(e, gs[0], n))]


defop("max", reduction("max"), _max_vjp, arity=1)
