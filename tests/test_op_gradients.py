"""Every differentiable op's symbolic VJP against central finite differences in float64, over
several shapes with broadcasting and symbolic dimensions; second derivatives (grad of grad) as
Hessian-vector products; numerical stability for huge logits; and every kernel's result against
its op's shape rule. A registry walk keeps the case table complete: an op added to OPS without
a gradient check (or an explicit non-differentiable listing) fails `test_registry_is_covered`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from conftest import (add_dot_loss, assert_close, central_difference, concrete_shape,
                      directional_difference, typed_run, weighted_sum_loss)
from nngraph.autodiff import grad
from nngraph.ir import Graph, ParamInit, TensorType
from nngraph.ops import OPS, Expr, ShapeError
from nngraph.runtime.kernels import KERNELS
from nngraph.runtime.executor import Plan
from nngraph.verify import verify


# ================================================================ the case table
@dataclass(frozen=True)
class In:
    """One tensor input of the op under test.
    kind: "x" a float input that is differentiated; "fixed" a float input that is not (the
    reference of reshape_like / broadcast_like); "bool" a condition; "int" class indices.
    domain: where the random values lie ("any", "positive", "nonzero", "distinct")."""
    shape: tuple
    kind: str = "x"
    domain: str = "any"
    high: int = 3          # exclusive upper bound of "int" values


def X(*shape, domain="any"):
    return In(shape, "x", domain)


def FIXED(*shape):
    return In(shape, "fixed")


def COND(*shape):
    return In(shape, "bool")


def INT(*shape, high=3):
    return In(shape, "int", high=high)


@dataclass(frozen=True)
class Case:
    id: str
    op: str
    inputs: list
    attrs: dict = field(default_factory=dict)


# Symbolic dims ("N", "T") are bound at run time to these sizes (the kernel/shape-rule test also
# binds N = 1, where broadcasting a symbolic dim meets a literal 1).
BINDINGS = {"N": 3, "T": 2, "H": 5}      # H: an image height

GRADIENT_CASES = [
    # ---- binary elementwise, with broadcasting
    Case("add-symbolic-row-broadcast", "add", [X("N", 3), X(3)]),
    Case("add-both-broadcast", "add", [X(2, 1, 4), X(3, 1)]),
    Case("add-scalar", "add", [X(), X(2, 3)]),
    Case("add-symbolic-dim-against-1", "add", [X("N", 1), X("N", 4)]),
    Case("sub-symbolic-column-broadcast", "sub", [X("N", 3), X("N", 1)]),
    Case("sub-rank-broadcast", "sub", [X(4), X(2, 4)]),
    Case("sub-scalar-minus-symbolic", "sub", [X(), X("N")]),
    Case("mul-both-broadcast", "mul", [X(2, 1, 4), X(3, 1)]),
    Case("mul-symbolic-by-scalar", "mul", [X("N", 2), X()]),
    Case("mul-same-shape", "mul", [X(2, 3), X(2, 3)]),
    Case("div-symbolic-row-broadcast", "div", [X("N", 3), X(3, domain="positive")]),
    Case("div-column-broadcast", "div", [X(2, 3), X(2, 1, domain="nonzero")]),
    Case("div-both-broadcast", "div", [X(2, 1), X(1, 3, domain="positive")]),
    Case("div-scalar-numerator", "div", [X(), X(2, 3, domain="positive")]),
    Case("pow-symbolic-scalar-exponent", "pow", [X("N", 3, domain="positive"), X()]),
    Case("pow-row-exponent", "pow", [X(2, 3, domain="positive"), X(3)]),
    Case("pow-both-broadcast", "pow", [X(2, 1, domain="positive"), X(1, 3)]),
    Case("pow-scalar-base", "pow", [X(domain="positive"), X(2, 3)]),
    # ---- unary elementwise
    Case("neg-symbolic", "neg", [X("N", 3)]),
    Case("neg-rank3", "neg", [X(2, 2, 2)]),
    Case("exp-symbolic", "exp", [X("N", 3)]),
    Case("exp-scalar", "exp", [X()]),
    Case("log-symbolic", "log", [X("N", 3, domain="positive")]),
    Case("log-rank2", "log", [X(2, 2, domain="positive")]),
    Case("sqrt-symbolic", "sqrt", [X("N", 3, domain="positive")]),
    Case("sqrt-vector", "sqrt", [X(5, domain="positive")]),
    Case("abs-symbolic", "abs", [X("N", 3, domain="nonzero")]),
    Case("abs-rank2", "abs", [X(2, 2, domain="nonzero")]),
    Case("relu-symbolic", "relu", [X("N", 3, domain="nonzero")]),
    Case("relu-rank3", "relu", [X(2, 3, 2, domain="nonzero")]),
    Case("sigmoid-symbolic", "sigmoid", [X("N", 3)]),
    Case("sigmoid-vector", "sigmoid", [X(4)]),
    Case("tanh-symbolic", "tanh", [X("N", 3)]),
    Case("tanh-rank2", "tanh", [X(2, 2)]),
    Case("softplus-symbolic", "softplus", [X("N", 3)]),
    Case("softplus-vector", "softplus", [X(4)]),
    # ---- normalizations along an axis
    Case("softmax-symbolic-axis-1", "softmax", [X("N", 4)], {"axis": -1}),
    Case("softmax-rank3-axis0", "softmax", [X(3, 2, 4)], {"axis": 0}),
    Case("softmax-rank3-axis1", "softmax", [X(2, 3, 4)], {"axis": 1}),
    Case("log_softmax-symbolic-axis-1", "log_softmax", [X("N", 4)], {"axis": -1}),
    Case("log_softmax-axis0", "log_softmax", [X(3, 2)], {"axis": 0}),
    Case("log_softmax-rank3-axis-2", "log_softmax", [X(2, 3, 4)], {"axis": -2}),
    Case("softmax-vector", "softmax", [X(4)], {"axis": 0}),
    # ---- selection: the condition is a bool input nobody differentiates
    Case("where-symbolic-broadcast", "where", [COND("N", 3), X(3), X("N", 1)]),
    Case("where-scalar-branch", "where", [COND(3), X(2, 3), X()]),
    Case("where-cond-broadcasts-both", "where", [COND(2, 1, 3), X(4, 1), X(3)]),
    Case("where-scalar-branches", "where", [COND(2, 3), X(), X()]),
    # ---- cast (float64 -> float64 is the identity; float32 -> float64 is checked in its own test)
    Case("cast-symbolic-f64", "cast", [X("N", 3)], {"dtype": "float64"}),
    Case("cast-rank3-f64", "cast", [X(2, 1, 3)], {"dtype": "float64"}),
    # ---- reductions
    Case("sum-all", "sum", [X("N", 3)], {"axes": None}),
    Case("sum-all-keepdims", "sum", [X(2, 3)], {"axes": None, "keepdims": True}),
    Case("sum-one-axis", "sum", [X(2, 3, 4)], {"axes": (1,)}),
    Case("sum-int-axis", "sum", [X(2, 3)], {"axes": 0}),
    Case("sum-two-axes-keepdims", "sum", [X(2, 3, 4)], {"axes": (0, 2), "keepdims": True}),
    Case("sum-negative-axis-symbolic", "sum", [X("N", 4)], {"axes": (-1,)}),
    Case("sum-negative-axes", "sum", [X(2, 3, 4)], {"axes": (-1, -3)}),
    Case("sum-of-scalar", "sum", [X()], {"axes": None}),
    Case("sum-no-axes", "sum", [X(2, 3)], {"axes": ()}),
    Case("mean-all", "mean", [X("N", 3)], {"axes": None}),
    Case("mean-one-axis-keepdims", "mean", [X(2, 3, 4)], {"axes": (1,), "keepdims": True}),
    Case("mean-symbolic-axis", "mean", [X("N", 4)], {"axes": (0,)}),
    Case("mean-two-negative-axes", "mean", [X(2, 3, 4)], {"axes": (-1, 0)}),
    Case("mean-negative-axis-keepdims", "mean", [X("N", 2, 3)], {"axes": (-2,), "keepdims": True}),
    Case("mean-int-negative-axis", "mean", [X(2, 3)], {"axes": -1}),
    Case("mean-of-scalar", "mean", [X()], {"axes": None}),
    Case("max-all", "max", [X(2, 3, 4, domain="distinct")], {"axes": None}),
    Case("max-all-keepdims", "max", [X(3, 2, domain="distinct")], {"axes": None, "keepdims": True}),
    Case("max-negative-axis-symbolic", "max", [X("N", 4, domain="distinct")], {"axes": (-1,)}),
    Case("max-axis0-keepdims", "max", [X(3, 4, domain="distinct")], {"axes": (0,), "keepdims": True}),
    Case("max-two-axes", "max", [X(2, 3, 4, domain="distinct")], {"axes": (0, 2)}),
    Case("max-symbolic-all", "max", [X("N", 3, domain="distinct")], {"axes": None}),
    Case("max-int-axis-keepdims", "max", [X(2, 3, domain="distinct")], {"axes": 1, "keepdims": True}),
    # ---- matmul
    Case("matmul-symbolic", "matmul", [X("N", 3), X(3, 2)]),
    Case("matmul-batched", "matmul", [X(2, 3, 4), X(4, 5)]),
    Case("matmul-batched-broadcast", "matmul", [X(1, 3, 4), X(2, 4, 5)]),
    Case("matmul-matrix-times-batch", "matmul", [X(3, 4), X(2, 4, 5)]),
    Case("matmul-both-batch-broadcast", "matmul", [X(2, 1, 3, 4), X(5, 4, 2)]),
    Case("matmul-symbolic-batch", "matmul", [X("N", 2, 3), X("N", 3, 2)]),
    Case("matmul-symbolic-contraction", "matmul", [X(2, "N"), X("N", 2)]),
    # ---- layout
    Case("transpose-default-symbolic", "transpose", [X("N", 3)]),
    Case("transpose-perm", "transpose", [X(2, 3, 4)], {"perm": (1, 2, 0)}),
    Case("transpose-rank4-perm", "transpose", [X(2, 3, 4, 5)], {"perm": (0, 3, 1, 2)}),
    Case("reshape-zero-and-minus-one-symbolic", "reshape", [X("N", 6)], {"shape": (0, 2, -1)}),
    Case("reshape-minus-one", "reshape", [X(2, 3, 4)], {"shape": (4, -1)}),
    Case("reshape-flatten-symbolic", "reshape", [X("N", 4)], {"shape": (-1,)}),
    Case("reshape-split-symbolic", "reshape", [X("N", 4)], {"shape": (2, -1)}),
    Case("reshape-merge-two-symbols", "reshape", [X("N", "T", 4)], {"shape": (-1, 4)}),
    Case("reshape-zeros", "reshape", [X(2, 3, 4)], {"shape": (0, 0, 2, 2)}),
    Case("reshape-zero-symbolic-middle", "reshape", [X(2, "N", 3)], {"shape": (0, -1)}),
    Case("reshape-scalar-to-matrix", "reshape", [X()], {"shape": (1, 1)}),
    Case("reshape_like", "reshape_like", [X(2, 6), FIXED(3, 4)]),
    Case("reshape_like-symbolic", "reshape_like", [X("N", 4), FIXED("N", 2, 2)]),
    Case("broadcast_like-symbolic", "broadcast_like", [X(3, 1), FIXED("N", 3, 4)]),
    Case("broadcast_like-row", "broadcast_like", [X(4), FIXED(2, 4)]),
    Case("broadcast_like-scalar", "broadcast_like", [X(), FIXED(2, 3)]),
    Case("broadcast_like-both-ways", "broadcast_like", [X(3, 1), FIXED(4)]),
    Case("expand_dims-symbolic", "expand_dims", [X("N", 3)], {"axes": (1,)}),
    Case("expand_dims-front-and-back", "expand_dims", [X(3)], {"axes": (0, -1)}),
    Case("expand_dims-two-middle", "expand_dims", [X(2, 3)], {"axes": (0, 2)}),
    Case("expand_dims-of-scalar", "expand_dims", [X()], {"axes": (0,)}),
    # ---- convolution (NCHW; pads are top, left, bottom, right) and its two adjoints
    Case("conv2d-symbolic-batch", "conv2d", [X("N", 2, 5, 4), X(3, 2, 3, 2)]),
    Case("conv2d-stride-pad", "conv2d", [X(2, 2, 6, 5), X(3, 2, 3, 3)], {"stride": (2, 2), "pads": (1, 1, 1, 1)}),
    Case("conv2d-asymmetric-pad-dilation", "conv2d", [X(1, 3, 6, 6), X(2, 3, 2, 3)],
         {"stride": (1, 2), "pads": (0, 2, 1, 0), "dilation": (2, 1)}),
    Case("conv2d-groups", "conv2d", [X("N", 4, 4, 4), X(6, 2, 2, 2)], {"groups": 2, "pads": (1, 0, 0, 1)}),
    Case("conv2d-depthwise-stride-leaves-rows", "conv2d", [X(2, 3, 6, 5), X(3, 1, 2, 2)],
         {"groups": 3, "stride": (3, 2)}),
    Case("conv2d-symbolic-height", "conv2d", [X(1, 2, "H", 4), X(2, 2, 3, 3)], {"pads": (1, 1, 0, 1)}),
    Case("conv2d_input_grad-symbolic", "conv2d_input_grad", [X("N", 3, 3, 2), X(3, 2, 3, 3), FIXED("N", 2, 5, 4)]),
    Case("conv2d_input_grad-stride-groups", "conv2d_input_grad", [X(2, 4, 2, 3), X(4, 1, 3, 2), FIXED(2, 2, 5, 6)],
         {"stride": (2, 2), "pads": (0, 1, 1, 0), "dilation": (1, 2), "groups": 2}),
    Case("conv2d_input_grad-symbolic-height", "conv2d_input_grad", [X(1, 2, "H-1", 3), X(2, 3, 3, 2), FIXED(1, 3, "H", 4)],
         {"stride": (1, 1), "pads": (1, 0, 0, 0)}),
    Case("conv2d_input_grad-symbolic-height-stride", "conv2d_input_grad",
         [X(1, 2, "(H-1)//2+1", 2), X(2, 1, 2, 2), FIXED(1, 1, "H", 4)], {"stride": (2, 2), "pads": (1, 0, 0, 0)}),
    Case("conv2d_weight_grad-symbolic", "conv2d_weight_grad", [X("N", 2, 5, 4), X("N", 3, 3, 2), FIXED(3, 2, 3, 3)]),
    Case("conv2d_weight_grad-stride-groups", "conv2d_weight_grad", [X(2, 2, 5, 6), X(2, 4, 2, 3), FIXED(4, 1, 3, 2)],
         {"stride": (2, 2), "pads": (0, 1, 1, 0), "dilation": (1, 2), "groups": 2}),
    # ---- pooling: max routes the gradient to each window's maximum (no ties: "distinct")
    Case("max_pool2d-symbolic", "max_pool2d", [X("N", 2, 4, 6, domain="distinct")], {"kernel": (2, 2), "stride": (2, 2)}),
    Case("max_pool2d-overlap-pad", "max_pool2d", [X(1, 2, 5, 5, domain="distinct")],
         {"kernel": (3, 2), "stride": (2, 1), "pads": (1, 1, 1, 0)}),
    Case("max_pool2d_grad-symbolic", "max_pool2d_grad", [FIXED("N", 2, 4, 6), X("N", 2, 2, 3)],
         {"kernel": (2, 2), "stride": (2, 2)}),
    Case("max_pool2d_grad-overlap-zero-wrt-x", "max_pool2d_grad", [X(1, 2, 5, 5, domain="distinct"), X(1, 2, 3, 5)],
         {"kernel": (3, 2), "stride": (2, 1), "pads": (1, 1, 1, 0)}),
    Case("max_pool2d_select-symbolic", "max_pool2d_select", [FIXED("N", 2, 4, 6), X("N", 2, 4, 6)],
         {"kernel": (2, 2), "stride": (2, 2)}),
    Case("max_pool2d_select-overlap", "max_pool2d_select", [FIXED(1, 2, 5, 5), X(1, 2, 5, 5)],
         {"kernel": (3, 2), "stride": (2, 1), "pads": (1, 1, 1, 0)}),
    Case("avg_pool2d-symbolic", "avg_pool2d", [X("N", 2, 4, 6)], {"kernel": (2, 2), "stride": (2, 2)}),
    Case("avg_pool2d-overlap-pad", "avg_pool2d", [X(1, 2, 5, 5)], {"kernel": (3, 2), "stride": (2, 1), "pads": (1, 1, 1, 0)}),
    Case("avg_pool2d_grad-symbolic", "avg_pool2d_grad", [X("N", 2, 2, 3), FIXED("N", 2, 4, 6)],
         {"kernel": (2, 2), "stride": (2, 2)}),
    Case("avg_pool2d_grad-symbolic-height", "avg_pool2d_grad", [X(1, 2, "(H-1)//2+1", 3), FIXED(1, 2, "H", 4)],
         {"kernel": (2, 2), "stride": (2, 1), "pads": (1, 0, 0, 0)}),
    Case("avg_pool2d_grad-overlap-pad", "avg_pool2d_grad", [X(1, 2, 3, 5), FIXED(1, 2, 5, 5)],
         {"kernel": (3, 2), "stride": (2, 1), "pads": (1, 1, 1, 0)}),
    # ---- slicing, padding, joining (negative indices and steps; symbolic axes)
    Case("slice-negative-index", "slice", [X("N", 4, 3)], {"axes": (1,), "starts": (-1,), "ends": (None,), "steps": (1,)}),
    Case("slice-reverse-symbolic", "slice", [X("N", 3)], {"axes": (0,), "starts": (None,), "ends": (None,), "steps": (-1,)}),
    Case("slice-negative-step-two-axes", "slice", [X(5, 6)], {"axes": (0, -1), "starts": (-1, 1), "ends": (0, None), "steps": (-2, 2)}),
    Case("slice-drop-first-of-symbolic", "slice", [X("N", 2)], {"axes": (0,), "starts": (1,), "ends": (None,), "steps": (1,)}),
    Case("slice_grad-symbolic", "slice_grad", [X("N", 1, 3), FIXED("N", 4, 3)], {"axes": (1,), "starts": (-1,), "ends": (None,), "steps": (1,)}),
    Case("slice_grad-negative-steps", "slice_grad", [X(2, 3), FIXED(5, 6)], {"axes": (0, 1), "starts": (-1, 1), "ends": (0, None), "steps": (-2, 2)}),
    Case("slice_grad-reverse-symbolic", "slice_grad", [X("N", 2), FIXED("N", 4)],
         {"axes": (0, 1), "starts": (None, -1), "ends": (None, 0), "steps": (-1, -2)}),
    Case("pad-symbolic", "pad", [X("N", 3)], {"pads": (1, 0, 2, 2), "value": 0.0}),
    Case("pad-image-value", "pad", [X(1, 2, 3, 3)], {"pads": (0, 0, 1, 2, 0, 0, 2, 0), "value": -1.5}),
    Case("concat-symbolic-last-axis", "concat", [X("N", 2), X("N", 3), X("N", 1)], {"axis": -1}),
    Case("concat-symbolic-axis", "concat", [X(2, 3), X("N", 3), X(1, 3)], {"axis": 0}),
    Case("concat-single", "concat", [X(2, 3)], {"axis": 1}),
    # ---- gather and its gradient, which adds rows at repeated indices
    Case("gather-repeated-indices", "gather", [X(3, 4), INT("N", 5, high=3)]),
    Case("gather-axis1", "gather", [X(2, 4, 3), INT(2, 3, high=4)], {"axis": 1}),
    Case("gather-negative-axis", "gather", [X(3, 4), INT(6, high=4)], {"axis": -1}),
    Case("scatter_add-repeated-indices", "scatter_add", [X("N", 5, 4), INT("N", 5, high=3), FIXED(3, 4)]),
    Case("scatter_add-axis1", "scatter_add", [X(2, 2, 3, 3), INT(2, 3, high=4), FIXED(2, 4, 3)], {"axis": 1}),
    # ---- attention helpers: sine and cosine (sinusoidal positions)
    Case("sin-symbolic", "sin", [X("N", 3)]),
    Case("sin-rank3", "sin", [X(2, 3, 2)]),
    Case("cos-symbolic", "cos", [X("N", 3)]),
    Case("cos-vector", "cos", [X(4)]),
    # ---- fused ops (made by the fusion passes)
    Case("gemm-symbolic-bias-row", "gemm", [X("N", 3), X(3, 2), X(2)]),
    Case("gemm-batched-bias-column", "gemm", [X(2, 3, 4), X(4, 5), X(3, 1)]),
    Case("softmax_cross_entropy-symbolic", "softmax_cross_entropy", [X("N", 4), X("N", 4)], {"axis": -1}),
    Case("softmax_cross_entropy-axis0", "softmax_cross_entropy", [X(3, 2), X(3, 2)], {"axis": 0}),
    Case("fused-chain", "fused", [X("N", 3), X(3)],
         {"expr": Expr("mul", (Expr("sigmoid", (0,)), Expr("add", (0, 1))))}),
    Case("fused-where-relu-grad", "fused", [X(2, 3, domain="nonzero"), X(), X(2, 3)],
         {"expr": Expr("where", (Expr("greater", (0, 1)), 2, Expr("tanh", (0,))))}),
]

# Ops without a VJP (their gradient is zero). Listed explicitly: an op added to OPS must either
# get gradient cases above or be added here on purpose.
NON_DIFFERENTIABLE = {"less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
                      "argmax", "one_hot", "sign", "constant", "dim_size", "fill", "positions"}

# Shape/dtype-only cases for the non-differentiable ops (kernel vs shape rule).
SHAPE_ONLY_CASES = [
    Case(f"{op}-broadcast", op, [FIXED("N", 3), FIXED(3)])
    for op in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")
] + [
    Case("argmax-last-axis", "argmax", [FIXED("N", 4)], {"axis": -1}),
    Case("argmax-axis0-keepdims", "argmax", [FIXED(3, 4)], {"axis": 0, "keepdims": True}),
    Case("one_hot-symbolic", "one_hot", [INT("N", high=4)], {"depth": 4, "dtype": "float64"}),
    Case("one_hot-default-dtype", "one_hot", [INT(2, 3, high=5)], {"depth": 5}),
    Case("sign", "sign", [FIXED("N", 3)]),
    Case("constant-matrix", "constant", [], {"value": np.arange(6.0).reshape(2, 3)}),
    Case("constant-int-scalar", "constant", [], {"value": np.array(7, dtype=np.int64)}),
    Case("dim_size-axes", "dim_size", [FIXED("N", 3, 4)], {"axes": (0, 2), "dtype": "float64"}),
    Case("dim_size-all", "dim_size", [FIXED("N", 2)], {"axes": None}),
    Case("fill-symbolic-from-input", "fill", [FIXED("T", "N", 3)], {"dims": ((0, 1), 4), "value": 0.0, "dtype": "float64"}),
    Case("fill-static", "fill", [], {"dims": (2, 3), "value": 1.5, "dtype": "float32"}),
    Case("cast-float32-to-float64", "cast", [FIXED("N", 3)], {"dtype": "float64"}),
    Case("cast-float-to-int", "cast", [FIXED(2, 3)], {"dtype": "int64"}),
    Case("positions-symbolic-axis", "positions", [FIXED("N", "T", 4)], {"axis": 1}),
    Case("positions-static-negative-axis", "positions", [FIXED("N", 4)], {"axis": -1}),
]


# ================================================================ building and sampling
def sample(rng, spec: In, shape, dtype="float64"):
    if spec.kind == "bool":
        return rng.random(shape) > 0.5
    if spec.kind == "int":
        return rng.integers(0, spec.high, size=shape)
    if spec.domain == "positive":
        x = rng.uniform(0.5, 2.0, size=shape)
    elif spec.domain == "nonzero":      # away from the kink of relu / abs and from division by 0
        x = rng.normal(size=shape)
        x = np.where(x >= 0, 1, -1) * (0.3 + np.abs(x))
    elif spec.domain == "distinct":     # no ties for max, at least 0.1 apart (>> eps)
        n = int(np.prod(shape, dtype=int))
        x = (rng.permutation(n) - n / 2).reshape(shape) * 0.1
    else:
        x = rng.normal(size=shape)
    return np.asarray(x, dtype=dtype)


def build(case: Case, dtype="float64"):
    """Graph inputs x0, x1, ... (float inputs of `dtype`) -> op -> output "out", and a scalar loss
    sum(out * r) with r a fed input of out's type. Returns (graph, names to differentiate)."""
    g = Graph(case.id)
    values, wrt = [], []
    for i, spec in enumerate(case.inputs):
        vdtype = {"bool": "bool", "int": "int64"}.get(spec.kind, dtype)
        values.append(g.add_input(f"x{i}", TensorType(vdtype, tuple(spec.shape))))
        if spec.kind == "x":
            wrt.append(f"x{i}")
    outs = g.apply(case.op, values, case.attrs)
    g.outputs["out"] = outs[0]
    if len(outs) == 1 and outs[0].type.is_float:
        weighted_sum_loss(g, outs[0])
    elif len(outs) > 1:      # several outputs: every one is weighted into the loss, so all are checked
        for i, extra in enumerate(outs[1:], 1):
            g.outputs[f"out{i}"] = extra
        add_dot_loss(g, [(name, "r" if name == "out" else f"r{name[3:]}") for name in list(g.outputs)], "loss")
        g.loss = "loss"
    return g, wrt


def feeds_for(case: Case, graph: Graph, bindings=BINDINGS, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    feeds = {f"x{i}": sample(rng, spec, concrete_shape(spec.shape, bindings), dtype)
             for i, spec in enumerate(case.inputs)}
    for v in graph.inputs:
        if v.name.startswith("r"):       # the weights of the loss, one per output
            feeds[v.name] = rng.normal(size=concrete_shape(v.shape, bindings)).astype(dtype)
    return feeds


def ids(cases):
    return [c.id for c in cases]


# ================================================================ 1-2. first-order gradients
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=ids(GRADIENT_CASES))
def test_vjp_matches_central_differences(case):
    g, wrt = build(case)
    assert wrt, "a gradient case needs at least one differentiated input"
    G = grad(g, of="loss", wrt=wrt)
    verify(G)
    feeds = feeds_for(case, g)
    forward = Plan(g)
    symbolic = Plan(G).run(feeds)
    for name in wrt:
        numeric = central_difference(lambda a: forward.run(a)["loss"], feeds, name, eps=1e-6)
        assert_close(symbolic[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-7, what=f"{case.id}: grad:{name}")
        assert str(symbolic[f"grad:{name}"].dtype) == "float64"


# ================================================================ 3. registry walk
# ops whose attributes hold a subgraph typed for one dtype: their gradient checks live with them
CHECKED_ELSEWHERE = {"scan": "tests/test_scan.py"}


def test_registry_is_covered():
    covered = {case.op for case in GRADIENT_CASES} | set(CHECKED_ELSEWHERE)
    with_vjp = {name for name, opdef in OPS.items() if opdef.vjp is not None}
    without_vjp = set(OPS) - with_vjp
    assert with_vjp - covered == set(), "ops with a VJP but no gradient case"
    assert without_vjp == NON_DIFFERENTIABLE, (
        f"ops without a VJP must be listed in NON_DIFFERENTIABLE: unlisted {without_vjp - NON_DIFFERENTIABLE}, "
        f"listed but differentiable or gone {NON_DIFFERENTIABLE - without_vjp}")
    assert covered <= set(OPS), f"cases for unknown ops {covered - set(OPS)}"
    per_op = {op: sum(c.op == op for c in GRADIENT_CASES) for op in with_vjp - set(CHECKED_ELSEWHERE)}
    assert min(per_op.values()) >= 2, f"ops with fewer than two gradient cases: {[o for o, n in per_op.items() if n < 2]}"
    # every op also appears in the kernel-vs-shape-rule test
    assert set(OPS) <= covered | {c.op for c in SHAPE_ONLY_CASES}


def test_case_ids_are_unique():
    all_ids = ids(GRADIENT_CASES) + ids(SHAPE_ONLY_CASES)
    assert len(all_ids) == len(set(all_ids))


# ================================================================ 6. kernel vs shape rule
@pytest.mark.parametrize("n", [1, 3], ids=["N=1", "N=3"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=ids(GRADIENT_CASES))
def test_kernels_agree_with_shape_rules_forward_and_backward(case, dtype, n):
    """Every node of the gradient graph (the op, its loss and all backward nodes) gives an array of
    exactly the shape (symbols bound) and dtype its shape rule predicted."""
    g, wrt = build(case, dtype)
    bindings = BINDINGS | {"N": n}
    G = grad(g, of="loss", wrt=wrt)
    feeds = feeds_for(case, g, bindings, dtype)
    out = typed_run(G, feeds)
    assert out["out"].shape == concrete_shape(g.outputs["out"].shape, bindings)
    assert str(out["out"].dtype) == g.outputs["out"].dtype == (case.attrs.get("dtype") or dtype)
    for name in wrt:
        assert out[f"grad:{name}"].shape == feeds[name].shape and str(out[f"grad:{name}"].dtype) == dtype
    # and the executor agrees with the node-by-node run
    planned = Plan(G).run(feeds)
    for key in out:
        np.testing.assert_array_equal(planned[key], out[key])


@pytest.mark.parametrize("n", [1, 3], ids=["N=1", "N=3"])
@pytest.mark.parametrize("case", SHAPE_ONLY_CASES, ids=ids(SHAPE_ONLY_CASES))
def test_non_differentiable_kernels_agree_with_shape_rules(case, n):
    g, _ = build(case, "float32")
    bindings = BINDINGS | {"N": n}
    out = typed_run(g, feeds_for(case, g, bindings, "float32"))
    assert out["out"].shape == concrete_shape(g.outputs["out"].shape, bindings)
    assert str(out["out"].dtype) == g.outputs["out"].dtype


def _accepts_ints(case: Case) -> bool:
    try:
        build(case, "int32")
        return True
    except ShapeError:
        return False


INT_CASES = [c for c in GRADIENT_CASES + SHAPE_ONLY_CASES if c.inputs and _accepts_ints(c)]


@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("case", INT_CASES, ids=ids(INT_CASES))
def test_integer_kernels_agree_with_shape_rules(case, dtype):
    """Ops whose shape rule accepts integers keep the integer dtype it promises (e.g. a sum of
    int32 stays int32, where NumPy would widen it to int64 by default)."""
    g = Graph(case.id)
    values = [g.add_input(f"x{i}", TensorType({"bool": "bool", "int": "int64"}.get(spec.kind, dtype), spec.shape))
              for i, spec in enumerate(case.inputs)]
    g.outputs["out"], = g.apply(case.op, values, case.attrs)
    rng = np.random.default_rng(0)
    feeds = {f"x{i}": sample(rng, spec if spec.kind != "x" else In(spec.shape, "int", high=5),
                             concrete_shape(spec.shape, BINDINGS))
             for i, spec in enumerate(case.inputs)}
    typed_run(g, feeds)


def test_integer_cases_exist():
    assert {"add", "sub", "mul", "sum", "max", "matmul", "transpose", "reshape"} <= {c.op for c in INT_CASES}


# Inputs a kernel cannot run must be rejected by the op's shape rule with a ShapeError (which the
# elaborator turns into a diagnostic at the source line), not pass type checking, nor crash the
# shape rule with another exception. Each entry: (id, op, input types as (dtype, shape), attrs).
INVALID = [
    ("add-unbroadcastable", "add", [("float64", (2, 3)), ("float64", (4,))], {}),
    ("reshape-two-minus-ones", "reshape", [("float64", (2, 3))], {"shape": (0, -1, -1)}),
    ("reshape-wrong-size", "reshape", [("float64", (2, 3))], {"shape": (4, 2)}),
    ("transpose-repeated-axis", "transpose", [("float64", (2, 3))], {"perm": (1, 1)}),
    ("softmax-axis-out-of-range", "softmax", [("float64", (3,))], {"axis": 1}),
    ("sqrt-of-int", "sqrt", [("int64", (2,))], {}),
    ("where-mixed-dtypes", "where", [("bool", (2,)), ("float64", (2,)), ("float32", (2,))], {}),
    ("where-float-condition", "where", [("float64", (2,)), ("float64", (2,)), ("float64", (2,))], {}),
    ("matmul-vector", "matmul", [("float64", (3,)), ("float64", (3, 2))], {}),
    ("matmul-contraction-mismatch", "matmul", [("float64", (2, 3)), ("float64", (4, 2))], {}),
    ("argmax-axis-out-of-range", "argmax", [("float64", (2, 3))], {"axis": 2}),
    ("expand_dims-axis-out-of-range", "expand_dims", [("float64", (2, 3))], {"axes": (5,)}),
    ("sum-axis-out-of-range", "sum", [("float64", (2, 3))], {"axes": (2,)}),
    ("one_hot-of-float", "one_hot", [("float64", (2,))], {"depth": 3}),
    ("conv2d-channel-mismatch", "conv2d", [("float64", (1, 3, 5, 5)), ("float64", (2, 2, 3, 3))], {}),
    ("conv2d-groups-not-dividing-filters", "conv2d", [("float64", (1, 4, 5, 5)), ("float64", (3, 2, 3, 3))], {"groups": 2}),
    ("conv2d-kernel-larger-than-input", "conv2d", [("float64", (1, 1, 2, 5)), ("float64", (1, 1, 3, 3))], {}),
    ("conv2d-dilated-kernel-larger", "conv2d", [("float64", (1, 1, 4, 5)), ("float64", (1, 1, 3, 3))], {"dilation": (2, 1)}),
    ("conv2d-zero-stride", "conv2d", [("float64", (1, 1, 5, 5)), ("float64", (1, 1, 3, 3))], {"stride": (0, 1)}),
    ("conv2d-rank3-input", "conv2d", [("float64", (1, 5, 5)), ("float64", (1, 1, 3, 3))], {}),
    ("conv2d-int", "conv2d", [("int64", (1, 1, 5, 5)), ("int64", (1, 1, 3, 3))], {}),
    ("conv2d_input_grad-wrong-gradient", "conv2d_input_grad",
     [("float64", (1, 2, 4, 4)), ("float64", (2, 1, 3, 3)), ("float64", (1, 1, 5, 5))], {}),
    ("max_pool2d-padding-not-below-kernel", "max_pool2d", [("float64", (1, 1, 5, 5))], {"kernel": (2, 2), "pads": (2, 0, 0, 0)}),
    ("max_pool2d-window-larger", "max_pool2d", [("float64", (1, 1, 1, 5))], {"kernel": (2, 2)}),
    ("avg_pool2d-rank2", "avg_pool2d", [("float64", (5, 5))], {"kernel": (2, 2)}),
    ("slice-empty", "slice", [("float64", (3, 4))], {"axes": (0,), "starts": (3,), "ends": (None,), "steps": (1,)}),
    ("slice-zero-step", "slice", [("float64", (3, 4))], {"axes": (0,), "starts": (None,), "ends": (None,), "steps": (0,)}),
    ("slice-axis-out-of-range", "slice", [("float64", (3, 4))], {"axes": (2,), "starts": (0,), "ends": (1,), "steps": (1,)}),
    ("slice-symbolic-mixed-ends", "slice", [("float64", ("N", 4))], {"axes": (0,), "starts": (-2,), "ends": (3,), "steps": (1,)}),
    ("pad-negative", "pad", [("float64", (3, 4))], {"pads": (0, -1, 0, 0)}),
    ("pad-wrong-count", "pad", [("float64", (3, 4))], {"pads": (1, 1)}),
    ("concat-mismatch", "concat", [("float64", (3, 4)), ("float64", (3, 5))], {"axis": 0}),
    ("concat-two-symbolic", "concat", [("float64", ("N", 4)), ("float64", ("T", 4))], {"axis": 0}),
    ("gather-float-indices", "gather", [("float64", (3, 4)), ("float64", (2,))], {}),
    ("gather-axis-out-of-range", "gather", [("float64", (3, 4)), ("int64", (2,))], {"axis": 2}),
    ("scatter_add-wrong-gradient", "scatter_add", [("float64", (2, 5)), ("int64", (2,)), ("float64", (3, 4))], {}),
    # once bugs, now rejected by their rules:
    ("reshape-zero-beyond-rank", "reshape", [("float64", (2, 3))], {"shape": (0, 0, 0)}),
    ("expand_dims-repeated-axis", "expand_dims", [("float64", (2, 3))], {"axes": (0, 0)}),
    ("sum-repeated-axis", "sum", [("float64", (2, 3))], {"axes": (0, -2)}),
    ("neg-of-bool", "neg", [("bool", (2,))], {}),
    ("sub-of-bool", "sub", [("bool", (2,)), ("bool", (2,))], {}),
    ("sign-of-bool", "sign", [("bool", (2,))], {}),
]


def _invalid_id(entry):
    return entry.values[0] if hasattr(entry, "values") else entry[0]


@pytest.mark.parametrize("name,op,types,attrs", INVALID, ids=[_invalid_id(e) for e in INVALID])
def test_shape_rules_reject_invalid_inputs_with_a_shape_error(name, op, types, attrs):
    with pytest.raises(ShapeError):
        OPS[op].infer([TensorType(dtype, shape) for dtype, shape in types], attrs)


@pytest.mark.parametrize("op,types,attrs", [
    ("sum", [("float64", (2, 3))], {"axes": (0, -2)}),
    ("neg", [("bool", (2,))], {}),
    ("sub", [("bool", (2,)), ("bool", (2,))], {}),
    ("sign", [("bool", (2,))], {}),
    ("reshape", [("float64", (2, 3))], {"shape": (0, 0, 0)}),
], ids=["sum-repeated-axis", "neg-of-bool", "sub-of-bool", "sign-of-bool", "reshape-zero-beyond-rank"])
def test_kernels_cannot_run_what_the_xfailed_shape_rules_accept(op, types, attrs):
    """Why the rules must reject these inputs: the kernels cannot run them."""
    with pytest.raises((TypeError, ValueError, IndexError)):
        KERNELS[op](*(np.zeros(shape, dtype=dtype) for dtype, shape in types), **attrs)


def test_cast_float32_to_float64_gradient_is_float32():
    g = Graph("cast")
    x = g.add_input("x", TensorType("float32", ("N", 3)))
    y, = g.apply("cast", [x], {"dtype": "float64"})
    assert y.type == TensorType("float64", ("N", 3))
    g.outputs["out"] = y
    weighted_sum_loss(g, y)
    G = grad(g, wrt=["x"])
    verify(G)
    xs = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    r = np.linspace(-1, 1, 6).reshape(2, 3)
    out = typed_run(G, {"x": xs, "r": r})
    assert out["out"].dtype == np.float64 and out["out"].shape == (2, 3)
    np.testing.assert_array_equal(out["out"], xs.astype(np.float64))
    assert out["grad:x"].dtype == np.float32
    np.testing.assert_allclose(out["grad:x"], r.astype(np.float32))


def test_max_shares_the_gradient_between_ties():
    g = Graph("ties")
    x = g.add_input("x", TensorType("float64", (2, 3)))
    m, = g.apply("max", [x], {"axes": (-1,)})
    g.outputs["out"] = m
    weighted_sum_loss(g, m)
    out = Plan(grad(g, wrt=["x"])).run({"x": np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), "r": np.array([2.0, 3.0])})
    np.testing.assert_allclose(out["grad:x"], [[0, 1, 1], [1, 1, 1]])


# ================================================================ 4. second order
def check_hvp(g: Graph, wrt: list[str], feeds: dict, seed=1, eps=1e-5, rtol=1e-5, atol=1e-6,
              params: dict | None = None):
    """grad(grad(g)) as a Hessian-vector product: G1 = grad(g, wrt); gv = sum_i sum(grad:x_i * v_i);
    G2 = grad(G1, of=gv, wrt) must equal the central difference of G1's gradients along v."""
    rng = np.random.default_rng(seed)
    params = params or {}
    G1 = grad(g, wrt=wrt)
    add_dot_loss(G1, [(f"grad:{name}", f"v:{name}") for name in wrt])
    verify(G1)
    G2 = grad(G1, of="gv", wrt=wrt)
    verify(G2)
    arrays = feeds | params
    vs = {f"v:{name}": rng.normal(size=np.shape(arrays[name])) for name in wrt}
    param_names = set(params)

    def split(a):
        return {k: v for k, v in a.items() if k not in param_names}, {k: v for k, v in a.items() if k in param_names}

    hv = Plan(G2).run(*split(arrays | vs))
    first = Plan(G1)
    numeric = directional_difference(
        lambda a: first.run(*split(a), outputs=[f"grad:{n}" for n in wrt]), arrays | vs,
        {name: vs[f"v:{name}"] for name in wrt}, eps=eps)
    for name in wrt:
        assert_close(hv[f"grad:{name}"], numeric[f"grad:{name}"], rtol=rtol, atol=atol, what=f"H v for {name}")
    # the Hessian is symmetric: w' (H v) == v' (H w) for a second direction w
    ws = {f"v:{name}": rng.normal(size=np.shape(arrays[name])) for name in wrt}
    hw = Plan(G2).run(*split(arrays | ws))
    w_hv = sum(float(np.sum(ws[f"v:{n}"] * hv[f"grad:{n}"])) for n in wrt)
    v_hw = sum(float(np.sum(vs[f"v:{n}"] * hw[f"grad:{n}"])) for n in wrt)
    np.testing.assert_allclose(w_hv, v_hw, rtol=1e-9, atol=1e-10)
    return hv


SECOND_ORDER_CASES = [
    Case("sigmoid", "sigmoid", [X("N", 3)]),
    Case("tanh", "tanh", [X("N", 3)]),
    Case("softplus", "softplus", [X(2, 3)]),
    Case("exp", "exp", [X(2, 3)]),
    Case("log", "log", [X(2, 3, domain="positive")]),
    Case("sqrt", "sqrt", [X(2, 3, domain="positive")]),
    Case("sin", "sin", [X("N", 3)]),
    Case("cos", "cos", [X(2, 3)]),
    Case("mul-broadcast", "mul", [X(2, 3), X(3)]),
    Case("div-broadcast", "div", [X(2, 3), X(3, domain="positive")]),
    Case("pow-broadcast", "pow", [X(2, 3, domain="positive"), X(3)]),
    Case("matmul-batched-broadcast", "matmul", [X(1, 3, 4), X(2, 4, 2)]),
    Case("softmax-axis-1", "softmax", [X("N", 4)], {"axis": -1}),
    Case("softmax-axis0", "softmax", [X(3, 2)], {"axis": 0}),
    Case("log_softmax-axis-1", "log_softmax", [X("N", 4)], {"axis": -1}),
    Case("log_softmax-axis0", "log_softmax", [X(3, 2)], {"axis": 0}),
    Case("mean-axis", "mean", [X(2, 3)], {"axes": (0,)}),
    Case("max-axis", "max", [X(2, 3, domain="distinct")], {"axes": (-1,)}),
    # bilinear ops: the Hessian is the cross term between the two inputs
    Case("conv2d-symbolic", "conv2d", [X("N", 2, 4, 4), X(3, 2, 2, 2)], {"pads": (1, 0, 0, 1)}),
    Case("conv2d-stride-dilation-groups", "conv2d", [X(1, 4, 6, 5), X(4, 2, 2, 2)],
         {"stride": (2, 1), "dilation": (1, 2), "groups": 2, "pads": (1, 1, 0, 0)}),
    Case("conv2d_input_grad", "conv2d_input_grad", [X(1, 2, 2, 3), X(2, 2, 3, 2), FIXED(1, 2, 5, 4)],
         {"stride": (2, 1), "pads": (1, 0, 0, 0)}),
    Case("conv2d_weight_grad", "conv2d_weight_grad", [X(1, 2, 5, 4), X(1, 2, 2, 3), FIXED(2, 2, 3, 2)],
         {"stride": (2, 1), "pads": (1, 0, 0, 0)}),
    # linear in their differentiated input: the Hessian is zero, and building it differentiates
    # the gradient op (scatter_add -> gather, max_pool2d_grad -> max_pool2d_select, ...)
    Case("gather-repeated", "gather", [X(3, 2), INT("N", 4, high=3)]),
    Case("max_pool2d", "max_pool2d", [X(1, 2, 4, 4, domain="distinct")], {"kernel": (2, 2), "stride": (1, 2)}),
    Case("avg_pool2d", "avg_pool2d", [X(1, 2, 4, 4)], {"kernel": (2, 2), "stride": (1, 2), "pads": (1, 0, 0, 1)}),
    Case("slice-negative-step", "slice", [X(4, 3)], {"axes": (0,), "starts": (-1,), "ends": (None,), "steps": (-2,)}),
    Case("concat", "concat", [X("N", 2), X("N", 1)], {"axis": 1}),
    Case("pad", "pad", [X(2, 3)], {"pads": (1, 0, 0, 2), "value": 1.0}),
]


@pytest.mark.parametrize("case", SECOND_ORDER_CASES, ids=ids(SECOND_ORDER_CASES))
def test_grad_of_grad_is_a_hessian_vector_product(case):
    """The loss sum(op(x) * r) is linear in op(x), so this checks the op's own second derivative
    (and, for binary ops, the cross terms between its two inputs)."""
    g, wrt = build(case)
    check_hvp(g, wrt, feeds_for(case, g))


def _composite(kind: str):
    """Relu-free composites whose second derivatives mix several ops."""
    g = Graph(kind)
    x = g.add_input("x", TensorType("float64", ("N", 3)))
    w = g.add_input("w", TensorType("float64", (3, 3)))
    h, = g.apply("matmul", [x, w])
    if kind == "tanh-softmax-crossfeed":
        t, = g.apply("tanh", [h])
        p, = g.apply("softmax", [t], {"axis": -1})
        q, = g.apply("mul", [p, x])                      # x used twice
        s, = g.apply("sum", [q], {"axes": (0,)})
        loss, = g.apply("sum", [s], {"axes": None})
    elif kind == "softplus-log-div":
        sp, = g.apply("softplus", [h])
        lg, = g.apply("log", [sp])
        e, = g.apply("exp", [x])
        d, = g.apply("div", [lg, e])
        m, = g.apply("mean", [d], {"axes": None})
        loss, = g.apply("mul", [m, m])
    elif kind == "logsumexp-pow":
        ls, = g.apply("log_softmax", [h], {"axis": 0})
        sq, = g.apply("pow", [g.apply("sigmoid", [ls])[0], g.apply("constant", [], {"value": np.array(3.0)})[0]])
        r, = g.apply("reshape", [sq], {"shape": (-1,)})
        loss, = g.apply("sum", [r], {"axes": None})
    g.outputs["loss"] = loss
    g.loss = "loss"
    return g


@pytest.mark.parametrize("kind", ["tanh-softmax-crossfeed", "softplus-log-div", "logsumexp-pow"])
def test_grad_of_grad_on_composites(kind):
    rng = np.random.default_rng(2)
    g = _composite(kind)
    feeds = {"x": rng.normal(size=(3, 3)) * 0.7, "w": rng.normal(size=(3, 3)) * 0.7}
    # first order too, so a failure points at the right level
    G = Plan(grad(g, wrt=["x", "w"])).run(feeds)
    forward = Plan(g)
    for name in ("x", "w"):
        assert_close(G[f"grad:{name}"], central_difference(lambda a: forward.run(a)["loss"], feeds, name),
                     rtol=1e-6, atol=1e-7, what=f"grad:{name}")
    check_hvp(g, ["x", "w"], feeds)


def _small_cnn():
    """img -> tanh(conv2d(img, w)) -> max_pool2d -> flatten, joined with a tanh of gathered
    embedding rows (repeated ids), -> matmul -> squared error: the Hessian mixes conv2d, its two
    adjoints, the pooling gradient and scatter_add."""
    g = Graph("cnn")
    img = g.add_input("img", TensorType("float64", ("N", 2, 5, 5)))
    ids = g.add_input("ids", TensorType("int64", ("N", 3)))
    w = g.add_input("w", TensorType("float64", (3, 2, 3, 3)))
    table = g.add_input("table", TensorType("float64", (4, 2)))
    head = g.add_input("head", TensorType("float64", (3 * 2 * 2 + 2, 2)))
    h, = g.apply("conv2d", [img, w], {"stride": (1, 1), "pads": (1, 1, 0, 0), "dilation": (1, 1), "groups": 1})
    h, = g.apply("tanh", [h])
    h, = g.apply("max_pool2d", [h], {"kernel": (2, 2), "stride": (2, 2), "pads": (0, 0, 0, 0)})
    h, = g.apply("reshape", [h], {"shape": (0, -1)})
    e, = g.apply("gather", [table, ids], {"axis": 0})
    e, = g.apply("tanh", [e])
    e, = g.apply("sum", [e], {"axes": (1,)})
    f, = g.apply("concat", [h, e], {"axis": 1})
    p, = g.apply("matmul", [f, head])
    sq, = g.apply("mul", [p, p])
    g.outputs["loss"], = g.apply("sum", [sq], {"axes": None})
    g.loss = "loss"
    return g


def test_grad_of_grad_through_conv_pool_and_gather():
    rng = np.random.default_rng(4)
    g = _small_cnn()
    feeds = {"img": rng.normal(size=(2, 2, 5, 5)), "ids": np.array([[0, 2, 0], [3, 3, 3]]),
             "w": rng.normal(size=(3, 2, 3, 3)) * 0.4, "table": rng.normal(size=(4, 2)),
             "head": rng.normal(size=(14, 2)) * 0.5}
    wrt = ["img", "w", "table", "head"]
    G = Plan(grad(g, wrt=wrt)).run(feeds)
    forward = Plan(g)
    for name in wrt:
        assert_close(G[f"grad:{name}"], central_difference(lambda a: forward.run(a)["loss"], feeds, name),
                     rtol=1e-6, atol=1e-7, what=f"grad:{name}")
    assert np.abs(G["grad:table"][1]).max() == 0            # row 1 is never gathered
    check_hvp(g, wrt, feeds)


def _mlp():
    """x -> softplus(x @ W1 + b1) @ W2 + b2, loss = mean((pred - y) ** 2)."""
    g = Graph("mlp")
    x = g.add_input("x", TensorType("float64", ("N", 4)))
    y = g.add_input("y", TensorType("float64", ("N", 2)), target=True)
    w1 = g.add_param("W1", TensorType("float64", (4, 5)), ParamInit("glorot"))
    b1 = g.add_param("b1", TensorType("float64", (5,)), ParamInit("constant", {"value": 0.0}))
    w2 = g.add_param("W2", TensorType("float64", (5, 2)), ParamInit("glorot"))
    b2 = g.add_param("b2", TensorType("float64", (2,)), ParamInit("constant", {"value": 0.0}))
    h, = g.apply("matmul", [x, w1])
    h, = g.apply("add", [h, b1])
    h, = g.apply("softplus", [h])
    p, = g.apply("matmul", [h, w2])
    p, = g.apply("add", [p, b2])
    err, = g.apply("sub", [p, y])
    sq, = g.apply("mul", [err, err])
    g.outputs["pred"] = p
    g.outputs["loss"], = g.apply("mean", [sq], {"axes": None})
    g.loss = "loss"
    return g


def test_mlp_gradient_and_hessian_vector_product_wrt_weights():
    rng = np.random.default_rng(3)
    g = _mlp()
    feeds = {"x": rng.normal(size=(6, 4)), "y": rng.normal(size=(6, 2))}
    params = {"W1": rng.normal(size=(4, 5)) * 0.5, "b1": rng.normal(size=5) * 0.1,
              "W2": rng.normal(size=(5, 2)) * 0.5, "b2": rng.normal(size=2) * 0.1}
    G = grad(g)          # default: every parameter
    assert {k for k in G.outputs if k.startswith("grad:")} == {f"grad:{p}" for p in params}
    out = Plan(G).run(feeds, params)
    forward = Plan(g)
    for name in params:
        numeric = central_difference(
            lambda a: forward.run(feeds, {k: a[k] for k in params})["loss"], params, name)
        assert_close(out[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-7, what=f"grad:{name}")
    check_hvp(g, list(params), feeds, params=params)


# ================================================================ 5. numerical stability
LOGITS = [[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]]


def _expected(op, z):
    z = np.asarray(z, np.float64)
    if op == "softplus":
        return np.where(z == 0, np.log(2.0), np.maximum(z, 0))
    if op == "sigmoid":
        return np.where(z == 0, 0.5, (z > 0).astype(float))
    shifted = z - z.max(-1, keepdims=True)      # at +-1e4 the non-maxima underflow to exactly 0
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return np.exp(log_p) if op == "softmax" else log_p


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "softplus", "sigmoid"])
def test_huge_logits_give_finite_correct_values_and_gradients(op, dtype):
    g = Graph(op)
    z = g.add_input("z", TensorType(dtype, (3, 3)))
    y, = g.apply(op, [z], {"axis": -1} if "softmax" in op else {})
    g.outputs["out"] = y
    weighted_sum_loss(g, y)
    logits = np.array(LOGITS, dtype=dtype)
    r = np.array([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0], [2.0, -1.0, 1.5]], dtype=dtype)
    out = typed_run(grad(g, wrt=["z"]), {"z": logits, "r": r})
    assert np.isfinite(out["out"]).all() and np.isfinite(out["loss"]) and np.isfinite(out["grad:z"]).all()
    np.testing.assert_allclose(out["out"], _expected(op, logits), rtol=1e-6, atol=1e-6)
    # the gradient is saturated: sigmoid' = 0 at +-1e4, softplus' = sigmoid in {0, 1/2, 1}, the
    # softmax Jacobian vanishes off the winners
    if op == "softplus":
        np.testing.assert_allclose(out["grad:z"], r * _expected("sigmoid", logits), atol=1e-6)
    if op == "sigmoid":
        np.testing.assert_allclose(out["grad:z"], r * np.where(logits == 0, 0.25, 0.0), atol=1e-6)
    if op == "log_softmax":
        p = _expected("softmax", logits)
        np.testing.assert_allclose(out["grad:z"], r - p * r.sum(-1, keepdims=True), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_composite_with_huge_logits(dtype):
    """-sum(one_hot(labels) * log_softmax(z)): the loss is exact and its gradient softmax - one_hot."""
    g = Graph("ce")
    z = g.add_input("z", TensorType(dtype, ("N", 3)))
    labels = g.add_input("labels", TensorType("int64", ("N",)), target=True)
    onehot, = g.apply("one_hot", [labels], {"depth": 3, "dtype": dtype})
    ls, = g.apply("log_softmax", [z], {"axis": -1})
    prod, = g.apply("mul", [onehot, ls])
    total, = g.apply("sum", [prod], {"axes": None})
    g.outputs["loss"], = g.apply("neg", [total])
    g.loss = "loss"
    logits = np.array(LOGITS + [[0.0, 0.0, 0.0]], dtype=dtype)
    y = np.array([1, 2, 0, 2])
    out = typed_run(grad(g, wrt=["z"]), {"z": logits, "labels": y})
    # row losses: 2e4 (wrong by 2e4), 0 (right), log 2 (tied winners), log 3 (uniform)
    np.testing.assert_allclose(out["loss"], 2e4 + np.log(2) + np.log(3), rtol=1e-6)
    assert np.isfinite(out["grad:z"]).all()
    expected = _expected("softmax", logits) - np.eye(3)[y]
    np.testing.assert_allclose(out["grad:z"], expected, rtol=1e-6, atol=1e-6)
    assert out["grad:z"].dtype == np.dtype(dtype)
