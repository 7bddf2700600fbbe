"""Every kernel's result against its op's shape rule: forward and backward nodes of every
gradient case in float32 and float64 at two sizes of N, the non-differentiable ops, integer dtypes;
and shape rules rejecting what the kernels cannot run (the cases: tests/ops/cases.py)."""
from __future__ import annotations

import numpy as np
import pytest

from nngraph.autodiff import grad
from nngraph.ir import Graph, TensorType
from nngraph.ir.registry import OPS, ShapeError
from nngraph.runtime.numpy.executor import Plan
from nngraph.runtime.numpy.kernels.registry import KERNELS
from tests.helpers import concrete_shape, typed_run
from tests.ops.cases import BINDINGS, GRADIENT_CASES, SHAPE_ONLY_CASES, Case, In, build, feeds_for, ids, sample


# ================================================================ kernel vs shape rule
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
    ("conv2d-1d-filters-on-an-image", "conv2d", [("float64", (1, 2, 5, 5)), ("float64", (3, 2, 3))], {}),
    ("conv2d-rank6-input", "conv2d", [("float64", (1, 1, 3, 3, 3, 3)), ("float64", (1, 1, 2, 2, 2, 2))], {}),
    ("conv2d-3d-two-strides", "conv2d", [("float64", (1, 1, 4, 4, 4)), ("float64", (1, 1, 2, 2, 2))], {"stride": (1, 1)}),
    ("max_pool2d-1d-padding-not-below-dilated-extent", "max_pool2d", [("float64", (1, 1, 9))],
     {"kernel": (2,), "dilation": (2,), "pads": (3, 0)}),
    ("avg_pool2d-3d-window-larger-dilated", "avg_pool2d", [("float64", (1, 1, 3, 5, 5))],
     {"kernel": (2, 2, 2), "dilation": (3, 1, 1)}),
    ("resize-symbolic-resized-axis", "resize", [("float64", (1, 2, "H", 4))],
     {"axes": (2,), "sizes": (8,), "scales": (2.0,)}),
    ("resize-unknown-mode", "resize", [("float64", (1, 2, 4, 4))],
     {"axes": (2,), "sizes": (8,), "scales": (2.0,), "mode": "area"}),
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
