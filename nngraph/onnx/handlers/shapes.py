"""Shapes: Transpose, Reshape, Flatten, Expand, (Un)Squeeze, Shape, Size, ConstantOfShape,
Constant and Range; shape vectors known entry by entry (DimRef) flow through them."""
from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, numpy_helper

from nngraph.ir import Value, dims
from nngraph.onnx.context import Ctx, DimRef, Reject, SymDim, dtype_name
from nngraph.onnx.dtypes import FROM_ONNX
from nngraph.onnx.handlers.common import (
    check_constant_elements,
    dims_tensor,
    entry_size,
    fill_of,
    flatten_2d,
    norm_axis,
    resolved,
    shape_like,
    squeeze,
)
from nngraph.onnx.handlers.registry import handles


# ---------------------------------------------------------------- shapes
@handles("Transpose")
def _transpose(cx: Ctx) -> Value:
    x = cx.x(0)
    perm = cx.attr("perm", None)
    return cx.op("transpose", x, perm=tuple(perm) if perm else tuple(reversed(range(x.type.rank))))


@handles("Reshape")
def _reshape(cx: Ctx) -> Value:
    x = cx.x(0)
    if cx.opset < 5:
        shape = tuple(int(d) for d in cx.attr("shape"))
    else:
        entries = cx.dims(1)
        if entries is None:
            shape = tuple(int(d) for d in cx.static(1, "shape").reshape(-1))
        else:
            return cx.carry_dims(x, _reshape_to_entries(cx, x, entries))
    if cx.attr("allowzero", 0) and 0 in shape:
        # nngraph's reshape reads 0 as "copy that dim" (ONNX's default); a literal 0 it cannot express
        raise Reject("allowzero=1 with a 0 in the shape")
    return cx.carry_dims(x, cx.op("reshape", x, shape=shape))


def _reshape_to_entries(cx: Ctx, x: Value, entries) -> Value:
    """Reshape to a shape known entry by entry: a size equal to x's own at the same position is a
    0 (copy), so `Concat(Shape(x)[:1], [-1])` is reshape [0, -1]; sizes of other values go through
    reshape_like."""
    allowzero = cx.attr("allowzero", 0)
    target = [0 if isinstance(e, DimRef) and i < x.type.rank and e.size == x.shape[i] else entry_size(e)
              for i, e in enumerate(entries)]
    if all(isinstance(d, int) for d in target):
        if allowzero and 0 in [entry_size(e) for e in entries if not isinstance(e, DimRef)]:
            raise Reject("allowzero=1 with a 0 in the shape")
        return cx.op("reshape", x, shape=tuple(target))
    if target.count(-1) == 1 and not allowzero:
        # the -1 sized from the symbolic sizes: [2*N, -1] of an [N, 6, 4] input is [2*N, 12]
        others = [x.shape[i] if d == 0 else d for i, d in enumerate(target) if d != -1]
        inferred = dims.divide(dims.mul(*x.shape), dims.mul(*others))
        if isinstance(inferred, int) and inferred >= 0:
            target[target.index(-1)] = inferred
            entries = [inferred if e == -1 and isinstance(e, int) else e for e in entries]
    literal = [e for e in resolved(entries) if isinstance(e, int)]
    unknown = [i for i, d in enumerate(target) if not isinstance(d, int)]
    if len(unknown) == 1 and -1 not in literal and (0 not in literal or not allowzero):
        # one size computed at run time (`2*N` from Shape, Gather, Mul): the one reshape infers;
        # with symbolic sizes in normal form its type is that size
        target[unknown[0]] = -1
        return cx.op("reshape", x, shape=tuple(target))
    if -1 in literal or (0 in literal and not allowzero):
        raise Reject("a shape mixing -1 or 0 with sizes read at run time")
    return cx.op("reshape_like", x, shape_like(cx, entries))


@handles("Flatten")
def _flatten(cx: Ctx) -> Value:
    x = cx.x(0)
    rank = x.type.rank
    axis = cx.attr("axis", 1)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis <= rank:
        raise Reject(f"axis {cx.attr('axis')} out of range for rank {rank}")
    return flatten_2d(cx, x, axis)


@handles("Expand")
def _expand(cx: Ctx) -> Value:
    """Broadcast to a shape: broadcast_like against a value of that shape (a zero-size-in-memory
    constant when it is known: np.broadcast_to of a scalar has strides 0)."""
    x = cx.x(0)
    entries = cx.dims(1)
    if entries is None:
        entries = tuple(int(d) for d in cx.static(1, "shape").reshape(-1))
    # a size computed at run time that equals x's own on that axis: read it from x
    offset = len(entries) - x.type.rank
    entries = [DimRef(x, i - offset) if isinstance(e, SymDim) and 0 <= i - offset and x.shape[i - offset] == e.size else e
               for i, e in enumerate(entries)]
    return cx.op("broadcast_like", x, shape_like(cx, entries))


@handles("Unsqueeze")
def _unsqueeze(cx: Ctx) -> Value:
    x = cx.x(0)
    axes = cx.attr("axes") if cx.opset < 13 else cx.axes_input(1)
    if not axes:
        raise Reject("no axes")
    rank = x.type.rank + len(axes)
    axes = tuple(sorted(norm_axis(int(a), rank) for a in axes))
    return cx.carry_dims(x, cx.op("expand_dims", x, axes=axes))


@handles("Squeeze")
def _squeeze(cx: Ctx) -> Value:
    x = cx.x(0)
    axes = cx.attr("axes") if cx.opset < 13 else cx.axes_input(1)
    if axes is None or len(axes) == 0:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
        if any(isinstance(d, str) for d in x.shape):
            raise Reject("Squeeze without axes on symbolic dims")
    axes = sorted(norm_axis(int(a), x.type.rank) for a in axes)
    for a in axes:
        if x.shape[a] != 1 and isinstance(x.shape[a], int):
            raise Reject(f"squeezing axis {a} of size {x.shape[a]}")
    return cx.carry_dims(x, squeeze(cx, x, axes))


@handles("Shape")
def _shape(cx: Ctx) -> Value:
    """A constant when every dim is known; else computed with dim_size and tracked entry by entry,
    so that Reshape, Expand, ConstantOfShape and Range can still read the shape."""
    x = cx.x(0)
    start, end = cx.attr("start", 0), cx.attr("end", None)
    entries = [DimRef(x, a) for a in range(x.type.rank)][slice(start, end)]
    return dims_tensor(cx, entries)


@handles("Size")
def _size(cx: Ctx) -> Value:
    x = cx.x(0)
    if any(isinstance(d, str) for d in x.shape):
        return cx.op("dim_size", x, dtype="int64")
    return cx.const(math.prod(x.shape), "int64")


@handles("ConstantOfShape")
def _constant_of_shape(cx: Ctx) -> Value:
    entries = cx.dims(0)
    if entries is None:
        entries = tuple(int(d) for d in cx.static(0, "shape").reshape(-1))
    value = cx.attr("value", None)
    fill = numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    dtype = FROM_ONNX.get(value.data_type if value is not None else TensorProto.FLOAT)
    if dtype is None:
        raise Reject(f"dtype {dtype_name(value.data_type)}")
    entries = resolved(entries)
    if any(isinstance(e, int) and e < 0 for e in entries):
        raise Reject("negative dims in the shape")
    if all(isinstance(e, int) for e in entries):
        check_constant_elements(float(math.prod(entries)), "a ConstantOfShape")
        return cx.imp.constant(np.full(entries, fill[0], dtype=dtype))
    return fill_of(cx, entries, fill[0].item(), dtype)


@handles("Constant")
def _constant(cx: Ctx) -> Value:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in cx.attrs:
            raw = cx.attr(key)
            if key == "value":
                dtype = FROM_ONNX.get(raw.data_type)
                if dtype is None:
                    raise Reject(f"dtype {dtype_name(raw.data_type)}")
                array = numpy_helper.to_array(raw).astype(dtype, copy=False)
            else:
                array = np.asarray(raw, dtype="float32" if "float" in key else "int64")
            return cx.imp.constant(array)
    present = next(iter(cx.attrs), "no value")
    raise Reject(f"attribute {present}")


# ---------------------------------------------------------------- sequences
@handles("Range")
def _range(cx: Ctx) -> Value:
    """A constant when the bounds are known. Range(start, size, delta) with a size read at run time
    (Range(0, size of an axis, 1) is how nngraph's exporter writes `positions`) is `positions`,
    sliced for another start or delta: its length is a symbolic dim such as `N` or `8*N`."""
    values = [cx.x(i) for i in range(3)]
    dtype = values[0].dtype
    if any(v.dtype != dtype for v in values) or dtype == "bool":
        raise Reject("bounds of different dtypes" if dtype != "bool" else "dtype bool")
    arrays = [cx.imp.static(v) for v in values]
    if all(a is not None for a in arrays):
        start, limit, delta = (a.reshape(-1)[0] for a in arrays)
        if delta == 0:
            raise Reject("a delta of 0")
        with np.errstate(all="ignore"):
            count = float(max(0.0, np.ceil((float(limit) - float(start)) / float(delta))))
        if not all(np.isfinite(float(b)) for b in (start, limit, delta)):
            raise Reject("bounds that are not finite numbers")
        check_constant_elements(count, "a Range")
        return cx.imp.constant(np.arange(start, limit, delta, dtype=dtype))
    start, delta = arrays[0], arrays[2]
    counted = _counted(cx, cx.x(1)) if start is not None and delta is not None else None
    if counted is not None:
        start, delta = start.reshape(-1)[0].item(), delta.reshape(-1)[0].item()
        if start == int(start) and delta == int(delta) and start >= 0 and delta > 0:
            # start, start + delta, ... below the limit: positions 0 .. limit-1 sliced from start by delta
            source, axis = counted
            out = cx.op("positions", source, axis=axis)
            if (start, delta) != (0, 1):
                out = cx.op("slice", out, axes=(0,), starts=(int(start),), ends=(None,), steps=(int(delta),))
            return out if dtype == "int64" else cx.op("cast", out, dtype=dtype)
        raise Reject("a run-time limit with a negative start or a delta other than a positive integer")
    for i, array in enumerate(arrays):
        if array is None:
            cx.static(i, "Range bounds")     # raises, naming a graph input to freeze
    raise Reject("Range bounds computed at run time")


def _counted(cx: Ctx, limit: Value) -> tuple[Value, int] | None:
    """(value, axis) whose `positions` count 0 .. limit-1, when the limit is a size read at run
    time: an axis's size (Shape, Gather: a DimRef), or the product of several sizes (Size, as
    nngraph's own exporter writes dropout's element indices), counted along a flattened view."""
    entries = cx.dims(1)
    if entries is not None and len(entries) == 1 and isinstance(entries[0], DimRef):
        return entries[0].source, entries[0].axis
    node = limit.node
    if node is None or node.op != "dim_size" or limit.type.rank != 0:
        return None
    source = node.inputs[0]
    axes = node.attrs.get("axes")
    axes = tuple(range(source.type.rank)) if axes is None else tuple(axes)
    if len(axes) == 1:
        return source, axes[0]
    if axes == tuple(range(source.type.rank)):
        return cx.op("reshape", source, shape=(-1,)), 0
    sized = fill_of(cx, [DimRef(source, a) for a in axes], False, "bool")
    return cx.op("reshape", sized, shape=(-1,)), 0


# ---------------------------------------------------------------- masks
@handles("Trilu")
def _trilu(cx: Ctx) -> Value:
    """The upper (or lower) triangle of the last two axes from diagonal k, zeros elsewhere: a
    comparison of column and row positions (sizes may be symbolic: a causal mask over T)."""
    x = cx.x(0)
    if x.type.rank < 2:
        raise Reject(f"an input of rank {x.type.rank}")
    k = int(cx.static(1, "k").reshape(-1)[0]) if cx.has(1) else 0
    rows = cx.op("expand_dims", cx.op("positions", x, axis=x.type.rank - 2), axes=(1,))
    offset = cx.op("sub", cx.op("positions", x, axis=x.type.rank - 1), rows)       # column - row
    keep = cx.op("greater_equal" if cx.attr("upper", 1) else "less_equal", offset, cx.const(k, "int64"))
    return cx.op("where", keep, x, cx.const(False if x.dtype == "bool" else 0, x.dtype))
