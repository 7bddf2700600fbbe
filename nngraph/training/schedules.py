"""Learning-rate schedules written as IR ops: the rate is a function of the training step's
`step` input (how many updates came before this one), so an exported ONNX training step carries
its own schedule.

Every schedule is a linear warm-up, min(1, (step + 1) / warmup), times a decay that starts when
the warm-up ends, at p = (step - warmup) / (steps - warmup) clipped to [0, 1]:
    constant  lr
    step      lr * gamma ** floor((step - warmup) / every)
    cosine    min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2
    linear    min_lr + (lr - min_lr) * (1 - p)
"""
from __future__ import annotations

import dataclasses
import math

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Value
from nngraph.training.config import Optimizer, Schedule


def resolve(opt: Optimizer, total_steps: int) -> Optimizer:
    """`opt` with a decay over the whole run (`steps` left out) set to `total_steps`."""
    s = opt.schedule
    if s is None or s.kind not in ("cosine", "linear") or s.steps is not None:
        return opt
    return dataclasses.replace(opt, schedule=dataclasses.replace(s, steps=max(1, total_steps)))


def learning_rate(e, const, opt: Optimizer, step: Value | None) -> Value:
    """The learning rate of the update after `step` earlier ones, as IR (a constant when there is no schedule)."""
    s, lr = opt.schedule, opt.get("lr")
    if s is None or (s.kind == "constant" and not s.warmup):
        return const(lr)
    after = e("sub", step, const(s.warmup)) if s.warmup else step
    after = _clamp(e, const, after, 0.0, None)
    if s.kind == "step":
        periods = e("cast", e("cast", e("div", after, const(s.every)), dtype="int64"), dtype=step.dtype)  # floor, >= 0
        rate = e("mul", const(lr), e("pow", const(s.gamma), periods))
    elif s.kind in ("cosine", "linear"):
        if s.steps is None:
            raise NNError(f"the {s.kind} schedule needs `steps`, the number of updates it decays over",
                          hint=f"write {s.kind}(steps = N), or train with `nngraph train` / Model.train, "
                               "which decay over the whole run")
        p = _clamp(e, const, e("div", after, const(max(1, s.steps - s.warmup))), None, 1.0)
        shape = (e("mul", const(0.5), e("add", const(1), e("cos", e("mul", const(math.pi), p)))) if s.kind == "cosine"
                 else e("sub", const(1), p))
        rate = e("add", const(s.min_lr), e("mul", const(lr - s.min_lr), shape))
    else:
        rate = const(lr)
    if s.warmup:
        warm = _clamp(e, const, e("div", e("add", step, const(1)), const(s.warmup)), None, 1.0)
        rate = e("mul", rate, warm)
    return rate


def _clamp(e, const, x: Value, low: float | None, high: float | None) -> Value:
    if low is not None:
        x = e("where", e("less", x, const(low)), const(low), x)
    if high is not None:
        x = e("where", e("greater", x, const(high)), const(high), x)
    return x


def learning_rate_at(opt: Optimizer, step: int) -> float:
    """The same schedule in plain Python, for logs: the rate of the update after `step` earlier ones."""
    s, lr = opt.schedule or Schedule(), opt.get("lr")
    after = max(0, step - s.warmup)
    if s.kind == "step":
        rate = lr * s.gamma ** (after // s.every)
    elif s.kind in ("cosine", "linear") and s.steps is not None:
        p = min(1.0, after / max(1, s.steps - s.warmup))
        rate = s.min_lr + (lr - s.min_lr) * ((1 + math.cos(math.pi * p)) / 2 if s.kind == "cosine" else 1 - p)
    else:
        rate = lr
    return rate * min(1.0, (step + 1) / s.warmup) if s.warmup else rate


def resolve_for_run(config, rows: int):
    """`config` (a TrainConfig) with its schedule's decay spread over the run's updates: `epochs`
    times the mini-batches in the rows left after the held-out fraction (as loop.split leaves)."""
    train_rows = rows - (max(1, round(config.holdout * rows)) if config.holdout else 0)
    batches = -(-max(1, train_rows) // (config.batch or max(1, train_rows)))
    return dataclasses.replace(config, optimizer=resolve(config.optimizer, config.epochs * batches))
