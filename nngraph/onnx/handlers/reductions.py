"""Reductions: ReduceSum and the other Reduce* ops, ArgMax and ArgMin, and the softmax family
(Softmax, LogSoftmax, Hardmax)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nngraph.ir import Value
from nngraph.onnx.context import Ctx, DimRef, Reject
from nngraph.onnx.handlers.common import arange_along, flatten_2d, need_float, norm_axis, resolved, slice_axis, squeeze
from nngraph.onnx.handlers.registry import HANDLERS, handles


# ---------------------------------------------------------------- selection
@handles("ArgMax", "ArgMin")
def _argmax(cx: Ctx) -> Value:
    x = cx.x(0)
    axis = norm_axis(cx.attr("axis", 0), x.type.rank)
    keepdims = bool(cx.attr("keepdims", 1))
    if x.dtype == "bool":
        raise Reject("dtype bool")
    if cx.node.op_type == "ArgMin":
        x = cx.op("neg", x)      # the first minimum of x is the first maximum of -x
    if not cx.attr("select_last_index", 0):
        return cx.op("argmax", x, axis=axis, keepdims=keepdims)
    # the last maximum: the largest index among the positions equal to the maximum
    peak = cx.op("max", x, axes=(axis,), keepdims=True)
    hit = cx.op("equal", x, peak)
    index = cx.op("where", hit, arange_along(cx, x, axis), cx.const(-1, "int64"))
    return cx.op("max", index, axes=(axis,), keepdims=keepdims)


# ---------------------------------------------------------------- softmax family
def _softmax_like(nn_op: str):
    def handler(cx: Ctx) -> Value:
        x = cx.x(0)
        need_float(cx, x)
        rank = x.type.rank
        if cx.opset >= 13:
            return cx.op(nn_op, x, axis=norm_axis(cx.attr("axis", -1), rank))
        # before opset 13 the input is seen as 2-D: [prod(shape[:axis]), prod(shape[axis:])]
        axis = norm_axis(cx.attr("axis", 1), rank)
        if axis == rank - 1:
            return cx.op(nn_op, x, axis=axis)
        flat = cx.op(nn_op, flatten_2d(cx, x, axis), axis=1)
        return cx.op("reshape_like", flat, x)
    return handler


HANDLERS["Softmax"], HANDLERS["LogSoftmax"] = _softmax_like("softmax"), _softmax_like("log_softmax")


@handles("Hardmax")
def _hardmax(cx: Ctx) -> Value:
    x = cx.x(0)
    need_float(cx, x)
    rank = x.type.rank
    if cx.opset >= 13:
        axis = norm_axis(cx.attr("axis", -1), rank)
        flat = x
    else:
        axis = norm_axis(cx.attr("axis", 1), rank)
        flat = x if axis == rank - 1 else flatten_2d(cx, x, axis)
        axis = flat.type.rank - 1
    # 1 at the first maximum along the axis: compare argmax with the positions
    first = cx.op("argmax", flat, axis=axis, keepdims=True)
    out = cx.op("cast", cx.op("equal", arange_along(cx, flat, axis), first), dtype=x.dtype)
    return out if flat is x else cx.op("reshape_like", out, x)


# ---------------------------------------------------------------- reductions
def _reduce_axes(cx: Ctx, x: Value, input_since: int) -> tuple[int, ...] | None:
    """The axes to reduce, or None for no reduction (noop_with_empty_axes with no axes)."""
    if cx.opset >= input_since:
        axes = cx.axes_input(1)
        noop = cx.attr("noop_with_empty_axes", 0)
    else:
        axes = cx.attr("axes", None)
        noop = 0
    if not axes:
        if noop:
            return None
        axes = range(x.type.rank)
    return tuple(sorted({norm_axis(int(a), x.type.rank) for a in axes}))


def _reduction(body: Callable[[Ctx, Value, tuple, bool], Value], input_since: int = 18, empty_ok: bool = True,
               float_only: bool = False):
    def handler(cx: Ctx) -> Value:
        x = cx.x(0)
        keepdims = bool(cx.attr("keepdims", 1))
        if float_only:
            need_float(cx, x)
        axes = _reduce_axes(cx, x, input_since)
        if axes is None:
            return body(cx, x, None, keepdims)
        if not empty_ok and any(x.shape[a] == 0 for a in axes):
            raise Reject("reducing an empty axis (the result would be ±inf)")
        return body(cx, x, axes, keepdims)
    return handler


def _sum_body(cx, x, axes, keepdims):
    if x.dtype == "bool":
        raise Reject("dtype bool")
    return x if axes is None else cx.op("sum", x, axes=axes, keepdims=keepdims)


def _mean_body(cx, x, axes, keepdims):
    if x.dtype == "bool":
        raise Reject("dtype bool")
    return x if axes is None else cx.op("mean", x, axes=axes, keepdims=keepdims)


def _max_body(cx, x, axes, keepdims):
    return x if axes is None else cx.op("max", x, axes=axes, keepdims=keepdims)


def _min_body(cx, x, axes, keepdims):
    if axes is None:
        return x
    if x.dtype == "bool":     # min of bools = not max(not x)
        inv = cx.op("equal", x, cx.like(False, x))
        return cx.op("equal", cx.op("max", inv, axes=axes, keepdims=keepdims), cx.like(False, x))
    return cx.op("neg", cx.op("max", cx.op("neg", x), axes=axes, keepdims=keepdims))


def _sum_square_body(cx, x, axes, keepdims):
    return _sum_body(cx, cx.op("mul", x, x), axes, keepdims)


def _l1_body(cx, x, axes, keepdims):
    return _sum_body(cx, cx.op("abs", x), axes, keepdims)


def _l2_body(cx, x, axes, keepdims):
    return cx.op("sqrt", _sum_square_body(cx, x, axes, keepdims))


def _log_sum_body(cx, x, axes, keepdims):
    return cx.op("log", _sum_body(cx, x, axes, keepdims))


def _log_sum_exp_body(cx, x, axes, keepdims):
    if axes is None:
        return cx.op("log", cx.op("exp", x))
    # shift by the maximum so exp cannot overflow; an all -inf slice would give NaN, so shift by 0 there
    peak = cx.op("max", x, axes=axes, keepdims=True)
    finite = cx.op("where", cx.op("equal", cx.op("abs", peak), cx.like(np.inf, x)), cx.like(0, x), peak)
    total = cx.op("sum", cx.op("exp", cx.op("sub", x, finite)), axes=axes, keepdims=True)
    out = cx.op("add", cx.op("log", total), finite)
    return out if keepdims else squeeze(cx, out, axes)


def _prod_body(cx, x, axes, keepdims):
    """nngraph has no product: the slices along each axis multiplied together (exact for
    integers, differentiable). The product of a shape's entries is dim_size."""
    if axes is None:
        return x
    if x.dtype == "bool":
        raise Reject("dtype bool")
    entries = cx.imp.dims.get(x.uid)
    if entries is not None and not keepdims:
        return _product_of_entries(cx, entries, x.dtype)
    if any(x.shape[a] == 0 for a in axes):
        return _empty_product(cx, x, axes, keepdims)
    out = x
    for a in axes:
        size = x.shape[a]
        if not isinstance(size, int):
            raise Reject("ReduceProd over an axis of symbolic size")
        if size > PRODUCT_LIMIT:
            raise Reject(f"ReduceProd over more than {PRODUCT_LIMIT} elements of an axis")
        factors = [slice_axis(cx, out, a, i, i + 1) for i in range(size)] if size > 1 else [out]
        out = factors[0]
        for f in factors[1:]:
            out = cx.op("mul", out, f)
    return out if keepdims else squeeze(cx, out, axes)


# ReduceProd multiplies slices one by one: meant for shapes and small axes
PRODUCT_LIMIT = 64


def _product_of_entries(cx: Ctx, entries, dtype: str) -> Value:
    """The product of a shape vector's entries: dim_size of each value they read sizes of, times
    the known sizes."""
    entries = resolved(entries)
    known = math.prod(e for e in entries if isinstance(e, int))
    axes_of: dict[int, tuple[Value, list[int]]] = {}
    for e in entries:
        if isinstance(e, DimRef):
            axes_of.setdefault(e.source.uid, (e.source, []))[1].append(e.axis)
    factors = [cx.op("dim_size", source, axes=tuple(axes), dtype=dtype) for source, axes in axes_of.values()]
    if known != 1 or not factors:
        factors.append(cx.const(known, dtype))
    out = factors[0]
    for f in factors[1:]:
        out = cx.op("mul", out, f)
    return out


def _empty_product(cx: Ctx, x: Value, axes, keepdims) -> Value:
    """The product over an empty axis is 1."""
    shape = [1 if a in axes else d for a, d in enumerate(x.shape)] if keepdims else \
        [d for a, d in enumerate(x.shape) if a not in axes]
    if not all(isinstance(d, int) for d in shape):
        raise Reject("ReduceProd over an empty axis with symbolic sizes")
    return cx.imp.constant(np.ones(shape, dtype=x.dtype))


HANDLERS["ReduceSum"] = _reduction(_sum_body, input_since=13)
HANDLERS["ReduceProd"] = _reduction(_prod_body)
HANDLERS["ReduceMean"] = _reduction(_mean_body)
HANDLERS["ReduceMax"] = _reduction(_max_body, empty_ok=False)
HANDLERS["ReduceMin"] = _reduction(_min_body, empty_ok=False)
HANDLERS["ReduceSumSquare"] = _reduction(_sum_square_body)
HANDLERS["ReduceL1"] = _reduction(_l1_body)
HANDLERS["ReduceL2"] = _reduction(_l2_body, float_only=True)
HANDLERS["ReduceLogSum"] = _reduction(_log_sum_body, float_only=True)
HANDLERS["ReduceLogSumExp"] = _reduction(_log_sum_exp_body, empty_ok=False, float_only=True)
