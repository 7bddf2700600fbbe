"""ONNX lowerings of the indexing ops (nngraph/ops/indexing.py)."""
from __future__ import annotations

import numpy as np

from nngraph.ir.graph import Value
from nngraph.onnx.lower.registry import LOWERINGS, onnx_dims, onnx_shape, onnx_zeros
from nngraph.ops.indexing import pad_pairs, slice_spec
from nngraph.ops.rules import norm_axis


def _one_hot_onnx(b, node, inputs):
    # indices[..., None] == arange(depth), as the kernel: onnxruntime's OneHot lacks float64 values
    indices = b.op("Cast", inputs[0], to=b.dtype("int64"))
    hits = b.op("Equal", b.op("Unsqueeze", indices, b.ints([-1])), b.ints(range(node.attrs["depth"])))
    return [b.op("Cast", hits, to=b.dtype(node.out.dtype))]
_INT64_MAX, _INT64_MIN = 2 ** 63 - 1, -2 ** 63


def _onnx_bounds(spec):
    starts = [(0 if st > 0 else _INT64_MAX) if s is None else s for _, s, _, st in spec]
    ends = [(_INT64_MAX if st > 0 else _INT64_MIN) if e is None else e for _, _, e, st in spec]
    return starts, ends


def _slice_onnx(b, n, ins):
    spec = slice_spec(n.attrs, n.inputs[0].type.rank)
    starts, ends = _onnx_bounds(spec)
    return [b.op("Slice", ins[0], b.ints(starts), b.ints(ends), b.ints([s[0] for s in spec]),
                 b.ints([s[3] for s in spec]))]


def _slice_grad_onnx(b, n, ins):
    """Zeros with g written into the sliced positions: Pad for unit steps over known sizes, else
    one ScatterElements per sliced axis, each growing that axis from the slice to the whole."""
    g, x = n.inputs
    spec = slice_spec(n.attrs, x.type.rank)
    if all(isinstance(x.shape[a], int) and step == 1 for a, _, _, step in spec):
        pads = [0] * (2 * x.type.rank)
        for axis, start, end, step in spec:
            first, last, _ = slice(start, end, step).indices(x.shape[axis])
            pads[axis], pads[x.type.rank + axis] = first, x.shape[axis] - last
        return [b.op("Pad", ins[0], b.ints(pads))]
    current, shape = ins[0], list(g.shape)
    starts, ends = _onnx_bounds(spec)
    for (axis, start, end, step), lo, hi in zip(spec, starts, ends):
        size = x.shape[axis]
        if isinstance(size, int):
            where = b.ints(list(range(size))[slice(start, end, step)])
        else:
            whole = b.op("Range", b.const(0, "int64"),
                         b.op("Squeeze", b.op("Shape", ins[1], start=axis, end=axis + 1), b.ints([0])),
                         b.const(1, "int64"))
            where = b.op("Slice", whole, b.ints([lo]), b.ints([hi]), b.ints([0]), b.ints([step]))
        lined = b.op("Reshape", where, b.ints([-1 if i == axis else 1 for i in range(x.type.rank)]))
        now = Value("now", g.type.with_shape(shape))      # stands in for `current`: its sizes
        spread = b.op("Expand", lined, onnx_shape(b, now, current))
        shape[axis] = size
        parts = [(x, ins[1], i) if i == axis else (now, current, i) for i in range(x.type.rank)]
        zeros = onnx_zeros(b, onnx_dims(b, parts), g.dtype)
        current = b.op("ScatterElements", zeros, spread, current, axis=axis)
    return [current]


def _pad_onnx(b, n, ins):
    x = n.inputs[0]
    pads = [p for pair in zip(*pad_pairs(n.attrs, x.type.rank)) for p in pair]
    return [b.op("Pad", ins[0], b.ints(pads), b.const(n.attrs.get("value", 0), x.dtype), mode="constant")]


def _concat_onnx(b, n, ins):
    return [b.op("Concat", *ins, axis=norm_axis(n.attrs.get("axis", 0), n.out.type.rank))]


def _gather_onnx(b, n, ins):
    return [b.op("Gather", ins[0], ins[1], axis=norm_axis(n.attrs.get("axis", 0), n.inputs[0].type.rank))]


def _scatter_add_onnx(b, n, ins):
    """ScatterND adds g's rows into zeros at the (non-negative) indices; the gathered axis is moved
    to the front for it and back after."""
    g, indices, table = n.inputs
    return [_scattered(b, n, table, ins[2], [(indices, ins[1], g, ins[0])])]


def _index_add_onnx(b, n, ins):
    """The table plus every pair's updates scattered into zeros (summed first, added once)."""
    pairs = [(n.inputs[k], ins[k], n.inputs[k + 1], ins[k + 1]) for k in range(1, len(ins), 2)]
    return [b.op("Add", ins[0], _scattered(b, n, n.inputs[0], ins[0], pairs))]


def _scattered(b, n, table, table_in, pairs):
    """Zeros shaped like `table`, plus each (indices, updates) pair's rows at its indices (ScatterND,
    the indexed axis moved to the front for it and back after)."""
    axis = norm_axis(n.attrs.get("axis", 0), table.type.rank)
    front = [axis] + [i for i in range(table.type.rank) if i != axis]
    size = table.shape[axis]
    size = b.const(size, "int64") if isinstance(size, int) else b.op("Shape", table_in, start=axis, end=axis + 1)
    added = onnx_zeros(b, onnx_shape(b, table, table_in, front), pairs[0][2].dtype)
    for indices, indices_in, updates, updates_in in pairs:
        idx = indices_in if indices.dtype == "int64" else b.op("Cast", indices_in, to=b.dtype("int64"))
        idx = b.op("Where", b.op("Less", idx, b.const(0, "int64")), b.op("Add", idx, size), idx)
        idx = b.op("Unsqueeze", idx, b.ints([-1]))
        ri = indices.type.rank
        if axis:
            updates_in = b.op("Transpose", updates_in, perm=list(range(axis, axis + ri)) + list(range(axis))
                              + list(range(axis + ri, updates.type.rank)))
        added = b.op("ScatterND", added, idx, updates_in, reduction="add")
    if axis:
        added = b.op("Transpose", added, perm=[int(i) for i in np.argsort(front)])
    return added


LOWERINGS.update({
    "one_hot": _one_hot_onnx,
    "slice": _slice_onnx,
    "slice_grad": _slice_grad_onnx,
    "pad": _pad_onnx,
    "concat": _concat_onnx,
    "gather": _gather_onnx,
    "scatter_add": _scatter_add_onnx,
    "index_add": _index_add_onnx,
})
