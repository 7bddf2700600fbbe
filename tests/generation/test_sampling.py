"""The categorical-sampling op (nngraph/ops/sampling.py) means what its doc says, in every backend:
temperature 0 is the argmax with no division by zero, sampling follows softmax(scores / T), top-k
and top-p cut the candidates, and the same uniform numbers pick the same categories in NumPy,
JAX and onnxruntime."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import nngraph
from nngraph.ir import Graph, TensorType
from nngraph.runtime.numpy.executor import Plan

V = 6


def sampler() -> Graph:
    g = Graph("sample")
    ins = [g.add_input("scores", TensorType("float32", ("N", V))), g.add_input("uniform", TensorType("float32", ("N",))),
           g.add_input("temperature", TensorType("float32", ())), g.add_input("top_k", TensorType("int64", ())),
           g.add_input("top_p", TensorType("float32", ()))]
    g.outputs["pick"] = g.apply("sample_categorical", ins, {})[0]
    return g


def draw(scores, uniform, temperature=1.0, top_k=0, top_p=1.0, backend="numpy"):
    feeds = {"scores": np.asarray(scores, np.float32), "uniform": np.asarray(uniform, np.float32),
             "temperature": np.float32(temperature), "top_k": np.int64(top_k), "top_p": np.float32(top_p)}
    if backend == "numpy":
        return Plan(sampler()).run(feeds, {})["pick"]
    return nngraph.runtime.get(backend).compile(sampler())(feeds, {})["pick"]


SCORES = np.array([0.5, 2.0, -1.0, 1.5, 0.0, 1.0], np.float32)
PROBS = np.exp(SCORES) / np.exp(SCORES).sum()               # order: 1, 3, 5, 0, 4, 2


def frequencies(picks) -> np.ndarray:
    return np.bincount(picks, minlength=V) / len(picks)


def many(temperature=1.0, top_k=0, top_p=1.0, n=20000):
    u = np.random.default_rng(0).random(n)
    return draw(np.tile(SCORES, (n, 1)), u, temperature, top_k, top_p)


def test_temperature_zero_is_the_argmax_without_a_warning():
    rows = np.random.default_rng(1).normal(size=(50, V))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # no division by zero, no overflow
        picks = draw(rows, np.random.default_rng(2).random(50), temperature=0.0)
    np.testing.assert_array_equal(picks, rows.astype(np.float32).argmax(-1))


def test_samples_follow_the_softmax_of_the_scores():
    np.testing.assert_allclose(frequencies(many()), PROBS, atol=0.01)
    hot = np.exp(SCORES / 0.5) / np.exp(SCORES / 0.5).sum()
    np.testing.assert_allclose(frequencies(many(temperature=0.5)), hot, atol=0.01)


def test_top_k_keeps_the_k_most_likely_renormalized():
    f = frequencies(many(top_k=2))
    assert set(np.flatnonzero(f)) == {1, 3}
    np.testing.assert_allclose(f[[1, 3]], PROBS[[1, 3]] / PROBS[[1, 3]].sum(), atol=0.01)
    np.testing.assert_array_equal(many(top_k=1, n=100), np.full(100, 1))


def test_top_p_keeps_the_smallest_set_reaching_p():
    ranked = np.sort(PROBS)[::-1]                                # 0.37, 0.22, 0.14, ...
    f = frequencies(many(top_p=float(ranked[0] + ranked[1] + 0.01)))     # needs the third one too
    assert set(np.flatnonzero(f)) == {1, 3, 5}
    np.testing.assert_array_equal(many(top_p=0.05, n=100), np.full(100, 1))   # the most likely always stays


def test_uniform_numbers_pick_through_the_cumulative_distribution():
    cdf = np.cumsum(PROBS[[1, 3, 5, 0, 4, 2]])
    u = np.array([0.0, cdf[0] - 1e-3, cdf[0] + 1e-3, cdf[2] + 1e-3, 0.999999])
    np.testing.assert_array_equal(draw(np.tile(SCORES, (5, 1)), u), [1, 1, 3, 0, 2])


@pytest.mark.parametrize("backend", ["jax", "onnxruntime"])
def test_every_backend_picks_what_numpy_picks(backend):
    rng = np.random.default_rng(3)
    rows, u = rng.normal(size=(400, V)) * 2, rng.random(400)
    for settings in [(0.0, 0, 1.0), (1.0, 0, 1.0), (0.7, 3, 1.0), (1.3, 0, 0.8), (1.0, 4, 0.6)]:
        np.testing.assert_array_equal(draw(rows, u, *settings, backend=backend), draw(rows, u, *settings))


def test_mismatched_uniform_shape_is_a_diagnostic(tmp_path):
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input s: [N, 5]\n    input u: [N, 2]\n    output c = sample(s, u)\n}\n")
    with pytest.raises(nngraph.NNError) as err:
        nngraph.load(str(path))
    assert "one uniform number per row of scores" in str(err.value) and err.value.span.line == 4
    assert err.value.span.column == 16
