"""The fused layer norm and attention ops against their formulas written out in .nn, on the NumPy
backend: bench/models/gpt128.nn as it is (the standard library's `layer_norm` and `attention`
are single ops) and a copy whose blocks use the pre-fusion formulas. Same weights, same batch,
the first losses must agree; CPU time per step (time.process_time: robust on a loaded machine),
median of rounds taken in turns. Prints a markdown table.

    python bench/fused_layers.py [--rounds 7]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import nngraph  # noqa: E402
import nngraph.runtime  # noqa: E402
from nngraph.training.config import Optimizer  # noqa: E402
from nngraph.training.loop import step_loop  # noqa: E402
from nngraph.training.step import initial_state, train_step_graph  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GPT = os.path.join(HERE, "models", "gpt128.nn")

# the standard library's layers as they were written before the fused ops
UNFUSED_LAYERS = """
layer formula_layer_norm[eps: float = 1e-5](x: [..., d]) -> [..., d] {
    param gain: [d] = 1
    param bias: [d] = 0
    centred = x - mean(x, axis = -1, keepdims = true)
    variance = mean(centred * centred, axis = -1, keepdims = true)
    return centred / sqrt(variance + eps) * gain + bias
}
layer formula_attention(q: [..., tq, dk], k: [..., tk, dk], v: [..., tk, dv], mask) {
    return softmax((q @ swap_axes(k)) * dk ** -0.5 + mask, axis = -1) @ v
}
layer formula_mha[heads: int, dim: int](query: [B, tq, d], memory: [B, tk, dm], mask) -> [B, tq, d] {
    q = dense[dim](query)
    k = dense[dim](memory)
    v = dense[dim](memory)
    mixed = formula_attention(split_heads[heads](q), split_heads[heads](k), split_heads[heads](v), mask)
    out = dense[d](merge_heads(mixed))
    return out
}
layer formula_block[heads: int, dim: int, hidden: int](x: [B, T, d], mask) -> [B, T, d] {
    normed = formula_layer_norm(x)
    attended = formula_mha[heads, dim](normed, normed, mask)
    x = x + attended
    normed2 = formula_layer_norm(x)
    fed = feed_forward[hidden](normed2)
    return x + fed
}
"""


def unfused_source() -> str:
    with open(GPT, encoding="utf-8") as f:
        source = f.read()
    return UNFUSED_LAYERS + source.replace("encoder_block[", "formula_block[").replace(
        "final = layer_norm(", "final = formula_layer_norm(")


def candidates(path: str) -> tuple[dict, float]:
    """(name -> a callable running one training step or one inference, the first loss)."""
    model = nngraph.load(path)
    rng = np.random.default_rng(0)
    batch = {"text": rng.integers(0, 64, (16, 64)), "next": rng.integers(0, 64, (16, 64))}
    optimizer = Optimizer("sgd", {"lr": 0.01})
    numpy = nngraph.runtime.get("numpy")
    loop = step_loop(numpy.compile(train_step_graph(model.graph, optimizer, 2)), model.init(0),
                     initial_state(model.graph, optimizer))
    infer, params = numpy.compile(model.compile(opt_level=1)), model.init(0)
    first = float(loop.step(batch)[model.graph.loss])
    return {"train": lambda: loop.step(batch), "infer": lambda: infer({"text": batch["text"]}, params)}, first


def cpu_ms(run, calls: int) -> float:
    run()
    start = time.process_time()
    for _ in range(calls):
        run()
    return (time.process_time() - start) / calls * 1e3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "gpt128_unfused.nn")
        with open(path, "w", encoding="utf-8") as f:
            f.write(unfused_source())
        fused, fused_loss = candidates(GPT)
        unfused, unfused_loss = candidates(path)
    np.testing.assert_allclose(fused_loss, unfused_loss, rtol=1e-5)
    times = {(kind, mode): [] for kind in ("fused", "formulas") for mode in ("train", "infer")}
    for _ in range(args.rounds):
        for (kind, mode), samples in times.items():
            samples.append(cpu_ms((fused if kind == "fused" else unfused)[mode], 5 if mode == "train" else 10))
    print(f"GPT d128, 2 blocks, 16×64 tokens, NumPy, 1 thread; CPU ms per call, median of {args.rounds} rounds\n")
    print("| | fused ops ms | formulas ms | fused / formulas |\n|---|---:|---:|---:|")
    for mode in ("train", "infer"):
        a, b = statistics.median(times[("fused", mode)]), statistics.median(times[("formulas", mode)])
        print(f"| {'training step' if mode == 'train' else 'inference'} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
