"""scan: shape rules against the carry, the runtime running the body once per step, and
backpropagation through time (a reverse scan of the body's VJP) against central differences."""
import numpy as np
import pytest

from nngraph.autodiff import grad
from nngraph.ir import Graph, TensorType
from nngraph.ir.registry import ShapeError
from nngraph.ops.recurrence import RESIDUALS
from nngraph.passes import optimize
from nngraph.runtime.numpy.executor import Plan
from nngraph.verify import verify
from tests.helpers import add_dot_loss, assert_close, central_difference

F = "float64"


def rnn_body(n=3, hidden=4, with_sequence=True):
    """h' = tanh(x @ wx + h @ wh); returns (h', h' * 2) — the new carry and a per-step result."""
    body = Graph("step")
    h = body.add_input("h", TensorType(F, ("B", hidden)))
    x = body.add_input("x", TensorType(F, ("B", n))) if with_sequence else None
    wx = body.add_input("wx", TensorType(F, (n, hidden)))
    wh = body.add_input("wh", TensorType(F, (hidden, hidden)))
    pre, = body.apply("matmul", [h, wh])
    if x is not None:
        xw, = body.apply("matmul", [x, wx])
        pre, = body.apply("add", [xw, pre])
    else:
        bias, = body.apply("sum", [wx], {"axes": (0,)})
        pre, = body.apply("add", [pre, bias])
    new_h, = body.apply("tanh", [pre])
    two, = body.apply("constant", [], {"value": np.asarray(2.0)})
    y, = body.apply("mul", [new_h, two])
    body.outputs["h"] = new_h
    body.outputs["y"] = y
    return body


def rnn_graph(reverse=False, with_sequence=True, length=None):
    g = Graph("rnn")
    h0 = g.add_input("h0", TensorType(F, ("B", 4)))
    xs = g.add_input("xs", TensorType(F, ("T", "B", 3))) if with_sequence else None
    wx = g.add_input("wx", TensorType(F, (3, 4)))
    wh = g.add_input("wh", TensorType(F, (4, 4)))
    inputs = [h0] + ([xs] if xs is not None else []) + [wx, wh]
    final, ys = g.apply("scan", inputs, {"body": rnn_body(with_sequence=with_sequence), "n_carry": 1,
                                         "n_seq": 1 if with_sequence else 0, "reverse": reverse, "length": length})
    g.outputs["final"], g.outputs["ys"] = final, ys
    add_dot_loss(g, [("final", "r_final"), ("ys", "r_ys")], "loss")
    return g


def feeds(graph, T=5, B=2, seed=0):
    rng = np.random.default_rng(seed)
    sizes = {"T": T, "B": B}
    return {v.name: rng.normal(size=[sizes.get(d, d) for d in v.shape]) * 0.5 for v in graph.inputs}


def reference_rnn(f, reverse=False, steps=None):
    h = f["h0"]
    order = range(len(f["xs"])) if steps is None else range(steps)
    order = list(reversed(order)) if reverse else list(order)
    ys = {}
    for t in order:
        pre = (f["xs"][t] @ f["wx"] if steps is None else f["wx"].sum(0)) + h @ f["wh"]
        h = np.tanh(pre)
        ys[t] = 2 * h
    return h, np.stack([ys[t] for t in sorted(ys)])


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_scan_runs_the_body_once_per_step(reverse):
    g = rnn_graph(reverse)
    verify(g)
    assert str(g.outputs["ys"].type) == "float64[T, B, 4]"
    for T in (1, 6):                           # one compiled graph, sequences of different lengths
        f = feeds(g, T=T)
        out = Plan(g).run(f)
        final, ys = reference_rnn(f, reverse)
        np.testing.assert_allclose(out["final"], final, rtol=1e-12)
        np.testing.assert_allclose(out["ys"], ys, rtol=1e-12)


def test_scan_without_a_sequence_runs_a_given_number_of_steps():
    g = rnn_graph(with_sequence=False, length=4)
    assert str(g.outputs["ys"].type) == "float64[4, B, 4]"
    f = feeds(g)
    out = Plan(g).run(f)
    final, ys = reference_rnn(f, steps=4)
    np.testing.assert_allclose(out["final"], final, rtol=1e-12)
    np.testing.assert_allclose(out["ys"], ys, rtol=1e-12)


@pytest.mark.parametrize("policy", ["save", "recompute"])
@pytest.mark.parametrize("case", ["forward", "reverse", "no-sequence"])
def test_backpropagation_through_time_matches_central_differences(case, policy):
    g = rnn_graph(reverse=case == "reverse", with_sequence=case != "no-sequence",
                  length=3 if case == "no-sequence" else None)
    wrt = [v.name for v in g.inputs if not v.name.startswith("r_")]
    with RESIDUALS.override(mode=policy):
        G = grad(g, of="loss", wrt=wrt)
    verify(G)
    f = feeds(g, T=4)
    forward = Plan(g)
    for graph in (G, optimize(G.clone()[0], 2, observe=lambda name, graph: verify(graph))):
        symbolic = Plan(graph).run(f)
        for name in wrt:                           # initial carry, sequence, and captured weights
            numeric = central_difference(lambda a: forward.run(a)["loss"], f, name, eps=1e-6)
            assert_close(symbolic[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, what=f"{case}: grad:{name}")


def test_gradient_graph_of_a_scan_optimizes_and_keeps_its_values():
    G = grad(rnn_graph(), of="loss", wrt=["wx", "wh", "h0"])
    f = feeds(rnn_graph(), T=3)
    expected = Plan(G).run(f)
    seen = []
    optimized = optimize(G.clone()[0], 2, observe=lambda name, graph: (verify(graph), seen.append(name)))
    actual = Plan(optimized).run(f)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-10, err_msg=key)


def test_a_carry_must_keep_its_type():
    body = rnn_body()
    g = Graph("bad")
    h0 = g.add_input("h0", TensorType(F, ("B", 5)))            # the body's carry is [B, 4]
    xs = g.add_input("xs", TensorType(F, ("T", "B", 3)))
    wx, wh = g.add_input("wx", TensorType(F, (3, 4))), g.add_input("wh", TensorType(F, (4, 4)))
    with pytest.raises(ShapeError, match=r"the scan body's input `h` is float64\[B, 4\] but receives float64\[B, 5\]"):
        g.apply("scan", [h0, xs, wx, wh], {"body": body, "n_carry": 1, "n_seq": 1})


def test_the_forward_scan_keeps_the_residuals_and_runs_once():
    G = grad(rnn_graph(), of="loss", wrt=["wx", "wh"])
    scans = [n for n in G.nodes if n.op == "scan"]
    assert len(scans) == 2                                     # forward (saving), backward
    forward, backward = scans
    # final h, ys, the residual tanh(pre) of every step, the carry every step started from
    assert forward.attrs["save_carries"] and [str(v.type) for v in forward.outputs] == [
        "float64[B, 4]", "float64[T, B, 4]", "float64[T, B, 4]", "float64[T, B, 4]"]
    assert not any(n.op == "matmul" and n.role == "forward" for n in backward.attrs["body"].nodes)
    assert backward.inputs.count(forward.outputs[2]) == 1       # the reverse scan reads the residual
    f = feeds(rnn_graph(), T=3)
    with RESIDUALS.override(mode="recompute"):
        recomputed = grad(rnn_graph(), of="loss", wrt=["wx", "wh"])
    for key, value in Plan(recomputed).run(f).items():
        np.testing.assert_allclose(Plan(G).run(f)[key], value, rtol=1e-12, err_msg=key)


@pytest.mark.parametrize("budget,saves", [(10 ** 9, True), (1000, False)])
def test_the_residual_policy_saves_within_its_budget(budget, saves):
    # residual: tanh(pre), float64[T, B, 4] with T and B counted as symbolic_dim = 8: 8 * 8 * 4 * 8 bytes
    with RESIDUALS.override(mode="auto", budget_bytes=budget, symbolic_dim=8):
        G = grad(rnn_graph(), of="loss", wrt=["wx", "wh"])
    assert [n.op for n in G.nodes].count("scan") == (2 if saves else 3)
    with pytest.raises(NNError, match="auto, save or recompute"), RESIDUALS.override(mode="sometimes"):
        grad(rnn_graph(), of="loss", wrt=["wx"])


def test_without_residuals_the_forward_scan_saves_its_carries_instead_of_running_twice():
    with RESIDUALS.override(mode="recompute"):
        G = grad(rnn_graph(), of="loss", wrt=["wx", "wh"])
    assert [n.op for n in G.nodes].count("scan") == 3          # forward, forward again saving, backward
    optimized = optimize(G.clone()[0], 1)
    scans = [n for n in optimized.nodes if n.op == "scan"]
    assert len(scans) == 2 and scans[0].attrs["save_carries"] and len(scans[0].outputs) == 3
    f = feeds(rnn_graph(), T=3)
    for key, value in Plan(G).run(f).items():
        np.testing.assert_allclose(Plan(optimized).run(f)[key], value, rtol=1e-12, err_msg=key)


def test_passes_reach_into_scan_bodies():
    g = rnn_graph()
    body = g.nodes[0].attrs["body"]
    x = body.outputs["y"]
    one, = body.apply("constant", [], {"value": np.asarray(1.0)})
    body.outputs["y"], = body.apply("mul", [x, one])          # y * 1
    before = len(body.nodes)
    optimized = optimize(g.clone()[0], 2)
    inner = next(n for n in optimized.nodes if n.op == "scan").attrs["body"]
    assert len(inner.nodes) < before and "gemm" in [n.op for n in inner.nodes]   # y * 1 gone, x@wx + . fused
    f = feeds(g)
    np.testing.assert_allclose(Plan(optimized).run(f)["ys"], Plan(g).run(f)["ys"], rtol=1e-12)


# ================================================================ scan in the language
import nngraph  # noqa: E402
from nngraph.diagnostics import NNError  # noqa: E402
from tests.helpers import SCANS_NN  # noqa: E402


def load_source(tmp_path, text, name="m.nn", dtype="float32"):
    path = tmp_path / name
    path.write_text(text)
    return nngraph.load(str(path), dtype=dtype)


def test_scan_in_the_language_runs_and_differentiates(tmp_path):
    model = load_source(tmp_path, SCANS_NN, dtype="float64")
    assert str(model.graph.outputs["states"].type) == "float64[T, B, 4]"
    assert str(model.graph.outputs["last"].type) == "float64[B, 4]"
    G = model.compile(grad=True, opt_level=2)
    params = model.init(0)
    rng = np.random.default_rng(0)
    f = {"xs": rng.normal(size=(5, 2, 3)), "ys": rng.normal(size=(5, 2, 4))}
    symbolic = Plan(G).run(f, params)
    forward = Plan(model.graph)
    for name in params:
        numeric = central_difference(lambda p: forward.run(f, p)["loss"], params, name, eps=1e-6)
        assert_close(symbolic[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, what=f"grad:{name}")


@pytest.mark.parametrize("body,line,column,message", [
    ("    hs = scan x in xs carry (h = zeros[B, 4]) {\n        h = x\n        yield h\n    }",
     3, 34, "the carry `h` starts as float32[B, 4] but one step makes it float32[B, 3]; "
            "a carry must keep its type from step to step"),
    ("    yield xs", 3, 5, "`yield` gives one step's results inside a `scan { }` body"),
    ("    hs = scan x in xs {\n        param w: [3] = 0\n        yield x\n    }", 4, 9,
     "a scan body holds assignments and `yield`, not param statements"),
    ("    hs = scan 2.5 steps carry (h = zeros[B, 4]) {\n        h = h\n    }", 3, 15,
     "the number of steps must be a positive integer known at compile time, got the float 2.5"),
    ("    hs = scan x in xs carry (h = zeros[K, 4]) {\n        yield h\n    }", 3, 40,
     "no input of the model has the size `K`, so it is not known here"),
])
def test_scan_diagnostics(tmp_path, body, line, column, message):
    text = f"model m {{\n    input xs: [T, B, 3]\n{body}\n    output y = xs\n}}\n"
    with pytest.raises(NNError) as err:
        load_source(tmp_path, text)
    assert (err.value.span.line, err.value.span.column) == (line, column)
    assert err.value.message == message
