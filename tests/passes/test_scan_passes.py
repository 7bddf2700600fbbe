"""The scan passes: loop-invariant and sequence-only work hoisted out of scan bodies
(nngraph/passes/hoist.py), accumulate-only carries summed after the loop (nngraph/passes/accumulate.py).
Each is checked for what it moves and for computing the same values."""
import numpy as np
import pytest

from nngraph.autodiff import grad
from nngraph.ir import Graph, TensorType
from nngraph.passes import hoist_scan_invariants, sum_scan_accumulations
from nngraph.runtime.numpy.executor import Plan
from nngraph.verify import verify
from tests.ops.test_scan import feeds, rnn_graph

F = "float64"


def _scans(graph):
    return [n for n in graph.nodes if n.op == "scan"]


def _same_values(before, after, f):
    expected, actual = Plan(before).run(f), Plan(after).run(f)
    assert set(expected) == set(actual)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-12, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("reverse", [False, True])
def test_the_input_projection_runs_once_over_every_step(reverse):
    g = rnn_graph(reverse=reverse)
    hoisted = hoist_scan_invariants(g.clone()[0])
    verify(hoisted)
    scan, = _scans(hoisted)
    body_ops = [n.op for n in scan.attrs["body"].nodes]
    assert body_ops.count("matmul") == 1                       # h @ wh stays: it reads the carry
    outer = [n for n in hoisted.nodes if n.op == "matmul"]
    assert len(outer) == 1 and str(outer[0].out.type) == "float64[T, B, 4]"   # xs @ wx, every step at once
    assert scan.inputs[1] is outer[0].out and scan.attrs["n_seq"] == 1        # xs itself is no longer read
    for T in (1, 4):
        _same_values(g, hoisted, feeds(g, T=T))


def test_work_on_captured_values_alone_runs_once_before_the_loop():
    g = rnn_graph(with_sequence=False, length=3)              # the body sums wx every step
    hoisted = hoist_scan_invariants(g.clone()[0])
    scan, = _scans(hoisted)
    assert "sum" not in [n.op for n in scan.attrs["body"].nodes]
    assert [n.op for n in hoisted.nodes].index("sum") < hoisted.nodes.index(scan)
    _same_values(g, hoisted, feeds(g))


def test_a_captured_operand_of_higher_rank_than_the_step_stays_in_the_loop():
    # x_t: [4], c: [B, 4]: x_t + c broadcasts per step, but stacked [T, 4] + [B, 4] would not
    body = Graph("step")
    h = body.add_input("h", TensorType(F, ("B", 4)))
    x = body.add_input("x", TensorType(F, (4,)))
    c = body.add_input("c", TensorType(F, ("B", 4)))
    xc, = body.apply("add", [x, c])
    new_h, = body.apply("mul", [h, xc])
    body.outputs["h"] = new_h
    g = Graph("g")
    h0 = g.add_input("h0", TensorType(F, ("B", 4)))
    xs = g.add_input("xs", TensorType(F, ("T", 4)))
    c0 = g.add_input("c", TensorType(F, ("B", 4)))
    g.outputs["h"], = g.apply("scan", [h0, xs, c0], {"body": body, "n_carry": 1, "n_seq": 1})
    hoisted = hoist_scan_invariants(g.clone()[0])
    assert [n.op for n in _scans(hoisted)[0].attrs["body"].nodes] == ["add", "mul"]
    _same_values(g, hoisted, feeds(g, T=3))


def test_a_body_shared_by_two_scans_is_not_edited_for_one():
    g = rnn_graph()
    body = g.nodes[0].attrs["body"]
    before = [n.op for n in body.nodes]
    hoist_scan_invariants(g)
    assert [n.op for n in body.nodes] == before
    assert _scans(g)[0].attrs["body"] is not body


def test_weight_gradients_are_summed_over_time_after_the_reverse_scan():
    G = grad(rnn_graph(), of="loss", wrt=["wx", "wh", "h0"])
    backward = _scans(G)[-1]
    assert backward.attrs["n_carry"] == 3                     # d h, sum d wx, sum d wh
    moved = sum_scan_accumulations(G.clone()[0])
    verify(moved)
    backward = _scans(moved)[-1]
    assert backward.attrs["n_carry"] == 1                     # only d h is carried from step to step
    assert not any(n.op == "matmul" and n.inputs[0].node is not None and n.inputs[0].node.op == "transpose"
                   for n in backward.attrs["body"].nodes)
    gemms = [n for n in moved.nodes if n.op == "matmul" and str(n.out.type) in ("float64[3, 4]", "float64[4, 4]")]
    assert len(gemms) == 2 and all("T*B" in str(n.inputs[1].type) or "B*T" in str(n.inputs[1].type) for n in gemms)
    for T in (1, 5):
        _same_values(G, moved, feeds(rnn_graph(), T=T))


@pytest.mark.parametrize("level", [1, 2])
def test_the_pipeline_leaves_the_lstm_step_with_only_carry_work(level):
    """An LSTM's training step: per step the forward scan multiplies by the recurrent weights only
    (the input projection is one GEMM before it), the reverse scan computes the carry's gradient
    only (weights summed after it), and nothing of the forward step is recomputed."""
    import nngraph
    from nngraph.training.config import TrainConfig
    from nngraph.training.step import train_step_graph
    model = nngraph.load("bench/models/lstm128.nn")
    step = train_step_graph(model.graph, TrainConfig().optimizer, level)
    forward, backward = _scans(step)
    dots = ("matmul", "gemm")
    assert sum(n.op in dots for n in forward.attrs["body"].nodes) == 4          # h @ w_h of four gates
    assert sum(n.op in dots for n in backward.attrs["body"].nodes) == 4         # d h of four gates
    assert backward.attrs["n_carry"] == 2                                      # d h, d c



def test_a_sum_over_a_carry_stays_in_the_loop():
    # s' = s + transpose(h) @ x_t, h' = tanh(h): h is a carry, which the scan does not stack
    body = Graph("step")
    s = body.add_input("s", TensorType(F, (4, 3)))
    h = body.add_input("h", TensorType(F, ("B", 4)))
    x = body.add_input("x", TensorType(F, ("B", 3)))
    ht, = body.apply("transpose", [h], {"perm": (1, 0)})
    term, = body.apply("matmul", [ht, x])
    body.outputs["s"], = body.apply("add", [s, term])
    body.outputs["h"], = body.apply("tanh", [h])
    g = Graph("g")
    s0, h0 = g.add_input("s0", TensorType(F, (4, 3))), g.add_input("h0", TensorType(F, ("B", 4)))
    xs = g.add_input("xs", TensorType(F, ("T", "B", 3)))
    g.outputs["s"], g.outputs["h"] = g.apply("scan", [s0, h0, xs], {"body": body, "n_carry": 2, "n_seq": 1})
    moved = sum_scan_accumulations(g.clone()[0])
    assert _scans(moved)[0].attrs["n_carry"] == 2
    _same_values(g, moved, feeds(g, T=3))
