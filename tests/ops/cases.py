"""The op case table: DATA for every test that runs ops one node at a time. No tests here.

Imported as `from tests.ops.cases import ...` by the op tests (gradients, shape rules, second
order), the ONNX export parity test and the cross-backend conformance test.

Structure
---------
A `Case` is one application of one op:

    Case(id, op, inputs, attrs)

- `id`: unique across GRADIENT_CASES + SHAPE_ONLY_CASES (tests/ops/test_gradients.py checks it);
  used as the pytest id.
- `op`: the op's name in `nngraph.ops.OPS` (and in `KERNELS`).
- `inputs`: one `In` per tensor input of the op, in order. `In.shape` is a tuple of dims, each an
  int, a symbol ("N", "T", "H") or a derived expression ("H-1", "(H-1)//2+1"); symbols are bound
  to sizes by BINDINGS (tests vary "N", e.g. `BINDINGS | {"N": 1}`), see
  `tests.helpers.concrete_shape`. `In.kind` fixes the input's role and dtype:
      "x"      float (the dtype under test), differentiated by the gradient checks;
      "fixed"  float, not differentiated (the reference of reshape_like / broadcast_like, ...);
      "bool"   bool (a condition);
      "int"    int64 (indices, values in [0, In.high)).
  `In.dtype(float_dtype)` / `In.type(float_dtype)` / `Case.input_types(float_dtype)` give the
  resulting dtypes / TensorTypes (with the symbolic dims).
- `attrs`: the op's attributes, as given to `Graph.apply`.

How inputs are generated: `sample(rng, spec, shape, dtype)` draws one input from `In.domain`
("any": normal; "positive": uniform in [0.5, 2); "nonzero": |x| >= 0.3, away from kinks and
poles; "distinct": no ties, entries at least 0.1 apart, for max and max pooling); `feeds_for(case,
graph, bindings, dtype, seed)` draws all of a built graph's inputs, deterministically from `seed`.

Tables
------
- GRADIENT_CASES: every op with a VJP has at least two (checked by `test_registry_is_covered`),
  except ops whose checks live with them (scan: tests/ops/test_scan.py).
- SHAPE_ONLY_CASES: the non-differentiable ops (forward only; kernel against shape rule).
- NON_DIFFERENTIABLE: the names of the ops without a VJP.
- SECOND_ORDER_CASES: grad of grad (Hessian-vector products); ids are unique within this table.
- `all_cases()`: GRADIENT_CASES then SHAPE_ONLY_CASES, every op but scan at least once.

Builders
--------
- `one_node_graph(case, dtype)`: inputs x0, x1, ... -> the op -> outputs out0, out1, ...; no loss.
- `build(case, dtype)`: the same op node with outputs out, out1, ... plus a scalar loss weighting
  every output by a fed input r (r1, ...), and the names to differentiate.
- `feeds_for`, `sample`, `ids` as above.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from nngraph.ir import Graph, TensorType
from nngraph.ops.fused import Expr
from tests.helpers import add_dot_loss, concrete_shape, weighted_sum_loss

_DTYPE_OF_KIND = {"bool": "bool", "int": "int64"}      # "x" and "fixed" take the float dtype under test


# ================================================================ the case table
@dataclass(frozen=True)
class In:
    """One tensor input of the op under test.
    kind: "x" a float input that is differentiated; "fixed" a float input that is not (the
    reference of reshape_like / broadcast_like); "bool" a condition; "int" class indices.
    domain: where the random values lie ("any", "positive", "nonzero", "distinct", "unit")."""
    shape: tuple
    kind: str = "x"
    domain: str = "any"
    high: int = 3          # exclusive upper bound of "int" values

    def dtype(self, float_dtype: str = "float64") -> str:
        """This input's dtype when the case runs in `float_dtype`."""
        return _DTYPE_OF_KIND.get(self.kind, float_dtype)

    def type(self, float_dtype: str = "float64") -> TensorType:
        """This input's type (its symbolic dims kept) when the case runs in `float_dtype`."""
        return TensorType(self.dtype(float_dtype), tuple(self.shape))


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
    """One op applied to `inputs` (a list of `In`) with `attrs`; `id` names it (see the module doc)."""
    id: str
    op: str
    inputs: list
    attrs: dict = field(default_factory=dict)

    def input_types(self, float_dtype: str = "float64") -> list[TensorType]:
        return [spec.type(float_dtype) for spec in self.inputs]


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
    # mod: the divisor's sign (fmod off) and the dividend's (fmod on); away from the jumps at a/b integer
    Case("mod-symbolic-row-divisor", "mod", [X("N", 3), X(3, domain="positive")]),
    Case("mod-fmod-negative-divisor", "mod", [X(2, 3), X(2, 1, domain="nonzero")], {"fmod": True}),
    Case("mod-python-sign-nonzero-divisor", "mod", [X(2, 3), X(3, domain="nonzero")], {"fmod": False}),
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
    Case("matmul-dense-over-batch-and-time", "matmul", [X("N", "T", 3), X(3, 2)]),
    Case("gemm-dense-over-batch-and-time", "gemm", [X("N", "T", 3), X(3, 2), X(2)]),
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
    # ---- the same ops over 1 and 3 spatial axes ([N, C, L], [N, C, D, H, W]), pooling dilations
    Case("conv2d-1d-stride-pad-dilation", "conv2d", [X("N", 2, 9), X(3, 2, 3)],
         {"stride": (2,), "pads": (1, 2), "dilation": (2,)}),
    Case("conv2d-3d-groups", "conv2d", [X(1, 4, 4, 3, 4), X(2, 2, 2, 2, 2)], {"groups": 2, "pads": (1, 0, 0, 0, 1, 0)}),
    Case("conv2d_input_grad-1d-stride", "conv2d_input_grad", [X(2, 3, 3), X(3, 2, 3), FIXED(2, 2, 8)],
         {"stride": (3,), "pads": (1, 1)}),
    Case("conv2d_input_grad-3d", "conv2d_input_grad", [X(1, 2, 2, 1, 3), X(2, 3, 2, 2, 2), FIXED(1, 3, 4, 3, 4)],
         {"stride": (2, 1, 1), "dilation": (1, 2, 1)}),
    Case("conv2d_weight_grad-1d", "conv2d_weight_grad", [X("N", 2, 7), X("N", 3, 3), FIXED(3, 2, 3)],
         {"stride": (2,), "pads": (0, 1)}),
    Case("conv2d_weight_grad-3d", "conv2d_weight_grad", [X(1, 2, 4, 3, 4), X(1, 2, 2, 1, 3), FIXED(2, 2, 2, 2, 2)],
         {"stride": (2, 1, 1), "dilation": (1, 2, 1)}),
    Case("max_pool2d-1d-dilation-pad", "max_pool2d", [X("N", 2, 9, domain="distinct")],
         {"kernel": (3,), "stride": (2,), "pads": (2, 1), "dilation": (2,)}),
    Case("max_pool2d-2d-dilation", "max_pool2d", [X(1, 2, 6, 6, domain="distinct")],
         {"kernel": (2, 2), "stride": (1, 2), "dilation": (2, 2), "pads": (1, 0, 0, 1)}),
    Case("max_pool2d-3d", "max_pool2d", [X(1, 2, 4, 4, 5, domain="distinct")],
         {"kernel": (2, 2, 2), "stride": (2, 1, 2), "pads": (0, 1, 0, 1, 0, 1)}),
    Case("max_pool2d_grad-3d-dilation", "max_pool2d_grad", [FIXED(1, 2, 5, 4, 4), X(1, 2, 3, 2, 2)],
         {"kernel": (2, 2, 2), "stride": (1, 1, 1), "dilation": (2, 2, 2)}),
    Case("max_pool2d_select-1d-dilation", "max_pool2d_select", [FIXED(2, 2, 9), X(2, 2, 9)],
         {"kernel": (3,), "stride": (2,), "dilation": (2,)}),
    Case("avg_pool2d-1d-pad", "avg_pool2d", [X("N", 2, 7)], {"kernel": (3,), "stride": (2,), "pads": (1, 1)}),
    Case("avg_pool2d-2d-dilation", "avg_pool2d", [X(1, 2, 6, 5)], {"kernel": (2, 2), "stride": (2, 1), "dilation": (2, 2)}),
    Case("avg_pool2d-3d-dilation", "avg_pool2d", [X(1, 2, 5, 4, 4)],
         {"kernel": (2, 2, 2), "stride": (1, 2, 1), "dilation": (2, 1, 2), "pads": (1, 0, 0, 0, 1, 1)}),
    Case("avg_pool2d_grad-3d", "avg_pool2d_grad", [X(1, 2, 2, 2, 3), FIXED(1, 2, 4, 4, 5)],
         {"kernel": (2, 2, 2), "stride": (2, 2, 2), "pads": (0, 0, 1, 0, 0, 0)}),
    Case("avg_pool2d_grad-1d-dilation", "avg_pool2d_grad", [X("N", 2, 2), FIXED("N", 2, 7)],
         {"kernel": (2,), "stride": (2,), "dilation": (3,)}),
    # ---- resize: one interpolation matrix per resized axis (any batch, spatial sizes known)
    Case("resize-nearest-upsample", "resize", [X("N", 2, 3, 2)],
         {"axes": (2, 3), "sizes": (6, 5), "scales": (2.0, 2.5), "mode": "nearest", "coordinates": "asymmetric",
          "nearest": "floor"}),
    Case("resize-nearest-round-half-pixel", "resize", [X(1, 2, 5, 4)],
         {"axes": (2, 3), "sizes": (3, 7), "scales": (0.6, 1.75), "mode": "nearest", "nearest": "round_prefer_ceil"}),
    Case("resize-bilinear-align-corners", "resize", [X("N", 1, 3, 4)],
         {"axes": (2, 3), "sizes": (5, 7), "scales": (5 / 3, 7 / 4), "mode": "linear", "coordinates": "align_corners"}),
    Case("resize-bilinear-pytorch-half-pixel", "resize", [X(2, 2, 4, 3)],
         {"axes": (2, 3), "sizes": (8, 1), "scales": (2.0, 1 / 3), "mode": "linear", "coordinates": "pytorch_half_pixel"}),
    Case("resize-linear-1d-half-pixel", "resize", [X(1, 3, 5)],
         {"axes": (2,), "sizes": (3,), "scales": (0.6,), "mode": "linear"}),
    Case("resize-cubic-exclude-outside", "resize", [X(1, 1, 4, 4)],
         {"axes": (2, 3), "sizes": (6, 3), "scales": (1.5, 0.75), "mode": "cubic", "exclude_outside": True}),
    Case("resize-trilinear-antialias", "resize", [X(1, 1, 4, 6, 3)],
         {"axes": (2, 3, 4), "sizes": (2, 3, 6), "scales": (0.5, 0.5, 2.0), "mode": "linear", "antialias": True}),
    Case("resize-tf-crop-extrapolate", "resize", [X(1, 1, 4, 4)],
         {"axes": (2, 3), "sizes": (3, 3), "scales": (0.75, 0.75), "mode": "linear", "coordinates": "tf_crop_and_resize",
          "roi": (0.4, 0.6, 1.2, 0.9), "extrapolation": 5.0}),
    Case("resize_grad-bilinear", "resize_grad", [X("N", 2, 6, 5), FIXED("N", 2, 3, 2)],
         {"axes": (2, 3), "sizes": (6, 5), "scales": (2.0, 2.5), "mode": "linear", "coordinates": "half_pixel"}),
    Case("resize_grad-nearest-1d", "resize_grad", [X(2, 1, 3), FIXED(2, 1, 5)],
         {"axes": (2,), "sizes": (3,), "scales": (0.6,), "mode": "nearest"}),
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
    Case("index_add-repeated-indices", "index_add", [X(3, 4), INT("N", 5, high=3), X("N", 5, 4)]),
    Case("index_add-axis1", "index_add", [X(2, 4, 3), INT(2, 3, high=4), X(2, 2, 3, 3)], {"axis": 1}),
    Case("index_add-two-pairs", "index_add", [X(3, 4), INT("N", 5, high=3), X("N", 5, 4), INT(2, high=3), X(2, 4)]),
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
    Case("fused-gelu-chain", "fused", [X("N", 3), X(3)],
         {"expr": Expr("add", (Expr("gelu", (0,), (("approximate", "tanh"),)), Expr("tanh", (1,))))}),
    Case("gelu-exact-symbolic", "gelu", [X("N", 3)], {"approximate": "none"}),
    Case("gelu-tanh-rank3", "gelu", [X(2, 3, 2)], {"approximate": "tanh"}),
    Case("erf-symbolic", "erf", [X("N", 3)]),
    Case("erf-vector", "erf", [X(4)]),
    Case("attention-heads-scalar-mask", "attention", [X("N", 2, 3, 4), X("N", 2, 5, 4), X("N", 2, 5, 2), X()],
         {"scale": 0.5}),
    Case("attention-mask-broadcast", "attention", [X(2, 3, 4), X(2, 5, 4), X(2, 5, 3), X(3, 5)], {"scale": 0.7}),
    Case("attention-mask-adds-batch", "attention", [X(3, 4), X(5, 4), X(5, 2), X(2, 3, 5)], {"scale": 1.0}),
    # ---- normalization (nngraph/ops/normalization.py): features [N, C] and images [N, C, H, W]
    Case("batch_norm-features", "batch_norm", [X("N", 4), X(4), X(4)], {"eps": 1e-5}),
    Case("batch_norm-images", "batch_norm", [X(2, 3, "H", 2), X(3), X(3)], {"eps": 1e-3}),
    Case("batch_norm_inference-features", "batch_norm_inference",
         [X("N", 4), X(4), X(4), X(4), X(4, domain="positive")], {"eps": 1e-5}),
    Case("batch_norm_inference-images", "batch_norm_inference",
         [X(2, 3, "H", 2), X(3), X(3), X(3), X(3, domain="positive")], {"eps": 0.1}),
    Case("layer_norm-symbolic", "layer_norm", [X("N", 4), X(4), X(4)], {"eps": 1e-5}),
    Case("layer_norm-sequence", "layer_norm", [X(2, "T", 3), X(3), X(3)], {"eps": 0.1}),
    Case("layer_norm-vector", "layer_norm", [X(5), X(5), X(5)], {"eps": 1e-3}),
]

# Ops without a VJP (their gradient is zero). Listed explicitly: an op added to OPS must either
# get gradient cases above or be added here on purpose.
NON_DIFFERENTIABLE = {"less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
                      "argmax", "one_hot", "sign", "constant", "dim_size", "fill", "positions",
                      "sample_categorical", "dropout_mask"}

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
    # scores, a uniform number per row, temperature in [0.5, 2), top_k in 0..3 (0: all), top_p in [0.5, 2)
    Case("sample_categorical-rows", "sample_categorical",
         [FIXED("N", 6), In(("N",), "fixed", "unit"), In((), "fixed", "positive"), INT(high=4), In((), "fixed", "positive")]),
    Case("sample_categorical-greedy-batched", "sample_categorical",
         [FIXED(2, 3, 5), In((2, 3), "fixed", "unit"), In((), "fixed", "nonzero"), INT(high=2), In((), "fixed", "unit")]),
    # the mask of dropout: shaped like its first input; the second is the step counter
    Case("dropout_mask-symbolic", "dropout_mask", [FIXED("N", 8), In((), "fixed", "positive")], {"rate": 0.5, "seed": 3}),
    Case("dropout_mask-images", "dropout_mask", [FIXED(2, 3, "H", 4), FIXED()], {"rate": 0.2}),
]




# Grad of grad as a Hessian-vector product (tests/ops/test_second_order.py): smooth ops, products,
# bilinear ops and ops linear in their input (whose gradient ops get differentiated in turn).
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
    Case("max_pool2d-3d-dilation", "max_pool2d", [X(1, 2, 5, 4, 4, domain="distinct")],
         {"kernel": (2, 2, 2), "stride": (1, 2, 1), "dilation": (2, 1, 2)}),
    Case("resize-bilinear", "resize", [X(1, 2, 3, 4)],
         {"axes": (2, 3), "sizes": (5, 6), "scales": (5 / 3, 1.5), "mode": "linear", "coordinates": "half_pixel"}),
    Case("slice-negative-step", "slice", [X(4, 3)], {"axes": (0,), "starts": (-1,), "ends": (None,), "steps": (-2,)}),
    Case("concat", "concat", [X("N", 2), X("N", 1)], {"axis": 1}),
    Case("pad", "pad", [X(2, 3)], {"pads": (1, 0, 0, 2), "value": 1.0}),
    # fused ops whose VJP reads their extra outputs (the weights, the statistics)
    Case("erf", "erf", [X("N", 3)]),
    Case("gelu-exact", "gelu", [X(2, 3)], {"approximate": "none"}),
    Case("gelu-tanh", "gelu", [X(2, 3)], {"approximate": "tanh"}),
    Case("layer_norm", "layer_norm", [X("N", 4), X(4), X(4)], {"eps": 0.1}),
    Case("attention-masked", "attention", [X(2, 3, 2), X(2, 4, 2), X(2, 4, 3), X(3, 4)], {"scale": 0.6}),
]


def all_cases() -> Iterator[Case]:
    """Every single-op case with a forward run: GRADIENT_CASES, then SHAPE_ONLY_CASES."""
    yield from GRADIENT_CASES
    yield from SHAPE_ONLY_CASES


# ================================================================ building and sampling
def sample(rng, spec: In, shape, dtype="float64"):
    """One random input for `spec` of the concrete `shape`: bool or int64 by its kind, else floats
    of `dtype` from its domain."""
    if spec.kind == "bool":
        return rng.random(shape) > 0.5
    if spec.kind == "int":
        return rng.integers(0, spec.high, size=shape)
    if spec.domain == "positive":
        x = rng.uniform(0.5, 2.0, size=shape)
    elif spec.domain == "nonzero":      # away from the kink of relu / abs and from division by 0
        x = rng.normal(size=shape)
        x = np.where(x >= 0, 1, -1) * (0.3 + np.abs(x))
    elif spec.domain == "unit":         # probabilities and uniform random numbers, in [0, 1)
        x = rng.uniform(0.0, 1.0, size=shape)
    elif spec.domain == "distinct":     # no ties for max, at least 0.1 apart (>> eps)
        n = int(np.prod(shape, dtype=int))
        x = (rng.permutation(n) - n / 2).reshape(shape) * 0.1
    else:
        x = rng.normal(size=shape)
    return np.asarray(x, dtype=dtype)


def one_node_graph(case: Case, dtype="float64") -> Graph:
    """Graph inputs x0, x1, ... (float inputs of `dtype`) -> the op -> outputs out0, out1, ...
    (every output of the op), and nothing else: no loss."""
    g = Graph(case.id)
    values = [g.add_input(f"x{i}", spec.type(dtype)) for i, spec in enumerate(case.inputs)]
    for i, out in enumerate(g.apply(case.op, values, case.attrs)):
        g.outputs[f"out{i}"] = out
    return g


def build(case: Case, dtype="float64"):
    """Graph inputs x0, x1, ... (float inputs of `dtype`) -> op -> output "out", and a scalar loss
    sum(out * r) with r a fed input of out's type. Returns (graph, names to differentiate)."""
    g = Graph(case.id)
    values, wrt = [], []
    for i, spec in enumerate(case.inputs):
        values.append(g.add_input(f"x{i}", spec.type(dtype)))
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
    """Random feeds for `graph` built from `case` (by `build` or `one_node_graph`): x0, x1, ... drawn
    by `sample` at the sizes `bindings` gives the symbolic dims, then the loss weights r, r1, ...
    (if the graph has them) normal; float inputs in `dtype`. Deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    feeds = {f"x{i}": sample(rng, spec, concrete_shape(spec.shape, bindings), dtype)
             for i, spec in enumerate(case.inputs)}
    for v in graph.inputs:
        if v.name.startswith("r"):       # the weights of the loss, one per output
            feeds[v.name] = rng.normal(size=concrete_shape(v.shape, bindings)).astype(dtype)
    return feeds


def ids(cases):
    """The pytest ids of `cases`."""
    return [c.id for c in cases]

