"""Recurrent models from --seed 0, and the recurrent layers' gradients (through scan) against
central differences in float64."""
import numpy as np
import pytest

import nngraph
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import assert_close, central_difference


def test_rnn_predicts_both_companies_next_day():
    model = nngraph.load("models/rnn.nn")
    result = model.train(seed=0)
    prediction = model.run(result.params)["prediction"]
    np.testing.assert_allclose(prediction, [[0.0], [1.0]], atol=0.01)   # company A -> 0, B -> 1


def test_lstm_predicts_both_companies_next_day():
    model = nngraph.load("models/lstm.nn")
    result = model.train(seed=0)
    prediction = model.run(result.params)["prediction"]
    np.testing.assert_allclose(prediction, [[0.0], [1.0]], atol=0.02)


def test_lstm_recalls_the_first_symbol_where_a_plain_rnn_does_not_yet():
    """The same data (40 steps) and budget (10 epochs) for both: README figures."""
    lstm = nngraph.load("models/long_memory.nn", "lstm").train(seed=0)
    rnn = nngraph.load("models/long_memory.nn", "rnn").train(seed=0)
    assert lstm.holdout.accuracy >= 0.95
    assert rnn.holdout.accuracy < 0.5
    print(f"held-out accuracy: lstm {lstm.holdout.accuracy:.2%}, rnn {rnn.holdout.accuracy:.2%}")


LAYERS = """model m {
    input xs: [T, N, 2]
    output a = LAYER(xs)
    loss = sum(a * a) + sum(a)
}
"""


@pytest.mark.parametrize("layer", ["rnn[3]", "rnn[3, relu]", "lstm[3]", "gru[3]", "birnn[2]", "bilstm[2]",
                                   "bigru[2]"])
def test_recurrent_layers_gradients_match_central_differences(tmp_path, layer):
    path = tmp_path / "m.nn"
    path.write_text(LAYERS.replace("LAYER", layer))
    model = nngraph.load(str(path), dtype="float64")
    params = {k: v + 0.1 for k, v in model.init(0).items()}        # biases off zero: no ReLU kinks at 0
    xs = np.random.default_rng(0).normal(size=(4, 2, 2))
    symbolic = Plan(model.compile(grad=True, opt_level=2)).run({"xs": xs}, params)
    forward = Plan(model.graph)
    for name in params:
        numeric = central_difference(lambda p: forward.run({"xs": xs}, p)["loss"], params, name, eps=1e-6)
        assert_close(symbolic[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, what=f"{layer}: grad:{name}")


@pytest.mark.parametrize("layer", ["birnn[3]", "bilstm[3]", "bigru[3]"])
def test_bidirectional_layers_read_the_past_forwards_and_the_future_backwards(tmp_path, layer):
    """Changing step t changes the forward half from t on and the backward half up to t only."""
    path = tmp_path / "m.nn"
    path.write_text(LAYERS.replace("LAYER", layer))
    model = nngraph.load(str(path), dtype="float64")
    plan, params = Plan(model.inference_graph()), model.init(0)
    xs = np.random.default_rng(1).normal(size=(5, 2, 2))
    nudged = xs.copy()
    nudged[2] += 1.0
    a, b = plan.run({"xs": xs}, params)["a"], plan.run({"xs": nudged}, params)["a"]
    assert a.shape == (5, 2, 6)
    changed = np.abs(a - b).max(axis=(1,)) > 1e-9           # [T, 6]: which step and half moved
    assert changed[:2, :3].sum() == 0 and changed[2:, :3].all()      # forwards: steps 2.. only
    assert changed[3:, 3:].sum() == 0 and changed[:3, 3:].all()      # backwards: steps ..2 only
