"""Indexing: slices, padding, concatenation, gather with its scatter-add gradient, index_add (a sparse
row update), one-hot."""
from __future__ import annotations

from nngraph.ir.registry import defop
from nngraph.ir.types import Dim, TensorType
from nngraph.ops.images import check_grad_shape
from nngraph.ops.rules import ceil_div_dim, dim_add, fmt_shape, norm_axis, require, require_numeric, same_dtype


def _one_hot_infer(types, attrs):
    t = types[0]
    require(t.dtype in ("int32", "int64"), f"`one_hot` needs integer class indices, got {t.dtype}")
    return [TensorType(attrs.get("dtype", "float32"), t.shape + (attrs["depth"],))]


defop("one_hot", _one_hot_infer, arity=1)


# ---- slicing: `axes`, `starts`, `ends`, `steps` as in Python (negative indices count from the
# end, a step may be negative, None is the whole way); out-of-range bounds clamp. A symbolic axis
# can be sliced when the result's size does not depend on it in a nonlinear way.
def slice_spec(attrs: dict, rank: int):
    axes = tuple(attrs["axes"])
    n = len(axes)
    starts = tuple(attrs.get("starts") or (None,) * n)
    ends = tuple(attrs.get("ends") or (None,) * n)
    steps = tuple(attrs.get("steps") or (1,) * n)
    require(len(starts) == len(ends) == len(steps) == n, "a slice needs one start, end and step per axis")
    norm = [norm_axis(a, rank) for a in axes]
    require(len(set(norm)) == n, f"a slice names an axis twice: {axes}")
    require(all(s != 0 for s in steps), "a slice step cannot be zero")
    return list(zip(norm, starts, ends, steps))


def slice_index(rank: int, axes, starts=None, ends=None, steps=None) -> tuple:
    """The Python index (a tuple of slices) that a `slice` node's attributes mean, for the kernels
    of every backend: start, end and step per named axis, everything on the others."""
    index = [slice(None)] * rank
    n = len(axes)
    for axis, start, end, step in zip(axes, starts or (None,) * n, ends or (None,) * n, steps or (1,) * n):
        index[axis] = slice(start, end, step)
    return tuple(index)


def slice_length(dim: Dim, start, end, step: int) -> Dim:
    if isinstance(dim, int):
        return len(range(*slice(start, end, step).indices(dim)))
    # each bound is (from the beginning?, offset); None runs to the end in the step's direction
    if step > 0:
        lo = (True, 0) if start is None else (start >= 0, start)
        hi = (False, 0) if end is None else (end >= 0, end)
    else:
        lo = (True, -1) if end is None else (end >= 0, end)
        hi = (False, -1) if start is None else (start >= 0, start)
    k = abs(step)
    if lo[0] == hi[0]:                                  # both from the same side: a fixed count
        return max(0, -(-(hi[1] - lo[1]) // k))
    require(lo[0] and not hi[0],
           f"slicing an axis of symbolic size {dim} with start {start}, end {end} and step {step} gives a "
           f"size that depends on {dim}: count both bounds from the same end, or from either end of the axis")
    return ceil_div_dim(dim_add(dim, hi[1] - lo[1]), k)


def slice_shape(shape: tuple, attrs: dict) -> tuple:
    out = list(shape)
    for axis, start, end, step in slice_spec(attrs, len(shape)):
        out[axis] = size = slice_length(shape[axis], start, end, step)
        require(size != 0, f"the slice {_slice_text(start, end, step)} of axis {axis} (size {shape[axis]}) "
                          "selects nothing")
    return tuple(out)


def _slice_text(start, end, step) -> str:
    def part(v):
        return "" if v is None else str(v)
    return f"{part(start)}:{part(end)}" + (f":{step}" if step != 1 else "")


def _slice_infer(types, attrs):
    return [types[0].with_shape(slice_shape(types[0].shape, attrs))]


def _slice_grad_infer(types, attrs):            # (g, x_ref) -> like x_ref, zeros off the slice
    g, x = types
    check_grad_shape(g, slice_shape(x.shape, attrs), "slice_grad")
    require_numeric([g], "slice_grad")
    return [x.with_dtype(g.dtype)]


def _slice_attrs(node) -> dict:
    return {k: node.attrs[k] for k in ("axes", "starts", "ends", "steps") if k in node.attrs}


def _slice_vjp(e, n, gs, w):
    return [e("slice_grad", gs[0], n.inputs[0], **_slice_attrs(n))]


def _slice_grad_vjp(e, n, gs, w):
    return [e("slice", gs[0], **_slice_attrs(n)) if w[0] else None, None]


# ---- pad: `pads` as ONNX lists them, every axis's start then every axis's end; constant `value`
def pad_pairs(attrs: dict, rank: int) -> list[tuple[int, int]]:
    pads = tuple(attrs["pads"])
    require(len(pads) == 2 * rank, f"`pad` needs {2 * rank} paddings for a tensor of rank {rank} (every axis's "
                                  f"start, then every axis's end), got {len(pads)}")
    require(all(isinstance(p, int) and p >= 0 for p in pads), f"`pad` needs paddings of at least 0, got {pads}")
    return list(zip(pads[:rank], pads[rank:]))


def _pad_infer(types, attrs):
    t = types[0]
    require_numeric(types, "pad")
    return [t.with_shape(dim_add(d, b + a) for d, (b, a) in zip(t.shape, pad_pairs(attrs, t.rank)))]


def _pad_vjp(e, n, gs, w):
    pairs = [(axis, b, a) for axis, (b, a) in enumerate(pad_pairs(n.attrs, n.inputs[0].type.rank)) if b or a]
    if not pairs:
        return [gs[0]]
    return [e("slice", gs[0], axes=tuple(p[0] for p in pairs), starts=tuple(p[1] for p in pairs),
              ends=tuple(-p[2] if p[2] else None for p in pairs), steps=(1,) * len(pairs))]


# ---- concat along `axis`; at most one input may have a symbolic size along it (its gradient
# is then the slice between the others)
def _concat_infer(types, attrs):
    require(len(types) >= 1, "`concat` needs at least one tensor")
    dtype = same_dtype(types, "concat")
    rank = types[0].rank
    require(rank >= 1 and all(t.rank == rank for t in types),
           "`concat` needs tensors of one rank (at least 1), got " + " and ".join(fmt_shape(t.shape) for t in types))
    axis = norm_axis(attrs.get("axis", 0), rank)
    for t in types[1:]:
        require(all(a == b for i, (a, b) in enumerate(zip(t.shape, types[0].shape)) if i != axis),
               f"`concat` along axis {axis} needs the other axes to agree, got "
               + " and ".join(fmt_shape(t.shape) for t in types))
    sizes = [t.shape[axis] for t in types]
    symbolic = [d for d in sizes if not isinstance(d, int)]
    require(len(symbolic) <= 1, f"`concat` along axis {axis} can join at most one tensor of symbolic size there, "
                               f"got sizes {', '.join(map(str, sizes))}")
    total = sum(d for d in sizes if isinstance(d, int))
    size = dim_add(symbolic[0], total) if symbolic else total
    return [TensorType(dtype, tuple(size if i == axis else d for i, d in enumerate(types[0].shape)))]


def _concat_vjp(e, n, gs, w):
    """Each input's gradient is its slice of g; behind the one symbolic size, counted from the end."""
    axis = norm_axis(n.attrs.get("axis", 0), n.out.type.rank)
    sizes = [v.shape[axis] for v in n.inputs]
    symbolic = next((i for i, s in enumerate(sizes) if not isinstance(s, int)), len(sizes))
    grads = []
    for i, (size, want) in enumerate(zip(sizes, w)):
        if not want:
            grads.append(None)
            continue
        if i < symbolic:
            start, end = sum(sizes[:i]), sum(sizes[:i]) + size
        else:
            after = sum(sizes[i + 1:])
            start = sum(sizes[:i]) if i == symbolic else -(after + size)
            end = -after if after else None
        grads.append(e("slice", gs[0], axes=(axis,), starts=(start,), ends=(end,), steps=(1,)))
    return grads


# ---- gather along `axis` (ONNX Gather: table[..., indices, ...], negative indices count from the
# end); its gradient adds into zeros at the gathered rows, so repeated indices accumulate
INT_INDEX_DTYPES = ("int32", "int64")


def _gather_shape(table: TensorType, indices: TensorType, attrs: dict, opname: str) -> tuple:
    require(indices.dtype in INT_INDEX_DTYPES, f"`{opname}` needs integer indices, got {indices.dtype}")
    require(table.rank >= 1, f"`{opname}` needs a table of rank 1 or more, got a scalar")
    axis = norm_axis(attrs.get("axis", 0), table.rank)
    return table.shape[:axis] + indices.shape + table.shape[axis + 1:]


def _gather_infer(types, attrs):
    table, indices = types
    return [table.with_shape(_gather_shape(table, indices, attrs, "gather"))]


def _scatter_add_infer(types, attrs):           # (g, indices, table_ref) -> like table_ref
    g, indices, table = types
    require_numeric([g], "scatter_add")
    check_grad_shape(g, _gather_shape(table, indices, attrs, "scatter_add"), "scatter_add")
    return [table.with_dtype(g.dtype)]


def _gather_vjp(e, n, gs, w):
    return [e("scatter_add", gs[0], n.inputs[1], n.inputs[0], axis=n.attrs.get("axis", 0)) if w[0] else None,
            None]


def _scatter_add_vjp(e, n, gs, w):
    return [e("gather", gs[0], n.inputs[1], axis=n.attrs.get("axis", 0)) if w[0] else None, None, None]


# ---- index_add(base, indices, updates, [indices2, updates2, ...]): `base` plus the updates added
# at their indices along `axis`, repeated indices summed, the sum of every pair's updates made
# first and added to `base` once (base + scatter_add(...) + ...), without a table of zeros: a
# sparse update (an embedding's SGD step) touches only the rows it names
def _index_add_infer(types, attrs):
    base, pairs = types[0], types[1:]
    require(len(pairs) >= 2 and len(pairs) % 2 == 0, "`index_add` takes a table, then indices and updates in pairs")
    require_numeric([base], "index_add")
    for indices, updates in zip(pairs[::2], pairs[1::2]):
        require(updates.dtype == base.dtype, f"`index_add` adds {updates.dtype} updates into a {base.dtype} table")
        want = _gather_shape(base, indices, attrs, "index_add")
        require(tuple(updates.shape) == tuple(want), f"`index_add` needs updates shaped like the gathered slices, "
                                                    f"{fmt_shape(want)}, got {fmt_shape(updates.shape)}")
    return [base]


def _index_add_vjp(e, n, gs, w):
    axis = n.attrs.get("axis", 0)
    grads = [gs[0] if w[0] else None]
    for k in range(1, len(n.inputs), 2):
        grads += [None, e("gather", gs[0], n.inputs[k], axis=axis) if w[k + 1] else None]
    return grads


defop("slice", _slice_infer, _slice_vjp, arity=1)
defop("slice_grad", _slice_grad_infer, _slice_grad_vjp, arity=2)
defop("pad", _pad_infer, _pad_vjp, arity=1)
defop("concat", _concat_infer, _concat_vjp, arity=None)
defop("gather", _gather_infer, _gather_vjp, arity=2)
defop("scatter_add", _scatter_add_infer, _scatter_add_vjp, arity=3)
defop("index_add", _index_add_infer, _index_add_vjp, arity=None)
