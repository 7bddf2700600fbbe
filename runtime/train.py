"""The training loop: epochs of shuffled mini-batches, each one run of the train-step graph."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from nngraph.ir import Graph
from nngraph.passes import optimize, optimize_before_grad
from nngraph.runtime.data import DataSource, Dataset
from nngraph.runtime.executor import Plan
from nngraph.training import Optimizer, initial_state, new_name, train_step_graph


@dataclass
class TrainConfig:
    data: DataSource | None = None
    optimizer: Optimizer = field(default_factory=Optimizer)
    epochs: int = 100
    batch: int | None = None        # None: the whole training set in one batch (plain gradient descent)
    seed: int = 0
    holdout: float = 0.0            # fraction of rows kept out of training to measure generalization


@dataclass
class Evaluation:
    loss: float
    accuracy: float | None = None


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]
    history: list[float]                       # mean training loss of each epoch
    train: Evaluation
    holdout: Evaluation | None = None
    rows: tuple[int, int] = (0, 0)             # training rows, held-out rows

    def summary(self) -> str:
        lines = [f"trained on {self.rows[0]} rows for {len(self.history)} epochs",
                 f"  final training loss {self.train.loss:.6g}" + _acc(self.train)]
        if self.holdout is not None:
            lines.append(f"  held-out loss {self.holdout.loss:.6g} on {self.rows[1]} rows" + _acc(self.holdout))
        return "\n".join(lines)


def _acc(ev: Evaluation) -> str:
    return f", accuracy {ev.accuracy:.2%}" if ev.accuracy is not None else ""


def split(data: Dataset, holdout: float, seed: int) -> tuple[Dataset, Dataset | None]:
    if not holdout:
        return data, None
    order = np.random.default_rng(seed).permutation(data.size)
    n_hold = max(1, round(holdout * data.size))
    return data.take(np.sort(order[n_hold:])), data.take(np.sort(order[:n_hold]))


def accuracy_pair(graph: Graph) -> tuple[str, str] | None:
    """A classifier's (predicted-label output, true-label target): both integer, same shape."""
    targets = [v for v in graph.inputs if v.name in graph.targets and v.dtype.startswith("int")]
    for name, out in graph.outputs.items():
        for t in targets:
            if out.dtype.startswith("int") and out.shape == t.shape:
                return name, t.name
    return None


def evaluate(graph: Graph, params, data: Dataset, plan: Plan | None = None) -> Evaluation:
    plan = plan or Plan(graph)
    out = plan.run(data.arrays, params)
    pair = accuracy_pair(graph)
    acc = float(np.mean(out[pair[0]] == data.arrays[pair[1]])) if pair else None
    return Evaluation(float(out[graph.loss]), acc)


def fit(graph: Graph, params: dict[str, np.ndarray], data: Dataset, config: TrainConfig,
        progress: bool | None = None) -> TrainResult:
    train_set, held_out = split(data, config.holdout, config.seed)
    step = Plan(train_step_graph(graph, config.optimizer, opt_level=2))
    params = dict(params)
    state = initial_state(graph, config.optimizer)
    rng = np.random.default_rng(config.seed)
    batch = config.batch or train_set.size
    history = []
    show = sys.stderr.isatty() if progress is None else progress
    epochs = tqdm(range(config.epochs), desc="training", unit="epoch", disable=not show, leave=False)
    for _ in epochs:
        order = rng.permutation(train_set.size)
        total = 0.0
        for start in range(0, train_set.size, batch):
            rows = order[start:start + batch]
            feeds = {k: v[rows] for k, v in train_set.arrays.items()} | state
            out = step.run(feeds, params)
            params = {p: out[new_name(p)] for p in params}
            state = {s: out[new_name(s)] for s in state}
            total += float(out[graph.loss]) * len(rows)
        history.append(total / train_set.size)
        epochs.set_postfix(loss=f"{history[-1]:.4g}", refresh=False)
    plan = Plan(optimize(optimize_before_grad(graph.clone()[0], 2), 2))
    return TrainResult(params, history, evaluate(graph, params, train_set, plan),
                       evaluate(graph, params, held_out, plan) if held_out else None,
                       (train_set.size, held_out.size if held_out else 0))
