"""What the benchmark scripts share: the models to measure, their inputs, and a best-of timer.
Run the scripts from the repository root (`python bench/NAME.py`), which puts bench/ on the path."""
from __future__ import annotations

import glob
import time
from typing import Callable, Iterator

import numpy as np

import nngraph
from nngraph.dsl.loader import load_program


def every_model(with_loss: bool = False) -> Iterator[tuple[str, str, nngraph.Model]]:
    """(path, model name, Model) for every model in models/; with_loss: only those that train."""
    for path in sorted(glob.glob("models/*.nn")):
        for m in load_program(path).module.models:
            model = nngraph.load(path, m.name)
            if with_loss and model.graph.loss is None:      # a text generator: nothing to train
                continue
            yield path, m.name, model


def random_inputs(graph, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every input with its symbolic dims bound to `batch`; integers in [0, 3) are valid ids for
    every model here (word ids, labels, characters)."""
    feeds = {}
    for v in graph.inputs:
        shape = tuple(batch if isinstance(d, str) else d for d in v.shape)
        feeds[v.name] = rng.integers(0, 3, shape) if v.dtype.startswith("int") else \
            rng.normal(size=shape).astype(v.dtype)
    return feeds


def batch_of(model: nngraph.Model, size: int) -> dict[str, np.ndarray]:
    """`size` rows of the model's own training data (a fixed shuffle; rows repeat if it has fewer)."""
    arrays = model.load_data().arrays
    n = len(next(iter(arrays.values())))
    rows = np.resize(np.random.default_rng(0).permutation(n), size)
    declared = {v.name: v.dtype for v in model.graph.inputs}
    return {k: np.ascontiguousarray(v[rows], dtype=declared[k]) for k, v in arrays.items() if k in declared}


def best_time(run: Callable[[], object], budget: float) -> float:
    """Seconds per call of `run`: the best of three blocks that together take about `budget`."""
    start = time.perf_counter()
    run()                                          # warm up, and size the blocks to the budget
    repeat = max(1, int(budget / 3 / max(time.perf_counter() - start, 1e-6)))
    best = float("inf")
    for _ in range(3):                             # best of three blocks: less noise from the machine
        start = time.perf_counter()
        for _ in range(repeat):
            run()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best
