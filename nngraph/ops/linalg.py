"""Matrix products."""
from __future__ import annotations

from nngraph.ir.registry import defop
from nngraph.ir.types import TensorType
from nngraph.ops.rules import broadcast_shapes, fmt_shape, require, same_dtype


# ---------------------------------------------------------------- shapes
def matmul_type(types, attrs):
    a, b = types
    same_dtype(types, "@")
    require(a.rank >= 2 and b.rank >= 2,
           f"`@` needs operands of rank 2 or more, got {fmt_shape(a.shape)} and {fmt_shape(b.shape)}")
    require(a.shape[-1] == b.shape[-2],
           f"`@` contracts the last axis of {fmt_shape(a.shape)} with the second-to-last of "
           f"{fmt_shape(b.shape)}: {a.shape[-1]} != {b.shape[-2]}")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return [TensorType(a.dtype, batch + (a.shape[-2], b.shape[-1]))]


def swap_last(e, v):
    perm = tuple(range(v.type.rank - 2)) + (v.type.rank - 1, v.type.rank - 2)
    return e("transpose", v, perm=perm)


def right_operand_grad(e, a, g, b):
    """The gradient of `b` in `a @ b`, given the product's gradient `g`. When `b` is one matrix
    shared by every leading index of `a` (a dense layer over a batch, or over batch × time), the
    sum over those indices is one 2-D GEMM over the flattened rows, not a batched product summed
    afterwards, which is several times slower on every backend."""
    if (b.type.rank == 2 and a.type.rank > 2 and g.shape[:-1] == a.shape[:-1]
            and isinstance(a.shape[-1], int) and isinstance(g.shape[-1], int)):
        rows_a = e("reshape", a, shape=(-1, a.shape[-1]))
        rows_g = e("reshape", g, shape=(-1, g.shape[-1]))
        return e("matmul", swap_last(e, rows_a), rows_g)
    return e.sum_to(e("matmul", swap_last(e, a), g), b)


def _matmul_vjp(e, n, gs, w):
    a, b = n.inputs
    return [e.sum_to(e("matmul", gs[0], swap_last(e, b)), a) if w[0] else None,
            right_operand_grad(e, a, gs[0], b) if w[1] else None]


defop("matmul", matmul_type, _matmul_vjp, arity=2)
