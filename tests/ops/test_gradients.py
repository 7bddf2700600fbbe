"""Every differentiable op's symbolic VJP against central finite differences in float64, over
several shapes with broadcasting and symbolic dimensions (the cases: tests/ops/cases.py); a
registry walk that keeps the case table complete: an op added to OPS without a gradient check (or
an explicit non-differentiable listing) fails `test_registry_is_covered`; gradients of cast and of
max at ties; numerical stability for huge logits.
"""
from __future__ import annotations

import numpy as np
import pytest

from nngraph.autodiff import grad
from nngraph.ir import Graph, TensorType
from nngraph.ir.registry import OPS
from nngraph.runtime.numpy.executor import Plan
from nngraph.verify import verify
from tests.helpers import assert_close, central_difference, typed_run, weighted_sum_loss
from tests.ops.cases import GRADIENT_CASES, NON_DIFFERENTIABLE, SHAPE_ONLY_CASES, build, feeds_for, ids


# ================================================================ first-order gradients
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


# ================================================================ registry walk
# ops whose attributes hold a subgraph typed for one dtype: their gradient checks live with them
CHECKED_ELSEWHERE = {"scan": "tests/ops/test_scan.py"}


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


# ================================================================ cast, and max at ties
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


# ================================================================ numerical stability
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
