"""Tokens per second of greedy generation, 256 new characters after a 32-character prompt, at
batch 1 and 8, with models/gpt_docs.nn (width 64, 2 blocks, 288 positions, 96 characters):

- nngraph, cached, one graph: the `generate_cached` model (prefill + a scan carrying the caches);
- nngraph, cached, streamed: `prefill` once, then `decode_step` once per token from Python (what
  `nngraph generate` does);
- nngraph, uncached: `next_scores` over the whole context so far, once per token;
- PyTorch eager (bench/gpt_torch.py), with its own preallocated key/value cache and without;
- onnxruntime running the exported `generate_cached` (the whole loop in one call).

Every path must produce the same tokens as nngraph's cached graph (checked; PyTorch's count of
differing tokens is printed, float32 sums in another order can flip a near-tie). One thread
everywhere. The weights: --params (from `nngraph train models/gpt_docs.nn`), else the seeded
initial ones moved at random (speed does not depend on them).

Each path runs --repeats times, the paths in turns, and the table shows the median time.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/generate.py [--params P] [--repeats 5]
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import nngraph  # noqa: E402
from nngraph.files import load_weights  # noqa: E402
from nngraph.generation import Generator, Sampling  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GPT = str(ROOT / "models" / "gpt_docs.nn")
PROMPT, NEW = 32, 256


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def nngraph_paths(params, prompt, vocab):
    cached = nngraph.load(GPT, "generate_cached").inference("numpy")
    b = prompt.shape[0]
    greedy = {"uniform": np.zeros((NEW, b), np.float32), "temperature": np.array(0, np.float32),
              "top_k": np.array(0, np.int64), "top_p": np.array(1, np.float32)}
    yield "nngraph cached, one graph", lambda: cached(params, {"prompt": prompt} | greedy)["generated"]
    generator = Generator(GPT, params, vocab)
    yield "nngraph cached, streamed", lambda: np.stack(
        [c for c, _ in generator.tokens([list(p) for p in prompt], NEW, Sampling())], axis=1)
    scores = nngraph.load(GPT, "next_scores").inference("numpy")

    def uncached():
        seq = prompt
        for _ in range(NEW):
            char = scores(params, {"text": seq})["scores"].argmax(-1)
            seq = np.concatenate([seq, char[:, None]], axis=1)
        return seq[:, PROMPT:]
    yield "nngraph uncached", uncached


def onnxruntime_path(params, prompt, folder):
    import onnxruntime as ort
    path = os.path.join(folder, "generate_cached.onnx")
    nngraph.load(GPT, "generate_cached").export_onnx(path, params)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    b = prompt.shape[0]
    feeds = {"prompt": prompt, "uniform": np.zeros((NEW, b), np.float32), "temperature": np.array(0, np.float32),
             "top_k": np.array(0, np.int64), "top_p": np.array(1, np.float32)}
    return lambda: session.run(["generated"], feeds)[0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", help="weights of models/gpt_docs.nn (default: seeded, randomized)")
    parser.add_argument("--batches", default="1,8", help="batch sizes, comma-separated (default 1,8)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of every path, taken in turns; the median counts")
    args = parser.parse_args(argv)
    import torch
    from gpt_torch import CharGpt, generate
    torch.set_num_threads(1)
    model = nngraph.load(GPT, "gpt")
    if args.params:
        params, _ = load_weights(args.params)
    else:
        rng = np.random.default_rng(1)
        params = {k: (v + rng.normal(scale=0.1, size=v.shape)).astype(v.dtype) for k, v in model.init(0).items()}
    with np.load(ROOT / "models" / "data" / "docs_chars.npz") as data:
        vocab, text = [chr(c) for c in data["vocab"]], data["text"]
    twin = CharGpt(96, 64, 4, 256, 288)
    twin.load_nngraph(params)
    print(f"{NEW} new tokens after a {PROMPT}-token prompt, greedy, one thread; tokens/s = batch * {NEW} / seconds; "
          f"median of {args.repeats} runs in turns; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| path | batch | seconds | tokens/s | same tokens |")
    print("|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as folder:
        for b in [int(x) for x in args.batches.split(",")]:
            prompt = np.ascontiguousarray(text[:b, :PROMPT])
            reference = None
            rows = list(nngraph_paths(params, prompt, vocab))
            rows += [("PyTorch eager, cached", lambda: generate(twin, prompt, NEW, cached=True)),
                     ("PyTorch eager, uncached", lambda: generate(twin, prompt, NEW, cached=False)),
                     ("onnxruntime, exported generate_cached", onnxruntime_path(params, prompt, folder))]
            for name, fn in rows:
                fn() if "uncached" not in name else None                    # warm-up (compilation, sessions)
            seconds = {name: [] for name, _ in rows}
            outputs = {}
            for r in range(args.repeats):           # in turns, so a change in the machine's load reaches all
                for name, fn in rows[r % len(rows):] + rows[:r % len(rows)]:
                    outputs[name], took = timed(fn)
                    seconds[name].append(took)
            for name, _ in rows:
                tokens, took = outputs[name], statistics.median(seconds[name])
                reference = tokens if reference is None else reference
                differ = int((tokens != reference).sum())
                same = "yes" if differ == 0 else f"{differ} of {tokens.size} differ"
                if differ and not name.startswith("PyTorch"):
                    print(f"error: {name} gives other tokens than nngraph's cached graph", file=sys.stderr)
                    return 1
                print(f"| {name} | {b} | {took:.2f} | {b * NEW / took:,.0f} | {same} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
