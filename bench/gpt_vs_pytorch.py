"""The character GPT of models/gpt_docs.nn trained on the standard library's docstrings by
nngraph and by its PyTorch twin (bench/gpt_torch.py) with the same budget: the same initial
weights (nngraph's seeded init), the same held-out 5% of the windows, the same batches in the same
order (the training loop's shuffling, seed 0), Adam (lr 0.003, betas 0.9/0.999, eps 1e-8), the
train block's epochs. Prints the held-out loss in bits per character, the training time on one
thread, and a greedy and a sampled continuation of the same prompt from each.

    python models/data/make_corpus.py && python models/data/make_docs_chars.py
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/gpt_vs_pytorch.py \
        [--save gpt_docs.npz]                  # nngraph's trained weights, for `nngraph generate`
    (`nngraph train models/gpt_docs.nn` trains the same, but its end-of-training evaluation of the
    whole training set at once needs about 15 GB at 288 positions.)
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import nngraph  # noqa: E402
from nngraph.files import load_weights, save_weights  # noqa: E402
from nngraph.generation import Generator, Sampling  # noqa: E402
from nngraph.training.loop import split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GPT = str(ROOT / "models" / "gpt_docs.nn")
PROMPT = "Return the "


def train_nngraph(model, train, config) -> dict:
    """The training loop of nngraph.training.loop.fit (the same batches), without its whole-set
    evaluations, which hold every window's attention weights at once (gigabytes at 288 positions)."""
    step = model.train_step()
    params, state = model.init(config.seed), step.initial_state()
    rng = np.random.default_rng(config.seed)
    for _ in range(config.epochs):
        order = rng.permutation(train.size)
        for start in range(0, train.size, config.batch):
            rows = order[start:start + config.batch]
            params, state, _ = step(params, state, {k: v[rows] for k, v in train.arrays.items()})
    return params


def nngraph_loss(model, params, data, batch=32) -> float:
    """Mean loss per character over `data`, a batch of windows at a time."""
    total = 0.0
    for start in range(0, data.size, batch):
        rows = np.arange(start, min(start + batch, data.size))
        total += model.evaluate(params, data.take(rows)).loss * len(rows)
    return total / data.size


def train_torch(model, train, config):
    import torch
    from torch.nn import functional as F
    opt = torch.optim.Adam(model.parameters(), lr=config.optimizer.get("lr"),
                           betas=(0.9, 0.999), eps=1e-8)
    rng = np.random.default_rng(config.seed)
    for _ in range(config.epochs):
        order = rng.permutation(train.size)
        for start in range(0, train.size, config.batch):
            rows = order[start:start + config.batch]
            text, nxt = (torch.from_numpy(train.arrays[k][rows]) for k in ("text", "next"))
            loss = F.cross_entropy(model(text).flatten(0, 1), nxt.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()


def torch_loss(model, data, batch=64) -> float:
    import torch
    from torch.nn import functional as F
    total = 0.0
    with torch.no_grad():
        for start in range(0, data.size, batch):
            text, nxt = (torch.from_numpy(data.arrays[k][start:start + batch]) for k in ("text", "next"))
            total += float(F.cross_entropy(model(text).flatten(0, 1), nxt.flatten(), reduction="sum"))
    return total / (data.size * data.arrays["next"].shape[1])


def torch_sample(model, vocab, steps, temperature, seed) -> str:
    """The twin's text, sampled by the same inverse-CDF rule (the NumPy kernel) and random numbers."""
    import torch

    from nngraph.runtime.numpy.kernels.sampling import sample_categorical
    ids = [vocab.index(c) for c in PROMPT]
    uniform = np.random.default_rng(seed).random((steps, 1)).astype(np.float32)
    with torch.no_grad():
        for u in uniform:
            last = model(torch.tensor([ids]))[:, -1].numpy()
            ids.append(int(sample_categorical(last, u, np.float32(temperature), np.int64(0), np.float32(1))[0]))
    return "".join(vocab[i] for i in ids[len(PROMPT):])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nngraph-params", help="nngraph's trained weights (default: train them here)")
    parser.add_argument("--save", help="write nngraph's trained weights here (.npz)")
    parser.add_argument("--steps", type=int, default=200, help="characters of each sample")
    args = parser.parse_args(argv)
    import torch
    from gpt_torch import CharGpt
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nngraph.load(GPT, "gpt")
    config = model.train_config
    data = model.load_data()
    train, held = split(data, config.holdout, config.seed)
    vocab = [chr(c) for c in np.load(ROOT / "models" / "data" / "docs_chars.npz")["vocab"]]
    print(f"{data.size} windows of 288 characters: {train.size} trained on, {held.size} held out; "
          f"{config.epochs} epoch(s) of batches of {config.batch}")

    if args.nngraph_params:
        params, seconds = load_weights(args.nngraph_params)[0], None
    else:
        start = time.process_time()
        params = train_nngraph(model, train, config)
        seconds = time.process_time() - start
    if args.save:
        save_weights(args.save, params, {"model": "gpt", "vocab": "".join(vocab)})   # generate needs no data file
    nn_loss = nngraph_loss(model, params, held)

    twin = CharGpt(96, 64, 4, 256, 288)
    twin.load_nngraph(model.init(config.seed))
    start = time.process_time()
    train_torch(twin, train, config)
    torch_seconds = time.process_time() - start
    torch_held = torch_loss(twin, held)

    print("| trained by | held-out loss (bits/char) | training CPU time |")
    print("|---|---:|---:|")
    spent = "(trained separately)" if seconds is None else f"{seconds:.0f} s"
    print(f"| nngraph (NumPy) | {nn_loss / math.log(2):.3f} | {spent} |")
    print(f"| PyTorch eager | {torch_held / math.log(2):.3f} | {torch_seconds:.0f} s |")
    generator = Generator(GPT, params, vocab)
    for temperature, seed in [(0.0, 0), (0.7, 1)]:
        list(generator.generate([PROMPT], args.steps, Sampling(temperature=temperature, seed=seed)))
        print(f"\nnngraph, temperature {temperature}:\n{PROMPT}{generator.rows[0].text}")
        print(f"\nPyTorch, temperature {temperature}:\n{PROMPT}{torch_sample(twin, vocab, args.steps, temperature, seed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
