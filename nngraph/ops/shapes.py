"""Ops that make or reshape tensors: constants, fills, positions, transpose, reshape, broadcast,
and the shape-taking ops gradients use so that a gradient graph stays valid for any symbolic size."""
from __future__ import annotations

import numpy as np

from nngraph.ir import dims
from nngraph.ir.registry import defop
from nngraph.ir.types import Dim, TensorType
from nngraph.ops.rules import broadcast_shapes, dim_product, fmt_shape, norm_axes, norm_axis, require


def _fill_infer(types, attrs):
    """`dims` holds ints and (input index, axis) pairs: a size read from an input at run time,
    which is how a symbolic size such as the batch reaches a tensor of zeros."""
    shape = [d if isinstance(d, int) else types[d[0]].shape[d[1]] for d in attrs["dims"]]
    return [TensorType(attrs.get("dtype", "float32"), tuple(shape))]


defop("fill", _fill_infer)# a tensor of one value whose shape may take sizes from inputs


def _constant_infer(types, attrs):
    value = attrs["value"]
    return [TensorType(str(value.dtype), tuple(value.shape))]


defop("constant", _constant_infer, arity=0)


def _dim_size_infer(types, attrs):
    return [TensorType(attrs.get("dtype", "float32"), ())]


defop("dim_size", _dim_size_infer, arity=1)   # product of the sizes of some axes, as a scalar


def _transpose_infer(types, attrs):
    t = types[0]
    perm = attrs.get("perm") or tuple(reversed(range(t.rank)))
    require(sorted(perm) == list(range(t.rank)), f"{tuple(perm)} is not a permutation of the {t.rank} axes")
    return [t.with_shape(tuple(t.shape[p] for p in perm))]


def _transpose_vjp(e, n, gs, w):
    perm = n.attrs.get("perm") or tuple(reversed(range(n.inputs[0].type.rank)))
    return [e("transpose", gs[0], perm=tuple(int(i) for i in np.argsort(perm)))]


defop("transpose", _transpose_infer, _transpose_vjp, arity=1)


def _reshape_infer(types, attrs):
    """ONNX semantics: 0 copies the input's dim at that position, -1 is inferred."""
    t = types[0]
    target = list(attrs["shape"])
    require(target.count(-1) <= 1, "a reshape can infer at most one dimension (-1)")
    require(all(d != 0 or i < t.rank for i, d in enumerate(target)),
           f"a 0 in a reshape copies the input's size on that axis, but {fmt_shape(t.shape)} has only {t.rank} axes")
    out = [t.shape[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in out:
        rest = dim_product([d for d in out if d != -1])
        total = dim_product(t.shape)
        if isinstance(total, int) and isinstance(rest, int):
            require(rest != 0 and total % rest == 0, f"cannot reshape {fmt_shape(t.shape)} to {fmt_shape(target)}")
            out[out.index(-1)] = total // rest
        else:
            out[out.index(-1)] = _divide_dims(t.shape, [d for d in out if d != -1])
    else:
        total, want = dim_product(t.shape), dim_product(out)
        require(not (isinstance(total, int) and isinstance(want, int)) or total == want,
               f"cannot reshape {fmt_shape(t.shape)} ({total} elements) to {fmt_shape(out)} ({want} elements)")
    return [t.with_shape(out)]


def _divide_dims(have, known) -> Dim:
    """The inferred dim of a symbolic reshape: the input's size over the other sizes, cancelled
    (nngraph/ir/dims.py): [N, 6] -> [-1, 3] gives 2*N, and [4*N, 4] -> [-1, 16] gives N."""
    return dims.divide(dim_product(have), dim_product(known))


defop("reshape", _reshape_infer, arity=1, vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0])])
defop("reshape_like", lambda types, attrs: [types[0].with_shape(types[1].shape)], arity=2,
      vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0]) if w[0] else None, None])
defop("broadcast_like", lambda types, attrs: [types[0].with_shape(broadcast_shapes(types[0].shape, types[1].shape))],
      arity=2, vjp=lambda e, n, gs, w: [e.sum_to(gs[0], n.inputs[0]) if w[0] else None, None])


def _expand_dims_infer(types, attrs):
    t = types[0]
    rank = t.rank + len(attrs["axes"])
    axes = norm_axes(attrs["axes"], rank)
    it = iter(t.shape)
    return [t.with_shape([1 if i in axes else next(it) for i in range(rank)])]


defop("expand_dims", _expand_dims_infer, arity=1,
      vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0])])


def _positions_infer(types, attrs):
    t = types[0]
    require(t.rank >= 1, "`positions` needs a tensor with at least one axis, got a scalar")
    axis = norm_axis(attrs.get("axis", 0), t.rank)
    return [TensorType("int64", (t.shape[axis],))]


defop("positions", _positions_infer, arity=1)   # 0, 1, ..., size - 1 of one axis: int64
