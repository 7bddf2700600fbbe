"""Time one training step of every model in models/ at -O0, -O1 and -O2 in the NumPy runtime,
as ratios against -O0 measured in the same run (a README table).

    python bench/train_step_speed.py [--batch 256] [--budget 0.3]
"""
import argparse
import glob
import time

import numpy as np

import nngraph
from nngraph.dsl.loader import load_program
from nngraph.passes import count_nodes
from nngraph.runtime.executor import Plan
from nngraph.training import initial_state, train_step_graph


def feeds_for(model, batch, rng):
    feeds = {}
    for v in model.graph.inputs:
        shape = tuple(batch if isinstance(d, str) else d for d in v.shape)
        feeds[v.name] = rng.integers(0, 3, shape) if v.dtype.startswith("int") else rng.normal(size=shape)
    return feeds


def seconds_per_step(plan, feeds, params, budget):
    start = time.perf_counter()
    plan.run(feeds, params)                       # warm up, and size the blocks to the time budget
    repeat = max(1, int(budget / 3 / max(time.perf_counter() - start, 1e-6)))
    best = float("inf")
    for _ in range(3):                            # best of three blocks: less noise from the machine
        start = time.perf_counter()
        for _ in range(repeat):
            plan.run(feeds, params)
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per model and level")
    args = parser.parse_args()
    print(f"| model (batch {args.batch}) | -O0 µs/step | -O1 / -O0 | -O2 / -O0 | nodes -O0 → -O2 |")
    print("|---|---:|---:|---:|---:|")
    for path in sorted(glob.glob("models/*.nn")):
        for m in load_program(path).module.models:
            model = nngraph.load(path, m.name)
            if model.graph.loss is None:          # a text generator: nothing to train
                continue
            optimizer = model.train_config.optimizer
            feeds = feeds_for(model, args.batch, np.random.default_rng(0))
            feeds |= initial_state(model.graph, optimizer)
            params = model.init(0)
            plans = [Plan(train_step_graph(model.graph, optimizer, level)) for level in (0, 1, 2)]
            times = [seconds_per_step(p, feeds, params, args.budget) for p in plans]
            print(f"| {path} `{m.name}` | {times[0] * 1e6:.0f} | {times[1] / times[0]:.2f} | "
                  f"{times[2] / times[0]:.2f} | {count_nodes(plans[0].graph)} → {count_nodes(plans[2].graph)} |")


if __name__ == "__main__":
    main()
