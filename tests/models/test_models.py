"""Every shipped model trains from --seed 0 to its stated figure."""
import numpy as np
import pytest

import nngraph

MODELS = "models/"


def test_squiggle_fits_the_three_points():
    model = nngraph.load(MODELS + "squiggle.nn")
    result = model.train(seed=0, progress=False)
    assert result.train.loss < 0.01, result.summary()
    out = model.run(result.params, {"dose": np.array([[0.0], [0.5], [1.0]])})
    np.testing.assert_allclose(out["efficacy"][:, 0], [0, 1, 0], atol=0.1)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_each_activation_bends_the_curve(activation):
    """Each activation learns the squiggle far better than the best straight line (SSR 2/3)."""
    model = nngraph.load(MODELS + "activations.nn", activation)
    result = model.train(seed=0, progress=False)
    assert result.train.loss < 0.05, result.summary()


def test_iris_generalizes_to_held_out_flowers():
    model = nngraph.load(MODELS + "iris.nn")
    result = model.train(seed=0, progress=False)
    assert result.rows == (120, 30)
    assert result.holdout.accuracy >= 0.95, result.summary()
    assert "accuracy" in result.summary()


def test_iris_outputs_are_probabilities_and_their_argmax():
    model = nngraph.load(MODELS + "iris.nn")
    x = np.random.default_rng(1).uniform(0, 7, size=(5, 4))
    out = model.run(model.init(0), {"x": x})
    np.testing.assert_allclose(out["probs"].sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(out["species"], out["probs"].argmax(axis=1))
