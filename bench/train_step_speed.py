"""Time one training step of every model in models/ at -O0, -O1 and -O2 in the NumPy runtime,
as ratios against -O0 measured in the same run (a README table).

    python bench/train_step_speed.py [--batch 256] [--budget 0.3]
"""
import argparse

import numpy as np
from common import best_time, every_model, random_inputs

from nngraph.passes import count_nodes
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.step import initial_state, train_step_graph


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per model and level")
    args = parser.parse_args()
    print(f"| model (batch {args.batch}) | -O0 µs/step | -O1 / -O0 | -O2 / -O0 | nodes -O0 → -O2 |")
    print("|---|---:|---:|---:|---:|")
    for path, name, model in every_model(with_loss=True):
        optimizer = model.train_config.optimizer
        feeds = random_inputs(model.graph, args.batch, np.random.default_rng(0))
        feeds |= initial_state(model.graph, optimizer)
        params = model.init(0)
        plans = [Plan(train_step_graph(model.graph, optimizer, level)) for level in (0, 1, 2)]
        times = [best_time(lambda: p.run(feeds, params), args.budget) for p in plans]
        print(f"| {path} `{name}` | {times[0] * 1e6:.0f} | {times[1] / times[0]:.2f} | "
              f"{times[2] / times[0]:.2f} | {count_nodes(plans[0].graph)} → {count_nodes(plans[2].graph)} |")


if __name__ == "__main__":
    main()
