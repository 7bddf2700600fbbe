"""The training loop: epochs of shuffled mini-batches, each one run of the train-step graph, on
any backend. Around it, as Keras's callbacks do: a record per epoch (`log`), checkpoints and exact
resume (checkpoint.py), early stopping on a held-out metric, and a guard that stops at the first
non-finite number (guard.py) instead of writing NaN weights."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Graph
from nngraph.passes import optimize, optimize_before_grad
from nngraph.passes.modes import to_inference
from nngraph.training import metrics as metric_fns
from nngraph.training import schedules
from nngraph.training.checkpoint import Checkpoint, Checkpointer
from nngraph.training.config import TrainConfig
from nngraph.training.data import Dataset, check_holdout
from nngraph.training.guard import all_finite, locate_non_finite
from nngraph.training.step import initial_state, new_name, train_step_graph


@dataclass
class Evaluation:
    loss: float
    metrics: dict[str, float] = field(default_factory=dict)
    per_class: list[dict] | None = None        # a classifier's precision/recall/F1 by class (Model.evaluate)
    outputs: dict = field(default_factory=dict, repr=False)   # the model's outputs, when kept
    rows: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get("accuracy")

    def text(self) -> str:
        return f"loss {self.loss:.6g}" + "".join(", " + metric_fns.format_values({k: v}) for k, v in self.metrics.items())


@dataclass
class TrainResult:
    params: dict[str, np.ndarray]
    history: list[float]                       # mean training loss of each epoch
    train: Evaluation
    holdout: Evaluation | None = None
    rows: tuple[int, int] = (0, 0)             # training rows, held-out rows
    log: list[dict] = field(default_factory=list)    # one record per epoch: epoch, loss, lr, seconds, holdout_*
    stopped_early: str | None = None           # why training ended before `epochs`
    state: dict[str, np.ndarray] = field(default_factory=dict)   # the optimizer's state at the end
    classes: dict[str, list[str]] = field(default_factory=dict)  # label words of the data (saved with the weights)

    def summary(self) -> str:
        lines = [f"trained on {self.rows[0]} rows for {len(self.history)} epochs",
                 f"  final training {self.train.text()}"]
        if self.holdout is not None:
            lines.append(f"  held-out {self.holdout.text()} on {self.rows[1]} rows")
        if self.stopped_early:
            lines.append(f"  {self.stopped_early}")
        return "\n".join(lines)


def split(data: Dataset, holdout: float, seed: int) -> tuple[Dataset, Dataset | None]:
    if not holdout:
        return data, None
    order = np.random.default_rng(seed).permutation(data.size)
    n_hold = check_holdout(data.size, holdout)    # an error if no training row is left
    return data.take(np.sort(order[n_hold:])), data.take(np.sort(order[:n_hold]))


def accuracy_pair(graph: Graph) -> tuple[str, str] | None:
    return metric_fns.label_pair(graph)


def evaluation_graph(graph: Graph) -> Graph:
    """The model with its loss, optimized, as evaluation runs it."""
    return optimize(optimize_before_grad(to_inference(graph.clone()[0]), 2), 2)   # no dropout, running stats


# numbers of the data evaluated at once: a language model's activations on a whole corpus do not
# fit in memory (gpt_docs: 5,000 windows of 288 characters, each attending to all 288)
EVALUATION_ELEMENTS = 1 << 15


def chunk_rows(data: Dataset) -> int:
    per_row = max(int(np.prod(a.shape[1:])) for a in data.arrays.values())
    return max(2, EVALUATION_ELEMENTS // max(per_row, 1))


def evaluate(graph: Graph, params, data: Dataset, run, names: list[str] | None = None,
             ignore_label: int | None = None, keep_outputs: bool = False) -> Evaluation:
    """The loss and metrics of `graph` on `data`; `run` is `graph` compiled by a backend (see
    evaluation_graph). `names` default to accuracy for a classifier."""
    out, loss = run_in_chunks(graph, params, data, run)
    return Evaluation(loss, metric_fns.compute(metric_fns.chosen(names, graph), graph, out, data.arrays,
                                               loss, ignore_label), outputs=out if keep_outputs else {}, rows=data.size)


def run_in_chunks(graph: Graph, params, data: Dataset, run) -> tuple[dict, float]:
    """`run` on every row of `data`, chunk_rows(data) at a time: the outputs per row joined (rows are
    axis 0 of the data and of every per-row output), and the loss over all rows. Whether the loss
    is a mean over rows or a sum is read off the first chunk (its loss against its two halves'),
    and the chunks' losses are combined accordingly (a masked mean, say over tokens, is combined
    as a mean over rows, as Keras' evaluate does)."""
    rows_at_once = chunk_rows(data)
    if data.size <= rows_at_once:
        out = run(data.arrays, params)
        return out, float(out[graph.loss])
    starts = range(0, data.size, rows_at_once)
    chunks = [data.take(np.arange(i, min(i + rows_at_once, data.size))) for i in starts]
    outs = [run(chunk.arrays, params) for chunk in chunks]
    losses = np.array([float(o[graph.loss]) for o in outs])
    rows = np.array([chunk.size for chunk in chunks])
    half = rows_at_once // 2
    a, b = (float(run(chunks[0].take(part).arrays, params)[graph.loss])
            for part in (np.arange(half), np.arange(half, rows_at_once)))
    summed = abs(losses[0] - (a + b)) < abs(losses[0] - (a + b) / 2)
    loss = float(losses.sum()) if summed else float(np.sum(losses * rows) / rows.sum())
    joined = {name: np.concatenate([o[name] for o in outs]) for name, v in outs[0].items()
              if np.ndim(v) and np.shape(v)[0] == rows[0] and all(np.shape(o[name])[0] == n for o, n in zip(outs, rows))}
    return joined | {graph.loss: np.asarray(loss)}, loss


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


@dataclass
class Watch:
    """Early stopping's memory: the best held-out value so far, its epoch and parameters."""
    metric: str
    patience: int
    best: float | None = None
    best_epoch: int = 0
    best_params: dict | None = None

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.metric in metric_fns.HIGHER_IS_BETTER else value < self.best


def fit(graph: Graph, params: dict[str, np.ndarray], data: Dataset, config: TrainConfig, backend,
        progress: bool | None = None, *, log=None, checkpoints: Checkpointer | None = None,
        resume: Checkpoint | None = None) -> TrainResult:
    """Train on any backend (nngraph.runtime.Backend): the train-step graph is compiled once and
    run once per mini-batch, for `config.epochs` epochs in all (a resumed run continues from the
    checkpoint's epoch). `log(record)` receives one dict per epoch; `progress` None shows a bar on
    a terminal and a plain line every tenth of the run elsewhere."""
    train_set, held_out = split(data, config.holdout, config.seed)
    names = metric_fns.chosen(config.metrics, graph)
    metric_fns.check(names, graph, config.metrics_span)
    watch = _watch(config, held_out)
    batch = config.batch or train_set.size
    steps_per_epoch = -(-train_set.size // batch)
    optimizer = _resolved(config, steps_per_epoch)
    step_graph = train_step_graph(graph, optimizer, opt_level=2)
    step = backend.compile(step_graph)
    rng = np.random.default_rng(config.seed)
    state, history, records, first = initial_state(graph, optimizer), [], [], 0
    if resume is not None:
        params, state, first = resume.restore(params, state, rng)
        if first > config.epochs:
            raise NNError(f"the checkpoint {resume.path} is at epoch {first}, past the {config.epochs} epochs asked for",
                          hint=f"--epochs counts every epoch, those before the checkpoint too: e.g. --epochs {2 * first}")
        history, records = list(resume.history), list(resume.log)
        for record in records if log is not None else ():
            log(record)                      # the log of a resumed run holds every epoch
        if watch:
            resume.restore_watch(watch)
    loop = step_loop(step, dict(params), state)
    plan = backend.compile(evaluation_graph(graph))
    report = _Reporter(config.epochs, first, progress)
    # held-out metrics each epoch cost a forward pass over the held-out rows: only when shown or used
    every_epoch = held_out is not None and (log is not None or watch is not None or not report.bar.disable)
    if not getattr(backend, "is_main_process", True):
        checkpoints = None                   # several machines: process 0 writes the checkpoints
    stopped = None
    for epoch in range(first, config.epochs):
        started, good_params, good_state = time.perf_counter(), loop.params(), loop.state()
        rng_before = rng.bit_generator.state
        order = rng.permutation(train_set.size)
        total, losses = 0.0, []
        with np.errstate(all="ignore"):        # a NaN or overflow is the guard's to report, below
            for start in range(0, train_set.size, batch):
                rows = order[start:start + batch]
                out = loop.step({k: v[rows] for k, v in train_set.arrays.items()})
                losses.append(float(out[graph.loss]))
                total += losses[-1] * len(rows)
        if not all_finite(losses) or not all_finite(loop.params().values()):
            raise locate_non_finite(graph, step_graph, good_params, good_state, train_set, rng_before, batch, epoch)
        history.append(total / train_set.size)
        record = {"epoch": epoch + 1, "loss": history[-1],
                  "lr": schedules.learning_rate_at(optimizer, (epoch + 1) * steps_per_epoch - 1),
                  "seconds": round(time.perf_counter() - started, 6)}
        if every_epoch:
            ev = evaluate(graph, loop.params(), held_out, plan, names, config.ignore_label)
            record |= {"holdout_loss": ev.loss} | {f"holdout_{k}": v for k, v in ev.metrics.items()}
        records.append(record)
        if log is not None:
            log(record)
        report.epoch(record)
        if watch is not None:
            stopped = _watch_epoch(watch, record, loop, epoch)
        if checkpoints is not None and checkpoints.due(epoch + 1, config.epochs):
            checkpoints.save(epoch + 1, loop.params(), loop.state(), rng, history, records, watch)
        if stopped:
            break
    report.close()
    params = loop.params()
    if stopped and watch.best_params is not None:
        params = watch.best_params
    return TrainResult(params, history, evaluate(graph, params, train_set, plan, names, config.ignore_label),
                       evaluate(graph, params, held_out, plan, names, config.ignore_label) if held_out else None,
                       (train_set.size, held_out.size if held_out else 0), records, stopped, loop.state(), data.classes)


def _resolved(config: TrainConfig, steps_per_epoch: int):
    """The optimizer with a decay `over the whole run` made concrete (a no-op when already so)."""
    return schedules.resolve(config.optimizer, steps_per_epoch * config.epochs)


def _watch(config: TrainConfig, held_out: Dataset | None) -> Watch | None:
    rule = config.early_stopping
    if rule is None:
        return None
    if held_out is None:
        raise NNError("early stopping watches a held-out metric, but no rows are held out", rule.span,
                      hint="add e.g. `holdout = 0.2` to the train block")
    return Watch(rule.metric, rule.patience)


def _watch_epoch(watch: Watch, record: dict, loop, epoch: int) -> str | None:
    key = f"holdout_{watch.metric}"
    if key not in record:
        raise NNError(f"early stopping watches `{watch.metric}`, which is not among the metrics this model reports",
                      hint=f"add it: `metrics = [{watch.metric}]`")
    value = record[key]
    if watch.improved(value):
        watch.best, watch.best_epoch, watch.best_params = value, epoch + 1, loop.params()
        return None
    if epoch + 1 - watch.best_epoch >= watch.patience:
        return (f"stopped early after epoch {epoch + 1}: held-out {watch.metric} did not improve for "
                f"{watch.patience} epochs; kept the parameters of epoch {watch.best_epoch} ({watch.metric} {watch.best:.6g})")
    return None


class _Reporter:
    """A tqdm bar that stays when training ends, on a terminal; elsewhere a plain line every
    tenth of the run; nothing with progress=False."""

    def __init__(self, epochs: int, first: int, progress: bool | None):
        tty = sys.stderr.isatty()
        self.bar = tqdm(total=epochs, initial=first, desc="training", unit="epoch", leave=True,
                        disable=not (tty if progress is None else progress))
        self.plain = progress is None and not tty
        self.every = max(1, epochs // 10)
        self.epochs = epochs

    def epoch(self, record: dict) -> None:
        shown = {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds", "lr")}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)
        if self.plain and (record["epoch"] % self.every == 0 or record["epoch"] == self.epochs):
            print(f"epoch {record['epoch']}/{self.epochs}: " + ", ".join(f"{k} {v}" for k, v in shown.items()),
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()
