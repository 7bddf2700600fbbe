"""Peak memory of one training step (the -O2 step that training runs) of every model in models/
that has a loss, measured with tracemalloc (NumPy reports its array buffers to it), against the
same Plan with freeing disabled (`Plan(graph, free=False)`: every intermediate kept until the
run ends) in the same run. Prints a README table.

The peak counts everything the step holds at its worst moment: the parameters, the optimizer
state and the batch it is given, the intermediates alive then, and the new parameters and state
it returns. The floor column is the parameters plus the batch alone.

`--vs-pytorch` measures instead the transient memory of one SGD step of the benchmark workloads
(bench/backends.py: MLP, GPT d128 at 16x64 tokens, word2vec) against PyTorch eager's: what the
step allocates above what it was given, at its worst moment. nngraph's step runs as training
runs it (the loop owns the parameters, runtime/numpy/loop.py), counted by tracemalloc; PyTorch's
(zero_grad(set_to_none), forward, backward, torch.optim.SGD.step) by its profiler's memory events,
each op's own allocations net of its frees, in order.

    python bench/memory.py [--batch 64]
    python bench/memory.py --vs-pytorch
"""
import argparse
import gc
import tracemalloc

import numpy as np
from common import batch_of, every_model

import nngraph
import nngraph.runtime
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.step import initial_state, train_step_graph

MB = 1e6


def peak_bytes(plan: Plan, feeds: dict, params: dict) -> int:
    """Bytes newly allocated and alive at the worst moment of one run (tracemalloc must be on)."""
    plan.run(feeds, params)                          # warm up (first-call allocations)
    gc.collect()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = plan.run(feeds, params)
    peak = tracemalloc.get_traced_memory()[1] - base
    del out
    return peak


def nbytes(arrays: dict) -> int:
    return sum(np.asarray(a).nbytes for a in arrays.values())


def loop_transient(loop, batch: dict) -> int:
    """Bytes a training loop's step allocates above what it holds before (tracemalloc must be off)."""
    loop.step(batch)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    out = loop.step(batch)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def torch_transient(step) -> int:
    """The peak of PyTorch's allocations net of frees during one call of `step`, op by op."""
    from torch.profiler import ProfilerActivity, profile
    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    live = peak = 0
    for event in sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def vs_pytorch() -> None:
    import backends
    from twins import torch

    from nngraph.training.config import Optimizer
    torch.set_num_threads(1)
    print("| workload | nngraph step MB | PyTorch step MB | nngraph / PyTorch |\n|---|---:|---:|---:|")
    for name in ("mlp", "gpt", "word2vec"):
        w = backends.WORKLOADS[name]
        model = nngraph.load(f"bench/models/{w.file}")
        optimizer = Optimizer("sgd", {"lr": 0.01})
        params, batch = model.init(0), backends.synthetic_batch(model.graph, w)
        plan = nngraph.runtime.get("numpy").compile(train_step_graph(model.graph, optimizer, 2))
        ours = loop_transient(plan.loop(dict(params), initial_state(model.graph, optimizer)), batch)
        theirs = torch_transient(backends.TorchStep(name, params, batch, 0.01))
        print(f"| {w.label} | {ours / MB:.2f} | {theirs / MB:.2f} | {ours / theirs:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vs-pytorch", action="store_true", help="the benchmark workloads' steps against PyTorch's")
    args = parser.parse_args()
    if args.vs_pytorch:
        return vs_pytorch()
    print(f"| model (batch {args.batch}) | params + batch MB (floor) | optimizer state MB | step peak, freeing MB "
          "| step peak, keeping all MB | freeing / keeping | freeing / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    tracemalloc.start()
    for path, name, model in every_model(with_loss=True):
        optimizer = model.train_config.optimizer
        batch, params = batch_of(model, args.batch), model.init(0)
        state = initial_state(model.graph, optimizer)
        feeds = batch | state
        graph = train_step_graph(model.graph, optimizer, 2)
        held = nbytes(params) + nbytes(feeds)        # alive before, during and after the step
        freeing = held + peak_bytes(Plan(graph), feeds, params)
        keeping = held + peak_bytes(Plan(graph, free=False), feeds, params)
        floor = nbytes(params) + nbytes(batch)
        print(f"| {path} `{name}` | {floor / MB:.3g} | {nbytes(state) / MB:.3g} | {freeing / MB:.3g} | "
              f"{keeping / MB:.3g} | {freeing / keeping:.2f} | {freeing / floor:.1f} |", flush=True)
    tracemalloc.stop()


if __name__ == "__main__":
    main()
