"""`nngraph generate`: streamed text from a prompt, stop strings, a batch of prompts, the same text
from the same seed on every backend, and diagnostics (not tracebacks) for bad input."""
from __future__ import annotations

import numpy as np
import pytest

import nngraph
from nngraph.cli import main
from nngraph.files import save_weights
from nngraph.generation import Generator, Sampling
from tests.helpers import ROOT

GPT = str(ROOT / "models" / "gpt.nn")
VOCAB = [chr(c) for c in np.load(ROOT / "models" / "data" / "chars.npz")["vocab"]]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    rng = np.random.default_rng(1)
    params = {k: (v + rng.normal(scale=0.3, size=v.shape)).astype(v.dtype)
              for k, v in nngraph.load(GPT, "gpt").init(0).items()}
    path = tmp_path_factory.mktemp("w") / "gpt.npz"
    save_weights(str(path), params, {"model": "gpt"})
    return str(path), params


def generate(capsys, weights, *args) -> tuple[int, str, str]:
    code = main(["generate", GPT, "--params", weights[0], *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_prompt_prints_the_prompt_and_its_continuation(capsys, weights):
    code, out, _ = generate(capsys, weights, "--prompt", "the cat ", "--max-new-tokens", "40")
    assert code == 0
    expected = "".join(p for _, p in Generator(GPT, weights[1], VOCAB).generate(["the cat "], 40, Sampling()))
    assert len(expected) == 40 and out == "the cat " + expected + "\n"


def test_text_streams_before_the_generation_ends(weights):
    generator = Generator(GPT, weights[1], VOCAB)
    calls = []
    step = generator.run_step
    generator.run_step = lambda *a: calls.append(1) or step(*a)
    first = next(iter(generator.generate(["the cat "], 100, Sampling(temperature=1.0))))
    assert first[0] == 0 and len(first[1]) == 1 and len(calls) == 1


def test_a_stop_string_ends_the_text_before_it(capsys, weights):
    _, whole, _ = generate(capsys, weights, "--prompt", "alice ", "--max-new-tokens", "60", "--temperature", "1", "--seed", "4")
    stop = whole[len("alice ") + 10:len("alice ") + 13]             # three characters from the middle
    first = whole.index(stop, len("alice "))
    code, out, _ = generate(capsys, weights, "--prompt", "alice ", "--max-new-tokens", "60", "--temperature", "1",
                            "--seed", "4", "--stop", stop, "--stop", "qqq")
    assert code == 0 and out == whole[:first] + "\n"


def test_a_batch_of_prompts_gives_each_its_own_text(capsys, weights):
    code, out, _ = generate(capsys, weights, "--prompt", "the cat ", "--prompt", "bob flies to ", "--max-new-tokens", "20",
                            "--temperature", "0.9", "--top-k", "5", "--top-p", "0.9", "--seed", "2")
    assert code == 0
    blocks = out.split("--- prompt ")[1:]
    assert [b.split("\n")[0] for b in blocks] == ["1", "2"]
    texts = [b.split("\n", 1)[1] for b in blocks]
    assert texts[0].startswith("the cat ") and texts[1].startswith("bob flies to ")
    generator = Generator(GPT, weights[1], VOCAB)
    list(generator.generate(["the cat ", "bob flies to "], 20, Sampling(0.9, 5, 0.9, 2)))
    assert texts == [r.prompt + r.text + "\n" for r in generator.rows]


@pytest.mark.parametrize("backend", ["jax", "onnxruntime"])
def test_every_backend_generates_the_same_text(capsys, weights, backend):
    args = ["--prompt", "the dog ", "--max-new-tokens", "30", "--temperature", "0.8", "--seed", "5"]
    _, numpy_text, _ = generate(capsys, weights, *args)
    code, other, _ = generate(capsys, weights, *args, "--backend", backend)
    assert code == 0 and other == numpy_text


def test_generation_goes_on_past_the_context_length(capsys, weights):
    """32 positions: after them the last 16 characters are read again (a context shift)."""
    code, out, _ = generate(capsys, weights, "--prompt", "the cat ", "--max-new-tokens", "100")
    assert code == 0 and len(out) == len("the cat ") + 100 + 1


def test_unknown_characters_are_a_diagnostic(capsys, weights):
    code, out, err = generate(capsys, weights, "--prompt", "the Cat")
    assert code == 1 and out == ""
    assert "has characters the model never saw: ['C']" in err and "Traceback" not in err


def test_a_file_without_decoding_models_is_a_diagnostic(capsys, weights):
    code = main(["generate", str(ROOT / "models" / "iris.nn"), "--params", weights[0], "--prompt", "x"])
    err = capsys.readouterr().err
    assert code == 1 and "has no `prefill` model" in err


@pytest.mark.parametrize("option,value", [("--top-p", "0"), ("--top-p", "1.5"), ("--temperature", "-1"), ("--top-k", "-2"),
                                          ("--max-new-tokens", "0")])
def test_out_of_range_settings_are_usage_errors(capsys, weights, option, value):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", GPT, "--params", weights[0], "--prompt", "the ", option, value])
    assert exit_.value.code == 2 and option in capsys.readouterr().err


def test_the_characters_can_come_with_the_weights(capsys, weights, tmp_path):
    """A weights file whose metadata has `vocab` (a string) needs no training data to read it from."""
    path = tmp_path / "upper.npz"
    save_weights(str(path), weights[1], {"model": "gpt", "vocab": "".join(VOCAB).upper()})
    _, lower, _ = generate(capsys, weights, "--prompt", "the cat ", "--max-new-tokens", "30")
    code = main(["generate", GPT, "--params", str(path), "--prompt", "THE CAT ", "--max-new-tokens", "30"])
    assert code == 0 and capsys.readouterr().out == lower.upper()
