"""The training loop: epochs of shuffled mini-batches, each one run of the train-step graph."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from nngraph.ir.graph import Graph
from nngraph.passes import optimize, optimize_before_grad
from nngraph.training.config import TrainConfig
from nngraph.training.data import Dataset
from nngraph.training.step import initial_state, new_name, train_step_graph


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


def evaluate(graph: Graph, params, data: Dataset, run) -> Evaluation:
    """The loss (and a classifier's accuracy) of `graph` on `data`; `run` is `graph` compiled by a backend."""
    out = run(data.arrays, params)
    pair = accuracy_pair(graph)
    acc = float(np.mean(out[pair[0]] == data.arrays[pair[1]])) if pair else None
    return Evaluation(float(out[graph.loss]), acc)


class FeedBackLoop:
    """Runs a compiled training step on any backend, feeding each step's new parameters and
    optimizer state (outputs `new:NAME`) back as the next step's inputs. Backends that can keep
    them on a device offer their own `executable.loop(params, state)` with the same interface."""

    def __init__(self, step, params: dict, state: dict):
        self.run, self._params, self._state = step, params, state

    def step(self, batch: dict) -> dict:
        out = self.run(dict(batch) | self._state, self._params)
        self._params = {p: out.pop(new_name(p)) for p in self._params}
        self._state = {s: out.pop(new_name(s)) for s in self._state}
        return out

    def params(self) -> dict[str, np.ndarray]:
        return dict(self._params)

    def state(self) -> dict[str, np.ndarray]:
        return dict(self._state)


def step_loop(step, params: dict, state: dict):
    """The backend's own loop when it has one (parameters kept on the device), else FeedBackLoop."""
    return step.loop(params, state) if hasattr(step, "loop") else FeedBackLoop(step, params, state)


def fit(graph: Graph, params: dict[str, np.ndarray], data: Dataset, config: TrainConfig, backend,
        progress: bool | None = None) -> TrainResult:
    """Train on any backend (nngraph.runtime.Backend): the train-step graph is compiled once and
    run once per mini-batch."""
    train_set, held_out = split(data, config.holdout, config.seed)
    step = backend.compile(train_step_graph(graph, config.optimizer, opt_level=2))
    loop = step_loop(step, dict(params), initial_state(graph, config.optimizer))
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
            out = loop.step({k: v[rows] for k, v in train_set.arrays.items()})
            total += float(out[graph.loss]) * len(rows)
        history.append(total / train_set.size)
        epochs.set_postfix(loss=f"{history[-1]:.4g}", refresh=False)
    params = loop.params()
    plan = backend.compile(optimize(optimize_before_grad(graph.clone()[0], 2), 2))
    return TrainResult(params, history, evaluate(graph, params, train_set, plan),
                       evaluate(graph, params, held_out, plan) if held_out else None,
                       (train_set.size, held_out.size if held_out else 0))
