"""The NumPy executor's buffer reuse and its training loop: results written into dead inputs, a
caller's arrays never touched, the embedding's sparse SGD step equal to the dense one."""
from __future__ import annotations

import weakref

import numpy as np
import pytest

import nngraph
from nngraph.ir import Graph, TensorType
from nngraph.runtime.numpy.executor import Plan
from nngraph.runtime.numpy.kernels.indexing import scatter_add
from nngraph.runtime.numpy.kernels.registry import KERNELS
from nngraph.training import step as step_module
from nngraph.training.config import Optimizer
from nngraph.training.loop import FeedBackLoop
from nngraph.training.step import initial_state, train_step_graph

W2V = """
model w2v {
    input centre: [N] int
    input context: [N] int
    input negatives: [N, 3] int
    words = embedding[40, 6]
    contexts = embedding[40, 6]
    centre_vector = words(centre)
    real = sum(centre_vector * contexts(context), axis = -1)
    noise = sum(reshape(centre_vector, [0, 1, 6]) * contexts(negatives), axis = -1)
    loss = bce_with_logits(real, 1) + bce_with_logits(noise, 0)
}
"""


def _batches(steps: int, n: int = 16):
    rng = np.random.default_rng(3)        # ids drawn from 10 of 40 rows: repeats, and rows never touched
    return [{"centre": rng.integers(0, 10, n), "context": rng.integers(0, 10, n),
             "negatives": rng.integers(0, 10, (n, 3))} for _ in range(steps)]


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_rows_are_added_as_np_add_at_adds_them(axis):
    """The sums of np.add.at, for repeated and negative indices, any axis, two pairs of indices
    and updates; each entry's updates summed before they reach the table."""
    rng = np.random.default_rng(axis + 5)
    table = rng.normal(size=(4, 7, 3))
    size, a = table.shape[axis], axis % 3
    pairs, added = [], np.zeros_like(table)
    for shape in ((6, 5), (4,)):
        indices = rng.integers(-size, size, shape)
        rows = rng.normal(size=table.shape[:a] + indices.shape + table.shape[a + 1:])
        np.add.at(added, (slice(None),) * a + (indices,), rows)
        pairs += [indices, rows]
    np.testing.assert_allclose(KERNELS["index_add"](table, *pairs, axis=axis), table + added, rtol=1e-13, atol=1e-13)
    zeros = np.zeros_like(table)
    np.add.at(zeros, (slice(None),) * a + (pairs[0],), pairs[1])
    np.testing.assert_allclose(scatter_add(pairs[1], pairs[0], table, axis=axis), zeros, rtol=1e-13, atol=1e-13)


def test_small_updates_round_once_into_the_table():
    """A table entry near 1 updated by many tiny amounts: summing them first gives the dense step's
    value; adding them one by one would round at the table's scale every time."""
    table = np.ones((2, 1), np.float32)
    indices = np.zeros(1000, np.int64)
    rows = np.full((1000, 1), 3e-8, np.float32)
    dense = table + scatter_add(rows, indices, table)
    np.testing.assert_array_equal(KERNELS["index_add"](table, indices, rows), dense)
    assert dense[0, 0] > 1


@pytest.mark.parametrize("indices", [[2], [-1, 0, 3], [1, 1, 0]])
def test_a_few_slots_along_an_inner_axis(indices):
    """A cache write's index_add: a few slots of axis 2, distinct (the direct path) or repeated."""
    rng = np.random.default_rng(len(indices))
    table = rng.normal(size=(2, 3, 5, 4))
    rows = rng.normal(size=(2, 3, len(indices), 4))
    expected = table.copy()
    np.add.at(expected, (slice(None), slice(None), np.array(indices)), rows)
    np.testing.assert_allclose(KERNELS["index_add"](table, np.array(indices), rows, axis=2), expected,
                               rtol=1e-13, atol=1e-13)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "w2v.nn"
    path.write_text(W2V)
    return nngraph.load(str(path), dtype="float64")


def test_plain_sgd_of_an_embedding_is_a_sparse_row_update(model):
    step = train_step_graph(model.graph, Optimizer("sgd", {"lr": 0.1}), 2)
    ops = [n.op for n in step.nodes]
    assert "index_add" in ops and "scatter_add" not in ops
    momentum = train_step_graph(model.graph, Optimizer("sgd", {"lr": 0.1, "momentum": 0.9}), 2)
    assert "index_add" not in [n.op for n in momentum.nodes]       # every velocity row decays: dense


@pytest.mark.parametrize("kind,settings", [("sgd", {"lr": 0.5}), ("sgd", {"lr": 0.5, "momentum": 0.9}),
                                           ("adam", {"lr": 0.05})])
def test_the_in_place_loop_matches_the_dense_feed_back_loop(model, kind, settings, monkeypatch):
    """The in-place loop against a reference that reuses nothing (free=False) and whose gradients
    are dense (the sparse SGD rewrite turned off)."""
    params = model.init(0)
    opt = Optimizer(kind, settings)
    fast = Plan(train_step_graph(model.graph, opt, 2)).loop(dict(params), initial_state(model.graph, opt))
    monkeypatch.setattr(step_module, "sparse_sgd_step", lambda *args: None)
    dense = train_step_graph(model.graph, opt, 2)
    assert "index_add" not in [n.op for n in dense.nodes]
    reference = FeedBackLoop(Plan(dense, free=False), dict(params), initial_state(model.graph, opt))
    before = {k: v.copy() for k, v in params.items()}
    table = weakref.ref(fast._carried["words.table"])     # (a reference would stop the reuse)
    for batch in _batches(5):
        np.testing.assert_allclose(fast.step(batch)["loss"], reference.step(batch)["loss"], rtol=1e-12)
    for name, value in reference.params().items():
        np.testing.assert_allclose(fast.params()[name], value, rtol=1e-12, atol=1e-15)
        assert not np.array_equal(value, before[name])
    for name, value in params.items():               # the caller's arrays are untouched
        np.testing.assert_array_equal(value, before[name])
    if kind == "sgd" and "momentum" not in settings:  # updated in place; rows never gathered keep their values
        assert fast._carried["words.table"] is table()
        np.testing.assert_array_equal(fast.params()["words.table"][10:], before["words.table"][10:])


def test_a_callers_inputs_are_never_overwritten():
    g = Graph("g")
    x = g.add_input("x", TensorType("float64", (3,)))
    y, = g.apply("exp", [x])
    z, = g.apply("add", [y, y])
    w, = g.apply("neg", [z])
    g.outputs["w"] = w
    plan = Plan(g)
    # exp may write into x (its last reader) but finds the caller holding it; neg writes into add's result
    assert [s.reuse for s in plan.steps] == [(0,), (), (0,)]
    feeds = {"x": np.array([0.0, 1.0, 2.0])}
    kept = feeds["x"].copy()
    np.testing.assert_allclose(plan(feeds)["w"], -2 * np.exp(kept))
    np.testing.assert_array_equal(feeds["x"], kept)


def test_a_view_of_a_dead_value_is_not_written_through():
    """`reshape` may return a view of its input: a node reusing that input must not change the view."""
    g = Graph("g")
    x = g.add_input("x", TensorType("float64", (2, 3)))
    y, = g.apply("exp", [x])
    v, = g.apply("reshape", [y], {"shape": (3, 2)})
    z, = g.apply("neg", [y])                 # y dies here, but v still sees its memory
    g.outputs["v"], g.outputs["z"] = v, z
    out = Plan(g)({"x": np.arange(6.0).reshape(2, 3)})
    np.testing.assert_allclose(out["v"], np.exp(np.arange(6.0)).reshape(3, 2))
    np.testing.assert_allclose(out["z"], -np.exp(np.arange(6.0)).reshape(2, 3))
