"""The training step is a graph: one run of it equals a hand-written NumPy update."""
import numpy as np
import pytest

import nngraph
from nngraph.autodiff import grad
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.config import Optimizer
from nngraph.training.step import initial_state, new_name, train_step_graph
from nngraph.verify import verify


@pytest.mark.parametrize("kind,settings", [("sgd", {"lr": 0.1}), ("sgd", {"lr": 0.1, "momentum": 0.9}),
                                           ("adam", {"lr": 0.01})])
def test_three_steps_equal_numpy(kind, settings):
    model = nngraph.load("models/squiggle.nn", dtype="float64")
    opt = Optimizer(kind, settings)
    step_graph = train_step_graph(model.graph, opt)
    verify(step_graph)
    step, gradient = Plan(step_graph), Plan(grad(model.graph))
    batch = {"dose": np.array([[0.0], [0.5], [1.0]]), "observed": np.array([[0.0], [1.0], [0.0]])}
    params, state = model.init(0), initial_state(model.graph, opt)
    expected = {k: v.copy() for k, v in params.items()}
    slots = {k: {"velocity": 0.0, "m": 0.0, "v": 0.0} for k in params}
    for t in range(1, 4):
        out = step.run(batch | state, params)
        params = {p: out[new_name(p)] for p in params}
        state = {s: out[new_name(s)] for s in state}
        grads = gradient.run(batch, expected)
        for name in expected:
            g, s = grads[f"grad:{name}"], slots[name]
            if kind == "adam":
                s["m"] = 0.9 * s["m"] + 0.1 * g
                s["v"] = 0.999 * s["v"] + 0.001 * g * g
                update = (s["m"] / (1 - 0.9 ** t)) / (np.sqrt(s["v"] / (1 - 0.999 ** t)) + 1e-8)
            elif settings.get("momentum"):
                s["velocity"] = 0.9 * s["velocity"] + g
                update = s["velocity"]
            else:
                update = g
            expected[name] = expected[name] - settings["lr"] * update
    for name in expected:
        np.testing.assert_allclose(params[name], expected[name], rtol=1e-12)


def test_npz_data_source(tmp_path):
    np.savez(tmp_path / "d.npz", dose=np.array([[0.0], [0.5], [1.0]]), efficacy=np.array([[0.0], [1.0], [0.0]]))
    (tmp_path / "m.nn").write_text(open("models/squiggle.nn").read().replace(
        'csv("data/dosage.csv", observed = "efficacy")', 'npz("d.npz", observed = "efficacy")'))
    result = nngraph.load(str(tmp_path / "m.nn")).train(epochs=50, progress=False)
    assert result.rows == (3, 0) and result.history[-1] < result.history[0]
