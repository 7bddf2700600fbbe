"""Every differentiable op's symbolic VJP against central finite differences in float64, over
several shapes with broadcasting and symbolic dimensions; the registry walk keeps it complete."""
import numpy as np
import pytest

from nngraph.autodiff import grad
from nngraph.ir import Graph, TensorType
from nngraph.ops import OPS
from nngraph.runtime.executor import Plan

# (op, [input shapes, a symbolic "N" is bound to 3], attrs, domain) -- domain shapes the random values
CASES = [
    ("add", [("N", 3), (3,)], {}, "any"), ("add", [(2, 1, 4), (3, 1)], {}, "any"),
    ("sub", [("N", 3), ("N", 1)], {}, "any"), ("sub", [(4,), (2, 4)], {}, "any"),
    ("mul", [(2, 1, 4), (3, 1)], {}, "any"), ("mul", [("N", 2), ()], {}, "any"),
    ("div", [("N", 3), (3,)], {}, "positive"), ("div", [(2, 3), (2, 1)], {}, "positive"),
    ("pow", [("N", 3), ()], {}, "positive"), ("pow", [(2, 3), (3,)], {}, "positive"),
    ("neg", [("N", 3)], {}, "any"), ("neg", [(2, 2, 2)], {}, "any"),
    ("exp", [("N", 3)], {}, "any"), ("exp", [(4,)], {}, "any"),
    ("log", [("N", 3)], {}, "positive"), ("log", [(2, 2)], {}, "positive"),
    ("sqrt", [("N", 3)], {}, "positive"), ("sqrt", [(5,)], {}, "positive"),
    ("abs", [("N", 3)], {}, "away_from_zero"), ("abs", [(2, 2)], {}, "away_from_zero"),
    ("relu", [("N", 3)], {}, "away_from_zero"), ("relu", [(2, 3, 2)], {}, "away_from_zero"),
    ("sigmoid", [("N", 3)], {}, "any"), ("sigmoid", [(4,)], {}, "any"),
    ("tanh", [("N", 3)], {}, "any"), ("tanh", [(2, 2)], {}, "any"),
    ("softplus", [("N", 3)], {}, "any"), ("softplus", [(4,)], {}, "any"),
    ("softmax", [("N", 4)], {"axis": -1}, "any"), ("softmax", [(3, 2, 4)], {"axis": 0}, "any"),
    ("log_softmax", [("N", 4)], {"axis": -1}, "any"), ("log_softmax", [(3, 2)], {"axis": 0}, "any"),
    ("where", [("bool", ("N", 3)), (3,), ("N", 1)], {}, "any"),
    ("where", [("bool", (3,)), (2, 3), ()], {}, "any"),
    ("cast", [("N", 3)], {"dtype": "float64"}, "any"),
    ("sum", [("N", 3)], {"axes": None}, "any"), ("sum", [(2, 3, 4)], {"axes": (0, 2), "keepdims": True}, "any"),
    ("sum", [("N", 4)], {"axes": (-1,)}, "any"),
    ("mean", [("N", 3)], {"axes": None}, "any"), ("mean", [(2, 3, 4)], {"axes": (1,), "keepdims": True}, "any"),
    ("mean", [("N", 4)], {"axes": (0,)}, "any"),
    ("max", [("N", 4)], {"axes": (-1,)}, "distinct"), ("max", [(2, 3, 4)], {"axes": None}, "distinct"),
    ("max", [(3, 4)], {"axes": (0,), "keepdims": True}, "distinct"),
    ("matmul", [("N", 3), (3, 2)], {}, "any"), ("matmul", [(2, 3, 4), (4, 5)], {}, "any"),
    ("matmul", [(1, 3, 4), (2, 4, 5)], {}, "any"),
    ("transpose", [("N", 3)], {}, "any"), ("transpose", [(2, 3, 4)], {"perm": (1, 2, 0)}, "any"),
    ("reshape", [("N", 6)], {"shape": (0, 2, -1)}, "any"), ("reshape", [(2, 3, 4)], {"shape": (4, -1)}, "any"),
    ("reshape_like", [(2, 6), ("const", (3, 4))], {}, "any"),
    ("broadcast_like", [(3, 1), ("const", ("N", 3, 4))], {}, "any"),
    ("broadcast_like", [(4,), ("const", (2, 4))], {}, "any"),
    ("expand_dims", [("N", 3)], {"axes": (1,)}, "any"), ("expand_dims", [(3,)], {"axes": (0, -1)}, "any"),
]
NON_DIFFERENTIABLE = {"less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
                      "argmax", "one_hot", "sign", "constant", "dim_size"}
BINDING = {"N": 3}


def concrete(shape):
    return tuple(BINDING.get(d, d) for d in shape)


def sample(rng, shape, domain):
    x = rng.normal(size=concrete(shape))
    if domain == "positive":
        return rng.uniform(0.5, 2.0, size=concrete(shape))
    if domain == "away_from_zero":
        return np.sign(x) * (0.2 + np.abs(x))
    if domain == "distinct":
        return rng.permutation(np.arange(np.prod(concrete(shape), dtype=int))).reshape(concrete(shape)) * 0.1
    return x


def unpack(spec):
    """An input spec is a shape, or ("bool"|"const", shape) for an input nobody differentiates."""
    if len(spec) == 2 and spec[0] in ("bool", "const"):
        return spec
    return "x", spec


def build(op, specs, attrs):
    """A graph: inputs x0, x1, ... -> op -> loss = sum(out * r) with a fed random weighting r."""
    g = Graph(op)
    inputs, differentiable = [], []
    for i, spec in enumerate(specs):
        kind, shape = unpack(spec)
        dtype = "bool" if kind == "bool" else "float64"
        inputs.append(g.add_input(f"x{i}", TensorType(dtype, tuple(shape))))
        if kind == "x":
            differentiable.append(f"x{i}")
    out, = g.apply(op, inputs, attrs)
    r = g.add_input("r", out.type)
    prod, = g.apply("mul", [out, r])
    g.outputs["out"] = out
    g.outputs["loss"], = g.apply("sum", [prod], {"axes": None})
    g.loss = "loss"
    return g, differentiable


def case_id(case):
    op, specs, attrs, _ = case
    return f"{op}-" + "-".join("x".join(map(str, unpack(s)[1])) or "scalar" for s in specs) + ("-" + "-".join(f"{k}{v}" for k, v in attrs.items()) if attrs else "")


@pytest.mark.parametrize("op,specs,attrs,domain", CASES, ids=[case_id(c) for c in CASES])
def test_vjp_matches_central_differences(op, specs, attrs, domain):
    rng = np.random.default_rng(0)
    g, wrt = build(op, specs, attrs)
    feeds = {}
    for i, spec in enumerate(specs):
        kind, shape = unpack(spec)
        feeds[f"x{i}"] = rng.random(concrete(shape)) > 0.5 if kind == "bool" else sample(rng, shape, domain)
    forward = Plan(g)
    shape_out = concrete(g.outputs["out"].shape)
    # the op's kernel agrees with its shape rule (symbols bound)
    feeds["r"] = rng.normal(size=shape_out)
    result = forward.run(feeds)
    assert result["out"].shape == shape_out and str(result["out"].dtype) == g.outputs["out"].dtype

    symbolic = Plan(grad(g, wrt=wrt)).run(feeds)
    eps = 1e-6
    for name in wrt:
        numeric = np.zeros_like(feeds[name])
        for index in np.ndindex(feeds[name].shape):
            bumped = {k: v.copy() for k, v in feeds.items()}
            bumped[name][index] += eps
            up = forward.run(bumped)["loss"]
            bumped[name][index] -= 2 * eps
            down = forward.run(bumped)["loss"]
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(symbolic[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-7, err_msg=name)


def test_every_differentiable_op_has_a_gradient_check():
    covered = {case[0] for case in CASES}
    differentiable = {name for name, op in OPS.items() if op.vjp is not None}
    assert differentiable - covered == set(), "ops with a VJP but no gradient check"
    assert set(OPS) - differentiable == NON_DIFFERENTIABLE, "an op without a VJP must be listed as non-differentiable"


SECOND_ORDER = ["sigmoid", "tanh", "softplus", "exp", "log", "softmax", "log_softmax", "sqrt"]


@pytest.mark.parametrize("op", SECOND_ORDER)
def test_grad_of_grad_is_a_hessian_vector_product(op):
    from nngraph.ops import Emitter
    rng = np.random.default_rng(1)
    g, _ = build(op, [(2, 3)], {"axis": -1} if "softmax" in op else {})
    g1 = grad(g, wrt=["x0"])
    v = g1.add_input("v", TensorType("float64", (2, 3)))
    e = Emitter(g1, role="forward")
    g1.outputs["gv"] = e("sum", e("mul", g1.outputs["grad:x0"], v), axes=None)
    g1.loss = "gv"
    feeds = {"x0": rng.uniform(0.5, 2, (2, 3)), "r": rng.normal(size=(2, 3)), "v": rng.normal(size=(2, 3))}
    hv = Plan(grad(g1, of="gv", wrt=["x0"])).run(feeds)["grad:x0"]
    first = Plan(g1)
    eps = 1e-6
    up = first.run(feeds | {"x0": feeds["x0"] + eps * feeds["v"]})["grad:x0"]
    down = first.run(feeds | {"x0": feeds["x0"] - eps * feeds["v"]})["grad:x0"]
    np.testing.assert_allclose(hv, (up - down) / (2 * eps), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_logits_stay_finite(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=dtype)
    for op, check in [("softplus", lambda y: np.allclose(y, np.where(logits == 0, np.log(2), np.maximum(logits, 0)))),
                      ("sigmoid", lambda y: np.allclose(y[logits != 0], (logits > 0)[logits != 0])),
                      ("softmax", lambda y: np.allclose(y.sum(-1), 1)),
                      ("log_softmax", lambda y: np.isfinite(y).all() and np.isclose(y[0, 0], 0))]:
        g = Graph(op)
        x = g.add_input("x", TensorType(dtype, (2, 3)))
        y, = g.apply(op, [x], {"axis": -1} if "softmax" in op else {})
        g.outputs["y"] = y
        g.outputs["loss"], = g.apply("sum", [y], {"axes": None})
        g.loss = "loss"
        out = Plan(grad(g, wrt=["x"])).run({"x": logits})
        assert np.isfinite(out["y"]).all() and np.isfinite(out["grad:x"]).all(), op
        assert check(out["y"]), op


def test_cross_entropy_with_huge_logits_has_finite_loss_and_gradient():
    import nngraph
    import os
    import tempfile
    src = ("model ce {\n    input z: [N, 3]\n    target label: [N] int\n    output p = softmax(z)\n"
           "    loss = cross_entropy(z, label)\n}\n")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ce.nn")
        open(path, "w").write(src)
        model = nngraph.load(path)
    feeds = {"z": np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], np.float32), "label": np.array([1, 2])}
    out = Plan(grad(model.graph, wrt=["z"])).run(feeds)
    assert np.isfinite(out["loss"]) and np.isfinite(out["grad:z"]).all()
    np.testing.assert_allclose(out["loss"], (2e4 + np.log(3)) / 2, rtol=1e-6)
