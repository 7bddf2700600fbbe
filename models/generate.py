"""Generate text with the character transformer of models/gpt.nn, one character at a time.

    nngraph train models/gpt.nn --model-name gpt -o gpt.npz
    python models/generate.py --params gpt.npz --prompt "the cat "                  # greedy
    python models/generate.py --params gpt.npz --prompt "alice " --temperature 0.8 --seed 1

The whole loop runs inside the `generate` model's graph (a scan); this script only turns the
prompt into character ids (the last 32, padded on the left with newlines), draws the Gumbel noise
that makes sampling from softmax(scores / temperature) an argmax (zeros when greedy), and turns
the ids back into text. The same three inputs work for `nngraph run models/gpt.nn --model-name
generate --input prompt=p.npy --input noise=n.npy --input temperature=t.npy`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WINDOW = 32


def vocabulary() -> list[str]:
    with np.load(HERE / "data" / "chars.npz", allow_pickle=False) as data:
        return [chr(c) for c in data["vocab"]]


def inputs(prompt: str, length: int, temperature: float | None, seed: int, vocab: list[str]) -> dict:
    """The generate model's inputs for one prompt: temperature None means greedy."""
    unknown = sorted({c for c in prompt if c not in vocab})
    if unknown:
        raise ValueError(f"the prompt has characters the corpus never uses: {unknown!r}; "
                         f"use {''.join(vocab).strip()!r}, space and newline")
    ids = [vocab.index(c) for c in prompt][-WINDOW:]
    window = np.array([[vocab.index("\n")] * (WINDOW - len(ids)) + ids], np.int64)
    if temperature is None:
        noise = np.zeros((length, 1, len(vocab)), np.float32)
        temperature = 1.0
    else:
        u = np.random.default_rng(seed).uniform(1e-9, 1.0, size=(length, 1, len(vocab)))
        noise = (-np.log(-np.log(u))).astype(np.float32)
    return {"prompt": window, "noise": noise, "temperature": np.array(temperature, np.float32)}


def generate(params: dict, prompt: str, length: int = 200, temperature: float | None = None, seed: int = 0) -> str:
    import nngraph
    model = nngraph.load(str(HERE / "gpt.nn"), "generate")
    vocab = vocabulary()
    out = model.run(params, inputs(prompt, length, temperature, seed, vocab))
    return "".join(vocab[i] for i in out["generated"][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", required=True, help="weights from `nngraph train models/gpt.nn --model-name gpt`")
    parser.add_argument("--prompt", default="the ")
    parser.add_argument("--length", type=int, default=200, help="characters to generate")
    parser.add_argument("--temperature", type=float, help="sample at this temperature (default: greedy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling noise")
    args = parser.parse_args(argv)
    import nngraph
    try:
        text = generate(nngraph.load_npz(args.params), args.prompt, args.length, args.temperature, args.seed)
    except (ValueError, nngraph.NNError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(args.prompt + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
