"""ONNX lowerings of the fused ops (nngraph/ops/fused.py)."""
from __future__ import annotations

import math

import numpy as np

from nngraph.ir.graph import Node, Value
from nngraph.ir.registry import OPS
from nngraph.onnx.lower.registry import LOWERINGS
from nngraph.ops.fused import GELU_CUBIC, SQRT_2_OVER_PI, Expr
from nngraph.ops.linalg import matmul_type
from nngraph.ops.rules import broadcast_shapes


def _gemm_onnx(b, node, inputs):
    a, w, c = node.inputs
    product_shape = matmul_type([a.type, w.type], {})[0].shape
    if a.type.rank == w.type.rank == 2 and broadcast_shapes(product_shape, c.shape) == product_shape:
        return [b.op("Gemm", *inputs)]          # ONNX Gemm: C broadcasts to A @ B
    return [b.op("Add", b.op("MatMul", inputs[0], inputs[1]), inputs[2])]


def _softmax_cross_entropy_onnx(b, node, inputs):
    # ONNX's SoftmaxCrossEntropyLoss takes class indices only; this op takes distributions
    axis = node.attrs.get("axis", -1)
    log_probs = b.op("LogSoftmax", inputs[0], axis=axis)
    loss = b.op("Neg", b.op("ReduceSum", b.op("Mul", inputs[1], log_probs), b.ints([axis]), keepdims=0))
    return [loss, b.op("Exp", log_probs)]


def _gelu_onnx(b, node, inputs):
    """ONNX's Gelu arrived in opset 20; at opset 18 it is Erf (or Tanh) arithmetic."""
    x, dtype = inputs[0], node.inputs[0].dtype

    def c(value):
        return b.const(np.asarray(value, dtype))
    if node.attrs.get("approximate", "none") == "tanh":
        cubic = b.op("Add", c(1), b.op("Mul", c(GELU_CUBIC), b.op("Mul", x, x)))
        phi = b.op("Tanh", b.op("Mul", c(SQRT_2_OVER_PI), b.op("Mul", x, cubic)))
    else:
        phi = b.op("Erf", b.op("Mul", x, c(math.sqrt(0.5))))
    return [b.op("Mul", b.op("Mul", c(0.5), x), b.op("Add", c(1), phi))]


def _attention_onnx(b, node, inputs):
    q, k, v, mask = inputs
    rank = node.inputs[1].type.rank
    keys = b.op("Transpose", k, perm=list(range(rank - 2)) + [rank - 1, rank - 2])
    scale = b.const(np.asarray(node.attrs["scale"], node.inputs[0].dtype))
    weights = b.op("Softmax", b.op("Add", b.op("Mul", b.op("MatMul", q, keys), scale), mask), axis=-1)
    return [b.op("MatMul", weights, v), weights]


def _fused_onnx(b, node, inputs):
    """The formula's ops one by one, each with its own lowering, under the fused node's name."""
    def lower(expr: Expr) -> tuple[str, Value]:
        args = [(inputs[a], node.inputs[a]) if isinstance(a, int) else lower(a) for a in expr.args]
        part = Node(expr.op, [v for _, v in args], dict(expr.attrs), span=node.span, scope=node.scope,
                    role=node.role)
        out_type = OPS[expr.op].infer([v.type for _, v in args], dict(expr.attrs))[0]
        part.outputs = [Value(f"{node.out.name}.part", out_type, part)]
        return b.lower(part, [name for name, _ in args])[0], part.outputs[0]
    return [lower(node.attrs["expr"])[0]]


LOWERINGS.update({
    "gemm": _gemm_onnx,
    "softmax_cross_entropy": _softmax_cross_entropy_onnx,
    "fused": _fused_onnx,
    "gelu": _gelu_onnx,
    "attention": _attention_onnx,
})
