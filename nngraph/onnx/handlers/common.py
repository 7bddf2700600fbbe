"""Helpers shared by the handler families: dtypes, axes, flattening and squeezing, and shape
vectors known entry by entry (ints and DimRefs)."""
from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto

from nngraph.ir import Value, dims, limits
from nngraph.ir.registry import ShapeError
from nngraph.onnx.context import Ctx, DimRef, Reject, SymDim, dtype_name
from nngraph.onnx.dtypes import FROM_ONNX
from nngraph.ops.rules import norm_axis as ir_norm_axis


def check_constant_elements(count, what: str) -> None:
    """An import-time constant over the compile-time constant limit (NNGRAPH_MAX_CONSTANT_ELEMENTS,
    default 1e8) is refused: a header can ask for hundreds of GiB in a few bytes."""
    if not count <= limits.MAX_CONSTANT_ELEMENTS:     # also NaN
        raise Reject(f"{what} of {count:g} elements, over the limit of {limits.MAX_CONSTANT_ELEMENTS:g} "
                     "(raise it with NNGRAPH_MAX_CONSTANT_ELEMENTS)")


# ---------------------------------------------------------------- helpers shared by handlers
def need_float(cx: Ctx, v: Value) -> None:
    if not v.type.is_float:
        raise Reject(f"dtype {v.dtype}")


def float_input(cx: Ctx) -> Value:
    cx.ignore("consumed_inputs")
    x = cx.x(0)
    need_float(cx, x)
    return x


def legacy_broadcast(cx: Ctx) -> None:
    """Before opset 7, binary ops broadcast only with broadcast=1, and `axis` aligned the second
    operand somewhere other than the right. numpy-style broadcasting covers the rest."""
    cx.ignore("consumed_inputs")
    if cx.attr("broadcast", 0) and cx.attr("axis") is not None:
        raise Reject("legacy broadcast with an axis (opset < 7)")


def same_dtype(cx: Ctx, a: Value, b: Value) -> None:
    if a.dtype != b.dtype:
        raise Reject(f"mixed dtypes {a.dtype} and {b.dtype}")


def clamp(cx: Ctx, x: Value, low: Value | None, high: Value | None) -> Value:
    """min(max(x, low), high) with where: NaN stays NaN, and low > high gives high (as np.clip)."""
    if low is not None:
        x = cx.op("where", cx.op("less", x, low), low, x)
    if high is not None:
        x = cx.op("where", cx.op("less", high, x), high, x)
    return x


def norm_axis(axis: int, rank: int) -> int:
    """nngraph's own axis rule (nngraph.ops.rules.norm_axis); out of range, the ONNX node is rejected."""
    try:
        return ir_norm_axis(axis, rank)
    except ShapeError:
        raise Reject(f"axis {axis} out of range for rank {rank}") from None


def static_dims(v: Value, axes) -> list[int] | None:
    dims = [v.shape[a] for a in axes]
    return dims if all(isinstance(d, int) for d in dims) else None


def flatten_2d(cx: Ctx, x: Value, axis: int) -> Value:
    """x as [prod(shape[:axis]), prod(shape[axis:])]; one side must be static (the other is -1)."""
    rank = x.type.rank
    before, after = static_dims(x, range(axis)), static_dims(x, range(axis, rank))
    if before is not None and (after is None or math.prod(before) != 0):
        return cx.op("reshape", x, shape=(math.prod(before), -1))
    if after is not None and math.prod(after) != 0:
        return cx.op("reshape", x, shape=(-1, math.prod(after)))
    raise Reject("flattening symbolic dims on both sides of the axis")


def squeeze(cx: Ctx, x: Value, axes) -> Value:
    """Drop size-1 axes. nngraph has no squeeze: a sum over axes of size 1 is the identity, keeps
    the dtype, and differentiates to a broadcast."""
    return cx.op("sum", x, axes=tuple(axes), keepdims=False) if axes else x


def target_dtype(to) -> str:
    if isinstance(to, str):     # opset < 6 names the type: "FLOAT"
        to = TensorProto.DataType.Value(to.upper()) if to.upper() in TensorProto.DataType.keys() else -1
    dtype = FROM_ONNX.get(to)
    if dtype is None:
        raise Reject(f"dtype {dtype_name(to)}")
    return dtype


# ---------------------------------------------------------------- shape vectors known entry by entry
def entry_size(entry):
    """An int, or the symbolic size of a DimRef or SymDim."""
    return entry.size if isinstance(entry, (DimRef, SymDim)) else entry


def resolved(entries) -> tuple:
    """DimRefs and SymDims to sizes the type knows become ints."""
    return tuple(e.size if isinstance(e, (DimRef, SymDim)) and isinstance(e.size, int) else e for e in entries)


def _entry_piece(cx: Ctx, e) -> Value:
    if isinstance(e, DimRef):
        return cx.op("dim_size", e.source, axes=(e.axis,), dtype="int64")
    if isinstance(e, SymDim):
        return e.value if e.index is None else cx.op("gather", e.value, cx.const(e.index, "int64"))
    return cx.const(e, "int64")


def dims_tensor(cx: Ctx, entries, scalar: bool = False) -> Value:
    """The entries as an int64 tensor computed at run time (each DimRef with dim_size), tracked."""
    entries = resolved(entries)
    pieces = [_entry_piece(cx, e) for e in entries]
    if scalar:
        return cx.track(pieces[0], entries)
    if all(isinstance(e, int) for e in entries):
        return cx.const(list(entries), "int64")
    vectors = [cx.op("expand_dims", p, axes=(0,)) for p in pieces]
    return cx.track(vectors[0] if len(vectors) == 1 else cx.op("concat", *vectors, axis=0), entries)


def track_arithmetic(cx: Ctx, out: Value, combine) -> Value:
    """`out` = a op b on shape entries (Shape, Gather, Concat pieces): its entries are the sizes
    combined by `combine` (nngraph/ir/dims.py arithmetic), ints where known, else SymDims."""
    a, b = cx.dims(0), cx.dims(1)
    if a is None or b is None or out.dtype != "int64" or out.type.rank > 1 or (len(a) != len(b) and 1 not in (len(a), len(b))):
        return out
    count = max(len(a), len(b))
    a, b = (a * count if len(a) == 1 else a), (b * count if len(b) == 1 else b)
    entries = []
    for i, (x, y) in enumerate(zip(a, b)):
        size = combine(entry_size(x), entry_size(y))
        if size is None:
            return out
        entries.append(size if isinstance(size, int) else SymDim(size, out, None if out.type.rank == 0 else i))
    return cx.track(out, entries)


def _paired_entries(a, b):
    if a is None or b is None or (len(a) != len(b) and 1 not in (len(a), len(b))):
        return None
    count = max(len(a), len(b))
    return list(zip(a * count if len(a) == 1 else a, b * count if len(b) == 1 else b))


def entries_equal(cx: Ctx) -> np.ndarray | None:
    """Equal of two shape vectors, decided at import where the sizes tell (a size is never
    negative, equal symbols are equal sizes): how exporters test a shape for -1 before Expand."""
    pairs = _paired_entries(cx.dims(0), cx.dims(1))
    if pairs is None or cx.x(0).type.rank > 1 or cx.x(1).type.rank > 1:
        return None
    out = []
    for x, y in pairs:
        x, y = entry_size(x), entry_size(y)
        if isinstance(x, int) and isinstance(y, int) or x == y:
            out.append(x == y)
        elif isinstance(x, int) and x < 0 or isinstance(y, int) and y < 0:
            out.append(False)
        else:
            return None
    rank0 = cx.x(0).type.rank == 0 and cx.x(1).type.rank == 0
    return np.asarray(out[0] if rank0 else out, dtype=bool)


def entries_where(cx: Ctx) -> Value | None:
    """Where with a condition known at import over two shape vectors: the entries picked."""
    cond = cx.imp.static(cx.x(0))
    pairs = _paired_entries(cx.dims(1), cx.dims(2))
    if cond is None or pairs is None or cond.ndim > 1 or cx.x(1).type.rank > 1 or cx.x(2).type.rank > 1:
        return None
    cond = np.broadcast_to(cond.reshape(-1), (len(pairs),)) if cond.size in (1, len(pairs)) else None
    if cond is None:
        return None
    picked = [x if c else y for c, (x, y) in zip(cond, pairs)]
    scalar = all(cx.x(i).type.rank == 0 for i in range(3))
    return dims_tensor(cx, picked, scalar=scalar)


def as_dim_refs(cx: Ctx, entries) -> list:
    """SymDims whose size is an integer times symbols the graph's inputs have (`2*N`) become the
    axis of a flat vector of that many elements (a `fill` over those axes, reshaped), so that
    fill, reshape_like and broadcast_like can read them like any DimRef."""
    out = []
    for e in entries:
        if not isinstance(e, SymDim):
            out.append(e)
            continue
        product = dims.monomial(e.size)
        axes = [_symbol_axis(cx, s) for s in product[1]] if product else [None]
        if any(a is None for a in axes):
            raise Reject("a shape with a size computed at run time from other sizes")
        sources = list({id(v): v for v, _ in axes}.values())
        spec = (product[0],) + tuple((sources.index(v), axis) for v, axis in axes)
        flat = cx.op("reshape", cx.op("fill", *sources, dims=spec, value=False, dtype="bool"), shape=(-1,))
        out.append(DimRef(flat, 0))
    return out


def _symbol_axis(cx: Ctx, symbol: str) -> tuple[Value, int] | None:
    """A graph input with the symbolic size `symbol`, and the axis where it has it."""
    for v in cx.imp.graph.inputs:
        if symbol in v.shape:
            return v, v.shape.index(symbol)
    return None


def whole_shape_of(entries) -> Value | None:
    """The value whose whole shape the entries are (the first DimRef's source), if any."""
    source = next((e.source for e in entries if isinstance(e, DimRef)), None)
    if source is None or source.type.rank != len(entries):
        return None
    return source if all(entry_size(e) == d for e, d in zip(entries, source.shape)) else None


def fill_of(cx: Ctx, entries, value, dtype: str) -> Value:
    """A tensor of `value` whose shape is `entries`: the sizes only known at run time are read from
    their values by nngraph's `fill`."""
    entries = as_dim_refs(cx, entries)
    sources: list[Value] = []
    for e in entries:
        if isinstance(e, DimRef) and all(e.source is not s for s in sources):
            sources.append(e.source)
    dims = tuple((next(i for i, s in enumerate(sources) if s is e.source), e.axis) if isinstance(e, DimRef)
                 else int(e) for e in entries)
    return cx.op("fill", *sources, dims=dims, value=value, dtype=dtype)


def shape_like(cx: Ctx, entries) -> Value:
    """A value whose shape is `entries`, for reshape_like and broadcast_like to read: the value
    the entries are the whole shape of, a zero-stride constant when every size is known, else a
    `fill` (its memory is the price of a shape assembled from several values)."""
    entries = resolved(entries)
    if all(isinstance(e, int) for e in entries):
        if any(e < 0 for e in entries):
            raise Reject("negative dims in the shape")
        return cx.imp.constant(np.broadcast_to(np.zeros((), dtype=bool), entries))
    return whole_shape_of(entries) or fill_of(cx, entries, False, "bool")


def size_of(cx: Ctx, x: Value, axes) -> Value:
    """The product of some of x's sizes as an int64 scalar: a constant when they are known."""
    dims = static_dims(x, axes)
    return cx.const(math.prod(dims), "int64") if dims is not None else \
        cx.op("dim_size", x, axes=tuple(axes), dtype="int64")


def slice_axis(cx: Ctx, x: Value, axis: int, start, end, step: int = 1) -> Value:
    return cx.op("slice", x, axes=(axis,), starts=(start,), ends=(end,), steps=(step,))


def arange_along(cx: Ctx, x: Value, axis: int, dtype: str = "int64") -> Value:
    """0, 1, ..., n-1 along `axis`, shaped to broadcast against x (size 1 elsewhere)."""
    n = x.shape[axis]
    if not isinstance(n, int):
        raise Reject("a symbolic size on the reduced axis")
    shape = [n] + [1] * (x.type.rank - axis - 1)
    return cx.const(np.arange(n).reshape(shape), dtype)


def lined_positions(cx: Ctx, x: Value, axis: int) -> Value:
    """0, 1, ... along `axis` of x, shaped to broadcast against x (its size read at run time)."""
    trailing = tuple(range(1, x.type.rank - axis))
    positions = cx.op("positions", x, axis=axis)
    return cx.op("expand_dims", positions, axes=trailing) if trailing else positions
