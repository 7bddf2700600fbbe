"""The attention library (dsl/stdlib/attention.nn) and the models built on it.

- each layer against a NumPy reference, and its gradients (every parameter and the inputs) against
  central differences in float64: layer_norm, scaled dot-product attention with causal and
  padding masks, multi-head attention, the encoder and decoder blocks, learned positions;
- the causal mask really hides the future; sinusoidal positions are the formula;
- the models from --seed 0 (times on 2 cores): seq2seq translates both phrases (about 1 s);
  on copying 10-20 symbols the transformer reaches 100% and seq2seq with attention 98% of the
  held-out sequences, seq2seq without attention 0% after the same budget (about 10 s each);
  the character GPT reaches a validation loss below 0.35 nats and generates grammatical text
  (about 15 s).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import nngraph
from nngraph.autodiff import grad
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.loop import split
from tests.helpers import ROOT, assert_close, central_difference

MODELS = ROOT / "models"


def load_text(tmp_path, text: str, name: str | None = None, dtype: str = "float64"):
    path = tmp_path / "m.nn"
    path.write_text(text)
    return nngraph.load(str(path), name, dtype=dtype)


# ================================================================ NumPy references
def np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_layer_norm(x, gain, bias, eps=1e-5):
    c = x - x.mean(-1, keepdims=True)
    return c / np.sqrt((c * c).mean(-1, keepdims=True) + eps) * gain + bias


def np_attention(q, k, v, mask=0.0):
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + mask
    return np_softmax(scores) @ v


def np_causal(t):
    return np.where(np.arange(t)[:, None] >= np.arange(t)[None, :], 0.0, -1e9)


def np_mha(p, prefix, query, memory, mask, heads):
    def dense(name, x):
        return x @ p[f"{prefix}.{name}.w"] + p[f"{prefix}.{name}.b"]

    def split_heads(x):
        b, t, d = x.shape
        return x.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3)

    mixed = np_attention(split_heads(dense("q", query)), split_heads(dense("k", memory)),
                         split_heads(dense("v", memory)), mask)
    b, h, t, k = mixed.shape
    return dense("out", mixed.transpose(0, 2, 1, 3).reshape(b, t, h * k))


# ================================================================ layers: values and gradients
LAYERS = """
model layers {
    input  x: [N, T, 8]
    input  m: [N, S, 8]
    input  ids: [N, S] int
    target r: [N, T, 8]
    normed = layer_norm(x)
    self_attended = attention(x, x, x, causal_mask(x))
    cross = multi_head_attention[2, 6](x, m, padding_mask(ids))
    encoded = encoder_block[2, 8, 12](m, padding_mask(ids))
    decoded = decoder_block[2, 4, 10](x + learned_positions[5](x), encoded, causal_mask(x), padding_mask(ids))
    output normed
    output self_attended
    output cross
    output encoded
    output decoded
    loss = sum((normed + self_attended + cross + decoded) * r)
}
"""


def layer_feeds(seed=0, n=2, t=3, s=4):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 5, size=(n, s))
    ids[0, -1] = ids[1, -2:] = 0             # padding at the end of both rows
    return {"x": rng.normal(size=(n, t, 8)), "m": rng.normal(size=(n, s, 8)), "ids": ids,
            "r": rng.normal(size=(n, t, 8))}


def randomized(model, seed=1):
    """Parameters away from their initial constants (gains 1, biases 0), so every one matters."""
    rng = np.random.default_rng(seed)
    return {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in model.init(0).items()}


def test_layers_match_numpy_references(tmp_path):
    model = load_text(tmp_path, LAYERS)
    params, f = randomized(model), layer_feeds()
    out = Plan(model.graph).run(f, params)
    x, m, ids = f["x"], f["m"], f["ids"]
    assert_close(out["normed"], np_layer_norm(x, params["normed.gain"], params["normed.bias"]), 1e-10, 1e-12)
    assert_close(out["self_attended"], np_attention(x, x, x, np_causal(3)), 1e-10, 1e-12)
    pad = np.where(ids != 0, 0.0, -1e9)[:, None, None, :]
    assert_close(out["cross"], np_mha(params, "cross", x, m, pad, heads=2), 1e-10, 1e-12)
    # the encoder block: pre-norm residual sub-layers
    p = params
    h = m + np_mha(p, "encoded.attended", np_layer_norm(m, p["encoded.normed.gain"], p["encoded.normed.bias"]),
                   np_layer_norm(m, p["encoded.normed.gain"], p["encoded.normed.bias"]), pad, heads=2)
    n2 = np_layer_norm(h, p["encoded.normed2.gain"], p["encoded.normed2.bias"])
    ff = np.maximum(n2 @ p["encoded.fed.expand.w"] + p["encoded.fed.expand.b"], 0)
    assert_close(out["encoded"], h + ff @ p["encoded.fed.project.w"] + p["encoded.fed.project.b"], 1e-10, 1e-12)


def test_layer_gradients_match_central_differences(tmp_path):
    """Every parameter of every layer, and the float inputs, in float64."""
    model = load_text(tmp_path, LAYERS)
    params, f = randomized(model), layer_feeds()
    assert len(params) == 2 + 8 + 16 + 26 + 1
    wrt = list(params) + ["x", "m"]
    G = Plan(grad(model.graph, wrt=wrt)).run(f, params)
    forward = Plan(model.graph)

    def loss(arrays):
        return forward.run({k: arrays[k] for k in f}, {k: arrays[k] for k in params})["loss"]

    arrays = f | params
    for name in wrt:
        numeric = central_difference(loss, arrays, name, eps=1e-6)
        assert_close(G[f"grad:{name}"], numeric, rtol=1e-5, atol=1e-7, what=f"grad:{name}")
    table = next(k for k in params if k.endswith(".table"))             # the learned positions
    assert np.abs(G[f"grad:{table}"][3:]).max() == 0 < np.abs(G[f"grad:{table}"][:3]).min()   # T = 3 of 5


def test_causal_mask_hides_the_future(tmp_path):
    model = load_text(tmp_path, LAYERS)
    params, f = randomized(model), layer_feeds(t=5)
    plan = Plan(model.graph)
    before = plan.run(f, params)
    changed = dict(f, x=f["x"].copy())
    changed["x"][:, 3:] += 1.0                  # change positions 3 and 4 only
    after = plan.run(changed, params)
    for name in ("self_attended", "decoded"):
        np.testing.assert_allclose(after[name][:, :3], before[name][:, :3], rtol=1e-12, atol=1e-12)
        assert not np.allclose(after[name][:, 3:], before[name][:, 3:])


def test_padding_mask_ignores_padded_keys(tmp_path):
    model = load_text(tmp_path, LAYERS)
    params, f = randomized(model), layer_feeds()
    plan = Plan(model.graph)
    before = plan.run(f, params)
    changed = dict(f, m=f["m"].copy())
    changed["m"][0, -1] += 5.0                  # a padded position of row 0
    after = plan.run(changed, params)
    np.testing.assert_allclose(after["cross"], before["cross"], rtol=1e-12, atol=1e-12)


def test_sinusoidal_positions_are_the_formula(tmp_path):
    model = load_text(tmp_path, """
model pe {
    input x: [N, T, 6]
    output enc = sinusoidal_positions(x)
}""")
    out = model.run(model.init(), {"x": np.zeros((1, 7, 6))})["enc"]
    p, i = np.arange(7)[:, None], np.arange(3)[None, :]
    angle = p / 10000 ** (2 * i / 6)
    np.testing.assert_allclose(out, np.concatenate([np.sin(angle), np.cos(angle)], axis=-1), rtol=1e-12, atol=1e-12)


def test_swap_axes_and_positions_builtins(tmp_path):
    model = load_text(tmp_path, """
model b {
    input x: [N, 2, 3]
    output s = swap_axes(x)
    output f = swap_axes(x, 0, -1)
    output p = positions(x, 0) + arange(1)
}""")
    x = np.arange(24.0).reshape(4, 2, 3)
    out = model.run({}, {"x": x})
    np.testing.assert_array_equal(out["s"], np.swapaxes(x, -1, -2))
    np.testing.assert_array_equal(out["f"], np.swapaxes(x, 0, -1))
    np.testing.assert_array_equal(out["p"], np.arange(4))


def test_a_layer_called_twice_shares_the_weights_of_the_layers_inside_it(tmp_path):
    model = load_text(tmp_path, """
model twice {
    input x: [N, 5, 8]
    block = encoder_block[2, 8, 12]
    output once = block(x, 0)
    output again = block(block(x, 0), causal_mask(x))
}""")
    names = [p.name for p in model.graph.params]
    assert len(names) == len(set(names)) == 16 and all(n.startswith("block.") for n in names)


# ================================================================ the models from --seed 0
def sequence_accuracy(model, params, data) -> float:
    out = model.run(params, {k: v for k, v in data.arrays.items() if k not in model.graph.targets})
    return float(np.mean(np.all(out["copy"] == data.arrays["target_out"], axis=1)))


def held_out(model):
    return split(model.load_data(), model.train_config.holdout, model.train_config.seed)[1]


def test_seq2seq_translates_both_phrases():
    model = nngraph.load(str(MODELS / "seq2seq.nn"), "seq2seq")
    result = model.train(seed=0, progress=False)
    out = model.run(result.params)["translation"]
    # "let's go" -> vamos <EOS>, "to go" -> ir <EOS>; after <EOS> the output stays <EOS>
    np.testing.assert_array_equal(out, [[2, 0, 0, 0], [1, 0, 0, 0]])
    spanish = ["<EOS>", "ir", "vamos"]
    assert [" ".join(spanish[i] for i in row[:2]) for row in out] == ["vamos <EOS>", "ir <EOS>"]


def test_transformer_copies_held_out_sequences():
    model = nngraph.load(str(MODELS / "transformer.nn"))
    result = model.train(seed=0, progress=False)
    assert sequence_accuracy(model, result.params, held_out(model)) >= 0.95


@pytest.mark.parametrize("path,name,low,high", [
    ("seq2seq_attention.nn", None, 0.95, 1.0),
    ("seq2seq.nn", "seq2seq_copy", 0.0, 0.05),
], ids=["with-attention", "without-attention"])
def test_seq2seq_with_and_without_attention_on_copying(path, name, low, high):
    """The same sizes, data and budget (10 epochs of 48 batches): README reports 98.2% and 0%."""
    model = nngraph.load(str(MODELS / path), name)
    result = model.train(seed=0, progress=False)
    assert low <= sequence_accuracy(model, result.params, held_out(model)) <= high


WINDOW = 32


def gpt_vocabulary() -> list[str]:
    with np.load(MODELS / "data" / "chars.npz", allow_pickle=False) as data:
        return [chr(c) for c in data["vocab"]]


def window_inputs(prompt: str, length: int, temperature: float, seed: int, vocab: list[str]) -> dict:
    """The `generate` model's inputs: the prompt's last 32 characters (newlines before a shorter
    one) and one uniform number per character from `seed`; temperature 0 is greedy."""
    ids = [vocab.index(c) for c in prompt][-WINDOW:]
    window = np.array([[vocab.index("\n")] * (WINDOW - len(ids)) + ids], np.int64)
    return {"prompt": window, "uniform": np.random.default_rng(seed).random((length, 1)).astype(np.float32),
            "temperature": np.array(temperature, np.float32), "top_k": np.array(0, np.int64),
            "top_p": np.array(1.0, np.float32)}


def window_generate(params, prompt: str, length: int = 200, temperature: float = 0.0, seed: int = 0) -> str:
    """Text from the `generate` model: a window of the last 32 characters slides along (no cache)."""
    vocab = gpt_vocabulary()
    out = nngraph.load(str(MODELS / "gpt.nn"), "generate").run(params, window_inputs(prompt, length, temperature, seed, vocab))
    return "".join(vocab[i] for i in out["generated"][0])


def test_gpt_learns_the_corpus_and_generates_sentences(tmp_path):
    model = nngraph.load(str(MODELS / "gpt.nn"), "gpt")
    result = model.train(seed=0, progress=False)
    assert result.holdout.loss < 0.35, result.summary()
    greedy = window_generate(result.params, "the cat ", length=60)
    assert greedy == window_generate(result.params, "the cat ", length=60)          # deterministic
    first = greedy.split("\n")[0]
    assert first in ("sits on the sofa", "eats", "sleeps", "runs", "jumps", "drinks"), greedy
    sampled = window_generate(result.params, "alice ", length=200, temperature=0.8, seed=1)
    assert sampled == window_generate(result.params, "alice ", length=200, temperature=0.8, seed=1)
    assert sampled != window_generate(result.params, "alice ", length=200, temperature=0.8, seed=2)
    corpus = set((MODELS / "data" / "corpus.txt").read_text().split("\n"))
    lines = sampled.split("\n")[1:-1]                  # whole sentences only
    assert sum(line in corpus for line in lines) >= 0.7 * len(lines), sampled
    # the generation loop in onnxruntime: the same 200 characters, greedy and sampled
    import onnxruntime as ort
    generator = nngraph.load(str(MODELS / "gpt.nn"), "generate")
    generator.export_onnx(str(tmp_path / "generate.onnx"), result.params)
    sess = ort.InferenceSession(str(tmp_path / "generate.onnx"), providers=["CPUExecutionProvider"])
    for temperature, seed in [(0.0, 0), (0.8, 1)]:
        feeds = window_inputs("alice ", 200, temperature, seed, gpt_vocabulary())
        np.testing.assert_array_equal(sess.run(["generated"], feeds)[0], generator.run(result.params, feeds)["generated"])


@pytest.mark.parametrize("script", ["make_copy", "make_translation", "make_chars"])
def test_data_files_are_what_the_scripts_make(script):
    spec = importlib.util.spec_from_file_location(script, MODELS / "data" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    name = {"make_copy": "copy", "make_translation": "translation", "make_chars": "chars"}[script]
    with np.load(MODELS / "data" / f"{name}.npz") as stored:
        made = module.arrays()
        assert set(stored.files) == set(made)
        for key, value in made.items():
            np.testing.assert_array_equal(stored[key], value)


def test_trained_seq2seq_translates_the_same_in_onnxruntime(tmp_path):
    """The greedy decoding loop exports as an ONNX Scan; onnxruntime translates as the runtime does."""
    import onnxruntime as ort
    model = nngraph.load(str(MODELS / "seq2seq.nn"), "seq2seq")
    params = model.train(seed=0, progress=False).params
    model.export_onnx(str(tmp_path / "s2s.onnx"), params)
    sess = ort.InferenceSession(str(tmp_path / "s2s.onnx"), providers=["CPUExecutionProvider"])
    feeds = {k: v for k, v in model.load_data().arrays.items() if k in {i.name for i in sess.get_inputs()}}
    translation, = sess.run(["translation"], feeds)
    np.testing.assert_array_equal(translation, [[2, 0, 0, 0], [1, 0, 0, 0]])
