"""Indexing: Concat, Split, Slice, Gather, Pad, ScatterElements, ScatterND and OneHot."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nngraph.ir import Value
from nngraph.onnx.context import Ctx, Reject
from nngraph.onnx.handlers.common import (
    check_constant_elements,
    dims_tensor,
    lined_positions,
    norm_axis,
    same_dtype,
    size_of,
    slice_axis,
    squeeze,
)
from nngraph.onnx.handlers.registry import handles


# ---------------------------------------------------------------- joining, splitting, indexing
@handles("Concat")
def _concat(cx: Ctx) -> Value:
    values = cx.inputs()
    for v in values[1:]:
        same_dtype(cx, values[0], v)
    rank = values[0].type.rank
    if rank == 0:
        raise Reject("0-d operands")
    axis = norm_axis(cx.attr("axis"), rank)
    entries = [cx.dims(i) for i in range(cx.n) if cx.has(i)]
    if rank == 1 and all(e is not None for e in entries):      # a shape assembled from pieces
        return dims_tensor(cx, [d for e in entries for d in e])
    values = [v for v in values if v.shape[axis] != 0] or values[:1]      # empty pieces add nothing
    return values[0] if len(values) == 1 else cx.op("concat", *values, axis=axis)


@handles("Split")
def _split(cx: Ctx) -> list[Value]:
    x = cx.x(0)
    axis = norm_axis(cx.attr("axis", 0), x.type.rank)
    size = x.shape[axis]
    if not isinstance(size, int):
        raise Reject("Split along an axis of symbolic size")
    sizes = _split_sizes(cx, size, len(cx.node.output))
    if sum(sizes) != size:
        raise Reject(f"parts of sizes {sizes} for an axis of size {size}")
    if len(sizes) == 1:
        return [x]
    offsets = np.cumsum([0] + sizes).tolist()
    return [slice_axis(cx, x, axis, begin, end) if end > begin else empty_tensor(cx, x, {axis: 0})
            for begin, end in zip(offsets[:-1], offsets[1:])]


def _split_sizes(cx: Ctx, size: int, outputs: int) -> list[int]:
    """The sizes of the parts: the `split` input (opset 13+) or attribute, `num_outputs` parts
    (opset 18: the last one smaller when the size does not divide), or equal parts."""
    count = cx.attr("num_outputs", None)
    if cx.opset >= 13 and cx.has(1):
        sizes = cx.ints_input(1, "split")
    elif cx.opset < 13 and cx.attr("split", None):
        sizes = [int(s) for s in cx.attr("split")]
    elif count is not None:
        if count != outputs:
            raise Reject(f"num_outputs={count} with {outputs} outputs")
        chunk = -(-size // count)
        sizes = [chunk] * (count - 1) + [size - chunk * (count - 1)]
    elif size % outputs:
        raise Reject(f"an axis of size {size} split into {outputs} equal parts")
    else:
        sizes = [size // outputs] * outputs
    if any(s < 0 for s in sizes):
        raise Reject("negative part sizes")
    return sizes


@handles("Slice")
def _slice(cx: Ctx) -> Value:
    x = cx.x(0)
    rank = x.type.rank
    if cx.opset < 10:
        starts, ends = [int(v) for v in cx.attr("starts")], [int(v) for v in cx.attr("ends")]
        axes = cx.attr("axes", None)
        steps = None
    else:
        starts, ends = cx.ints_input(1, "starts"), cx.ints_input(2, "ends")
        axes = cx.ints_input(3, "axes") if cx.has(3) else None
        steps = cx.ints_input(4, "steps") if cx.has(4) else None
    axes = [norm_axis(int(a), rank) for a in (axes if axes is not None else range(len(starts)))]
    steps = steps or [1] * len(axes)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise Reject("starts, ends, axes and steps of different lengths")
    if len(set(axes)) != len(axes):
        raise Reject("an axis sliced twice")
    if 0 in steps:
        raise Reject("a step of 0")
    entries = cx.dims(0)
    if entries is not None and rank == 1 and axes:      # part of a shape: its entries, known one by one
        first, stop = _onnx_clamped(len(entries), starts[0], ends[0], steps[0])
        return dims_tensor(cx, entries[first:stop if stop >= 0 else None:steps[0]])
    spec = [_slice_bounds(x.shape[a], a, s, e, st) for a, s, e, st in zip(axes, starts, ends, steps)]
    spec = [bounds for bounds in spec if bounds is not None]
    if any(length == 0 for *_, length in spec):
        return empty_tensor(cx, x, {axis: length for axis, *_, length in spec})
    if not spec:
        return x
    return cx.op("slice", x, axes=tuple(b[0] for b in spec), starts=tuple(b[1] for b in spec),
                 ends=tuple(b[2] for b in spec), steps=tuple(b[3] for b in spec))


# ONNX writes "to the end" as a huge bound (INT64_MAX, INT32_MAX, ...)
HUGE_BOUND = 2 ** 31 - 1


def _slice_bounds(size, axis: int, start: int, end: int, step: int):
    """(axis, start, end, step, length) for nngraph's slice (Python's semantics, as ONNX's; the
    length None where it is symbolic), or None for a slice of the whole axis. Known sizes get exact
    bounds; for symbolic ones a huge bound means "to the end", and the others stay as they are
    (Python's semantics at run time: the same as ONNX's for bounds inside the axis)."""
    if isinstance(size, int):
        first, stop = _onnx_clamped(size, start, end, step)
        if (first, stop, step) == (0, size, 1):
            return None
        return axis, first, (stop if stop >= 0 else None), step, len(range(first, stop, step))
    forward = step > 0
    if (forward and start <= -HUGE_BOUND) or (not forward and start >= HUGE_BOUND):
        start = None
    if (forward and end >= HUGE_BOUND) or (not forward and end <= -HUGE_BOUND):
        end = None
    if any(b is not None and abs(b) >= HUGE_BOUND for b in (start, end)):
        raise Reject("an empty slice of a symbolic axis")
    if (start, end, step) in ((None, None, 1), (0, None, 1)):
        return None
    return axis, start, end, step, None


def _onnx_clamped(size: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX's bounds: negative ones count from the end, then clamp to [0, size] (to [0, size - 1]
    and [-1, size - 1] stepping backwards; -1 is "before the first"). Python's differ in one place:
    a backward start before the first element selects nothing there, the first element here."""
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    if step > 0:
        return min(max(start, 0), size), min(max(end, 0), size)
    return min(max(start, 0), size - 1), min(max(end, -1), size - 1)


def empty_tensor(cx: Ctx, x: Value, sizes: dict) -> Value:
    """A slice or part that selects nothing: nngraph's slice cannot, but an empty constant can
    stand for it when the other sizes are known (nothing flows back through it either)."""
    shape = [sizes.get(axis, d) for axis, d in enumerate(x.shape)]
    if not all(isinstance(d, int) for d in shape):
        raise Reject("an empty slice of a tensor with symbolic sizes")
    check_constant_elements(float(math.prod(shape)), "an empty part")
    return cx.imp.constant(np.zeros(shape, dtype=x.dtype))


@handles("Gather")
def _gather(cx: Ctx) -> Value:
    table, indices = cx.x(0), cx.x(1)
    if indices.dtype not in ("int32", "int64"):
        raise Reject(f"indices of dtype {indices.dtype}")
    if table.type.rank == 0:
        raise Reject("a 0-d table")
    axis = norm_axis(cx.attr("axis", 0), table.type.rank)
    entries, picked = cx.dims(0), cx.imp.static(indices)
    if entries is not None and table.type.rank == 1 and picked is not None and picked.ndim <= 1:
        # sizes picked out of a shape
        return dims_tensor(cx, [entries[int(i)] for i in picked.reshape(-1)], scalar=picked.ndim == 0)
    return cx.op("gather", table, indices, axis=axis)


@handles("Pad")
def _pad(cx: Ctx) -> Value:
    """Constant padding is nngraph's pad; edge, reflect and wrap gather the rows they repeat
    (negative indices count from the end, so symbolic sizes work too); negative pads crop."""
    x = cx.x(0)
    rank = x.type.rank
    mode = cx.attr("mode", "constant")
    pads, value = _pad_amounts(cx, rank)
    x = _crop(cx, x, pads)
    pads = [max(p, 0) for p in pads]
    if not any(pads):
        return x
    if mode == "constant":
        return cx.op("pad", x, pads=tuple(pads), value=value)
    if mode not in ("edge", "reflect", "wrap"):
        raise Reject(f"mode {mode}")
    for axis in range(rank):
        if pads[axis] or pads[rank + axis]:
            x = _pad_by_gather(cx, x, axis, pads[axis], pads[rank + axis], mode)
    return x


def _pad_amounts(cx: Ctx, rank: int) -> tuple[list[int], float | int]:
    """Every axis's start, then every axis's end (axes not named by `axes` get 0), and the value."""
    if cx.opset < 11:
        pads = [int(p) for p in cx.attr("pads" if cx.opset >= 2 else "paddings")]
        return pads, float(cx.attr("value", 0.0))
    if not cx.has(1):
        raise Reject("no pads")
    pads = cx.ints_input(1, "pads")
    value = cx.static(2, "constant_value").reshape(-1)[0].item() if cx.has(2) else 0
    axes = [norm_axis(a, rank) for a in cx.axes_input(3)] if cx.has(3) else list(range(rank))
    if len(pads) != 2 * len(axes):
        raise Reject(f"{len(pads)} pads for {len(axes)} axes")
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
    return full, value


def _crop(cx: Ctx, x: Value, pads: list[int]) -> Value:
    rank = x.type.rank
    for axis in range(rank):
        begin, end = pads[axis], pads[rank + axis]
        if begin < 0 or end < 0:
            x = slice_axis(cx, x, axis, max(-begin, 0), end if end < 0 else None)
    return x


def _pad_by_gather(cx: Ctx, x: Value, axis: int, before: int, after: int, mode: str) -> Value:
    size = x.shape[axis]
    if isinstance(size, int) and (max(before, after) > (size - 1 if mode == "reflect" else size) or size == 0):
        raise Reject(f"{mode} padding wider than the axis")
    head, tail = {"edge": ([0] * before, [-1] * after),
                  "reflect": (list(range(before, 0, -1)), list(range(-2, -2 - after, -1))),
                  "wrap": (list(range(-before, 0)), list(range(after)))}[mode]
    parts = [cx.op("gather", x, cx.const(head, "int64"), axis=axis)] if head else []
    parts.append(x)
    if tail:
        parts.append(cx.op("gather", x, cx.const(tail, "int64"), axis=axis))
    return cx.op("concat", *parts, axis=axis)


def flat_positions(cx: Ctx, data: Value, indices: Value, axis: int) -> Value:
    """ScatterElements' targets as positions in the flattened `data`: the index along `axis` (negative
    ones count from the end) and each other axis's own position, weighted by data's strides."""
    rank = data.type.rank
    idx = indices if indices.dtype == "int64" else cx.op("cast", indices, dtype="int64")
    size = size_of(cx, data, (axis,))
    idx = cx.op("where", cx.op("less", idx, cx.const(0, "int64")), cx.op("add", idx, size), idx)
    flat = None
    for a in range(rank):
        coordinate = idx if a == axis else lined_positions(cx, indices, a)
        if a < rank - 1:
            coordinate = cx.op("mul", coordinate, size_of(cx, data, tuple(range(a + 1, rank))))
        flat = coordinate if flat is None else cx.op("add", flat, coordinate)
    return cx.op("broadcast_like", flat, indices)


def scattered(cx: Ctx, data: Value, updates: Value, scatter: Callable[[Value], Value]) -> Value:
    """data with updates written (reduction none) or added (add) where `scatter` (an nngraph
    scatter_add of its argument into zeros shaped like data) puts them; a position written twice
    gets the sum."""
    reduction = cx.attr("reduction", "none")
    if reduction not in ("none", "add"):
        raise Reject(f"reduction={reduction}")
    same_dtype(cx, data, updates)
    if data.dtype == "bool":        # as 0/1 integers: a position written (or or-ed) is True if any update is
        as_int = scattered(cx, cx.op("cast", data, dtype="int64"), cx.op("cast", updates, dtype="int64"), scatter)
        return cx.op("greater", as_int, cx.const(0, "int64"))
    added = scatter(updates)
    if reduction == "add":
        return cx.op("add", data, added)
    hits = scatter(cx.op("broadcast_like", cx.const(1, "int64"), updates))
    return cx.op("where", cx.op("greater", hits, cx.const(0, "int64")), added, data)


def scatter_flat(cx: Ctx, data: Value, where: Value, updates: Value) -> Value:
    """Scatter into data by positions in its flattened form (`where` shaped like updates)."""
    flat_data, flat_where = cx.op("reshape", data, shape=(-1,)), cx.op("reshape", where, shape=(-1,))
    if cx.attr("reduction", "none") in ("max", "min", "mul") and data.dtype != "bool":
        same_dtype(cx, data, updates)
        return _scatter_extreme(cx, data, flat_data, flat_where, cx.op("reshape", updates, shape=(-1,)))

    def scatter(g: Value) -> Value:
        flat = cx.op("scatter_add", cx.op("reshape", g, shape=(-1,)), flat_where, flat_data)
        return cx.op("reshape_like", flat, data)
    return scattered(cx, data, updates, scatter)


# an [updates, data] table of who writes where: fine for the index tensors models scatter by max
EXTREME_TABLE_LIMIT = 10**7
# reduction=mul multiplies the table's rows one by one (nngraph has no product reduction)
PRODUCT_UPDATES_LIMIT = 64


def _scatter_extreme(cx: Ctx, data: Value, flat_data: Value, flat_where: Value, flat_updates: Value) -> Value:
    """reduction max (min, mul): each position takes the largest (smallest) of its own value and
    the updates written to it (or its value times theirs), found in a table comparing every
    update's target with every position."""
    if cx.attr("reduction") == "mul":
        return _scatter_product(cx, data, flat_data, flat_where, flat_updates)
    largest = cx.attr("reduction") == "max"
    counts = [d for d in (flat_data.shape[0], flat_updates.shape[0]) if isinstance(d, int)]
    if len(counts) == 2 and counts[0] * counts[1] > EXTREME_TABLE_LIMIT:
        raise Reject(f"reduction={cx.attr('reduction')} over more than {EXTREME_TABLE_LIMIT:.0e} update-position pairs")
    targets = cx.op("equal", cx.op("expand_dims", flat_where, axes=(1,)), cx.op("positions", flat_data, axis=0))
    dtype = data.dtype
    if dtype.startswith("float"):
        neutral = cx.const(-np.inf if largest else np.inf, dtype)
    else:
        neutral = cx.const(np.iinfo(dtype).min if largest else np.iinfo(dtype).max, dtype)
    table = cx.op("where", targets, cx.op("expand_dims", flat_updates, axes=(1,)), neutral)
    if largest:
        best = cx.op("max", table, axes=(0,))
    else:       # min as -max(-x): nngraph reduces by max only
        best = cx.op("neg", cx.op("max", cx.op("neg", table), axes=(0,)))
    # a position no update hits has the neutral value as its best, which never beats its own
    beats = cx.op("greater" if largest else "less", best, flat_data)
    return cx.op("reshape_like", cx.op("where", beats, best, flat_data), data)


def _scatter_product(cx: Ctx, data: Value, flat_data: Value, flat_where: Value, flat_updates: Value) -> Value:
    count = flat_updates.shape[0]
    if not isinstance(count, int) or count > PRODUCT_UPDATES_LIMIT:
        raise Reject(f"reduction=mul with more than {PRODUCT_UPDATES_LIMIT} updates or a symbolic number of them")
    targets = cx.op("equal", cx.op("expand_dims", flat_where, axes=(1,)), cx.op("positions", flat_data, axis=0))
    table = cx.op("where", targets, cx.op("expand_dims", flat_updates, axes=(1,)), cx.const(1, data.dtype))
    out = flat_data
    for i in range(count):
        out = cx.op("mul", out, cx.op("sum", slice_axis(cx, table, 0, i, i + 1), axes=(0,)))
    return cx.op("reshape_like", out, data)


@handles("ScatterElements")
def _scatter_elements(cx: Ctx) -> Value:
    data, indices, updates = cx.x(0), cx.x(1), cx.x(2)
    if indices.dtype not in ("int32", "int64"):
        raise Reject(f"indices of dtype {indices.dtype}")
    if indices.shape != updates.shape or indices.type.rank != data.type.rank:
        raise Reject("indices and updates of different shapes")
    axis = norm_axis(cx.attr("axis", 0), data.type.rank)
    return scatter_flat(cx, data, flat_positions(cx, data, indices, axis), updates)


@handles("ScatterND")
def _scatter_nd(cx: Ctx) -> Value:
    """indices[..., k] address the first k axes of data. With k = 1 that is nngraph's scatter_add
    along axis 0 (the adjoint of gather); otherwise the addressed slices are found in the
    flattened data."""
    data, indices, updates = cx.x(0), cx.x(1), cx.x(2)
    if indices.dtype not in ("int32", "int64"):
        raise Reject(f"indices of dtype {indices.dtype}")
    k = indices.shape[-1] if indices.type.rank else None
    if not isinstance(k, int) or not 1 <= k <= data.type.rank:
        raise Reject("indices whose last axis is not a known size up to data's rank")
    idx = indices if indices.dtype == "int64" else cx.op("cast", indices, dtype="int64")
    coordinates = [squeeze(cx, slice_axis(cx, idx, -1, a, a + 1), [indices.type.rank - 1]) for a in range(k)]
    if k == 1 and cx.attr("reduction", "none") not in ("max", "min", "mul"):
        return scattered(cx, data, updates, lambda g: cx.op("scatter_add", g, coordinates[0], data, axis=0))
    rest = data.shape[k:]
    if not all(isinstance(d, int) for d in rest):
        raise Reject("symbolic sizes after the indexed axes")
    row = None
    for a, coordinate in enumerate(coordinates):
        size = size_of(cx, data, (a,))
        coordinate = cx.op("where", cx.op("less", coordinate, cx.const(0, "int64")), cx.op("add", coordinate, size),
                           coordinate)
        coordinate = cx.op("mul", coordinate, size_of(cx, data, tuple(range(a + 1, data.type.rank))))
        row = coordinate if row is None else cx.op("add", row, coordinate)
    if rest:       # every element of each addressed slice: its row's start plus its offset in the row
        row = cx.op("add", cx.op("expand_dims", row, axes=tuple(range(row.type.rank, row.type.rank + len(rest)))),
                    cx.const(np.arange(math.prod(rest)).reshape(rest), "int64"))
    return scatter_flat(cx, data, cx.op("broadcast_like", row, updates), updates)


# ---------------------------------------------------------------- selection
@handles("OneHot")
def _one_hot(cx: Ctx) -> Value:
    indices, values = cx.x(0), cx.x(2)
    depth_array = cx.static(1, "depth").reshape(-1)
    depth = int(depth_array[0])
    if indices.dtype == "bool" or values.dtype == "bool":
        raise Reject("dtype bool")
    rank = indices.type.rank
    axis = cx.attr("axis", -1)
    axis = axis + rank + 1 if axis < 0 else axis
    # negative indices count from the end; out-of-range ones match no class (all off_value)
    wrapped = cx.op("where", cx.op("less", indices, cx.like(0, indices)),
                    cx.op("add", indices, cx.like(depth, indices)), indices)
    # compare in the indices' own dtype, so that float indices like 1.5 match nothing (as ONNX)
    hits = cx.op("equal", cx.op("expand_dims", wrapped, axes=(rank,)),
                 cx.const(np.arange(depth), indices.dtype))
    known = cx.imp.static(values)
    if known is not None:
        off, on = (cx.const(v, values.dtype) for v in known.reshape(-1)[:2])
    else:   # pick off/on out of the [2] tensor at run time: a dot product with [1, 0] and [0, 1]
        off = cx.op("sum", cx.op("mul", values, cx.const([1, 0], values.dtype)), axes=(0,))
        on = cx.op("sum", cx.op("mul", values, cx.const([0, 1], values.dtype)), axes=(0,))
    out = cx.op("where", hits, on, off)
    if axis != rank:      # one_hot puts the classes last; move them to `axis`
        perm = list(range(rank))
        perm.insert(axis, rank)
        out = cx.op("transpose", out, perm=tuple(perm))
    return out
