"""Matrix products: MatMul and Gemm."""
from __future__ import annotations

from nngraph.ir import Value
from nngraph.onnx.context import Ctx, Reject
from nngraph.onnx.handlers.common import need_float, same_dtype, squeeze
from nngraph.onnx.handlers.registry import handles


# ---------------------------------------------------------------- linear algebra
@handles("MatMul")
def _matmul(cx: Ctx) -> Value:
    """numpy matmul: a 1-D operand gains an axis for the product, which is then dropped again."""
    a, b = cx.x(0), cx.x(1)
    same_dtype(cx, a, b)
    if a.dtype == "bool":
        raise Reject("dtype bool")
    if a.type.rank == 0 or b.type.rank == 0:
        raise Reject("0-d operands")
    a2 = cx.op("expand_dims", a, axes=(0,)) if a.type.rank == 1 else a
    b2 = cx.op("expand_dims", b, axes=(1,)) if b.type.rank == 1 else b
    out = cx.op("matmul", a2, b2)
    drop = ([out.type.rank - 2] if a.type.rank == 1 else []) + ([out.type.rank - 1] if b.type.rank == 1 else [])
    return squeeze(cx, out, drop)


@handles("Gemm")
def _gemm(cx: Ctx) -> Value:
    """alpha * A' @ B' + beta * C, with A' = A.T if transA, B' = B.T if transB."""
    a, b = cx.x(0), cx.x(1)
    same_dtype(cx, a, b)
    need_float(cx, a)
    cx.ignore("broadcast")        # opset < 7: numpy broadcasting of C covers it
    if cx.attr("transA", 0):
        a = cx.op("transpose", a, perm=(1, 0))
    if cx.attr("transB", 0):
        b = cx.op("transpose", b, perm=(1, 0))
    out = cx.op("matmul", a, b)
    alpha, beta = cx.attr("alpha", 1.0), cx.attr("beta", 1.0)
    if alpha != 1.0:
        out = cx.op("mul", out, cx.like(alpha, out))
    if cx.has(2):
        c = cx.x(2)
        same_dtype(cx, a, c)
        if beta != 1.0:
            c = cx.op("mul", c, cx.like(beta, c))
        out = cx.op("add", out, c)
    return out
