"""Second derivatives: grad of grad as Hessian-vector products against central differences of
the gradient, with the Hessian's symmetry, for single ops (the cases: tests/ops/cases.py),
composites, a small CNN with gather and an MLP's weights."""
from __future__ import annotations

import numpy as np
import pytest

from nngraph.autodiff import grad
from nngraph.ir import Graph, ParamInit, TensorType
from nngraph.runtime.numpy.executor import Plan
from nngraph.verify import verify
from tests.helpers import add_dot_loss, assert_close, central_difference, directional_difference
from tests.ops.cases import SECOND_ORDER_CASES, build, feeds_for, ids


# ================================================================ second order
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
