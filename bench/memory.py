"""Peak memory of one training step (the -O2 step that training runs) of every model in models/
that has a loss, measured with tracemalloc (NumPy reports its array buffers to it), against the
same Plan with freeing disabled (`Plan(graph, free=False)`: every intermediate kept until the
run ends) in the same run. Prints a README table.

The peak counts everything the step holds at its worst moment: the parameters, the optimizer
state and the batch it is given, the intermediates alive then, and the new parameters and state
it returns. The floor column is the parameters plus the batch alone.

    python bench/memory.py [--batch 64]
"""
import argparse
import gc
import tracemalloc

import numpy as np
from common import batch_of, every_model

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
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
