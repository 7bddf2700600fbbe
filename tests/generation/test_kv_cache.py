"""Decoding with a key/value cache (dsl/stdlib/decoding.nn, models/gpt.nn) gives the tokens that
recomputing the whole context gives: greedy and sampled, one graph (`generate_cached`) or one call
per token (`prefill` + `decode_step`, what `nngraph generate` streams), and in onnxruntime as one
call. Weights are the seeded initial ones moved at random, so that every one of them matters."""
from __future__ import annotations

import numpy as np
import pytest

import nngraph
from nngraph.generation import Generator, Sampling
from nngraph.runtime.numpy.kernels.sampling import sample_categorical
from tests.helpers import ROOT

GPT = str(ROOT / "models" / "gpt.nn")
VOCAB = [chr(c) for c in np.load(ROOT / "models" / "data" / "chars.npz")["vocab"]]
B, P, S = 3, 6, 26                     # P + S = 32, the model's positions
SETTINGS = [(0.0, 0, 1.0), (1.0, 0, 1.0), (0.8, 5, 0.9)]


@pytest.fixture(scope="module")
def params():
    rng = np.random.default_rng(1)
    return {k: (v + rng.normal(scale=0.3, size=v.shape)).astype(v.dtype)
            for k, v in nngraph.load(GPT, "gpt").init(0).items()}


def feeds(prompt, uniform, temperature, top_k, top_p) -> dict:
    return {"prompt": prompt, "uniform": uniform, "temperature": np.array(temperature, np.float32),
            "top_k": np.array(top_k, np.int64), "top_p": np.array(top_p, np.float32)}


def prompts_and_uniform(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 26, size=(B, P)), rng.random((S, B)).astype(np.float32)


def uncached(params, prompt, uniform, temperature, top_k, top_p) -> np.ndarray:
    """Every token from the whole context so far (`next_scores`), picked by the same op."""
    scores, seq = nngraph.load(GPT, "next_scores"), prompt
    for u in uniform:
        last = scores.run(params, {"text": seq})["scores"]
        char = sample_categorical(last, u, np.float32(temperature), np.int64(top_k), np.float32(top_p))
        seq = np.concatenate([seq, char[:, None]], axis=1)
    return seq[:, prompt.shape[1]:]


@pytest.mark.parametrize("settings", SETTINGS, ids=["greedy", "sampled", "top-k-top-p"])
def test_cached_generation_gives_the_uncached_tokens(params, settings):
    prompt, uniform = prompts_and_uniform()
    cached = nngraph.load(GPT, "generate_cached").run(params, feeds(prompt, uniform, *settings))["generated"]
    assert cached.shape == (B, S)
    np.testing.assert_array_equal(cached, uncached(params, prompt, uniform, *settings))
    assert len(np.unique(cached)) > 3                      # not one token over and over


@pytest.mark.parametrize("settings", SETTINGS, ids=["greedy", "sampled", "top-k-top-p"])
def test_streaming_one_step_per_call_gives_the_scan_tokens(params, settings):
    prompt, _ = prompts_and_uniform()
    temperature, top_k, top_p = settings
    uniform = np.random.default_rng(7).random((S, B)).astype(np.float32)     # what seed 7 draws
    scan = nngraph.load(GPT, "generate_cached").run(params, feeds(prompt, uniform, *settings))["generated"]
    generator = Generator(GPT, params, VOCAB)
    steps = list(generator.tokens([list(p) for p in prompt], S, Sampling(temperature, top_k, top_p, seed=7)))
    assert all(new.all() for _, new in steps)
    np.testing.assert_array_equal(np.stack([chars for chars, _ in steps], axis=1), scan)


def test_the_cache_holds_each_position_once_and_masks_the_empty_slots(params):
    prompt, _ = prompts_and_uniform()
    out = nngraph.load(GPT, "prefill").run(params, {"prompt": prompt})
    for name in ("keys1", "values1", "keys2", "values2"):
        cache = out[name]
        assert cache.shape == (B, 4, 32, 12)
        assert np.abs(cache[:, :, :P]).min() > 0 and np.abs(cache[:, :, P:]).max() == 0
    # the prefill's scores are the uncached model's at the prompt's last position
    whole = nngraph.load(GPT, "next_scores").run(params, {"text": prompt})["scores"]
    np.testing.assert_allclose(out["scores"], whole, rtol=1e-4, atol=1e-5)


def test_one_onnxruntime_call_generates_the_same_tokens(params, tmp_path):
    import onnx
    import onnxruntime as ort
    model = nngraph.load(GPT, "generate_cached")
    path = tmp_path / "generate_cached.onnx"
    model.export_onnx(str(path), params)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("Scan") == 1
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    prompt, uniform = prompts_and_uniform(seed=3)
    for settings in SETTINGS:
        f = feeds(prompt, uniform, *settings)
        np.testing.assert_array_equal(session.run(["generated"], f)[0], model.run(params, f)["generated"])


def test_prompts_of_different_lengths_share_a_batch(params):
    """The longer prompt's rest is fed as forced tokens: each row continues its own prompt as it
    would alone (greedy, so the rows do not depend on each other's random numbers)."""
    generator = Generator(GPT, params, VOCAB)
    alone = [list(generator.generate([p], 12, Sampling())) for p in ("the cat ", "alice wears a ")]
    together = Generator(GPT, params, VOCAB)
    pieces = list(together.generate(["the cat ", "alice wears a "], 12, Sampling()))
    for r, solo in enumerate(alone):
        assert "".join(p for row, p in pieces if row == r) == "".join(p for _, p in solo)
        assert len(together.rows[r].text) == 12
