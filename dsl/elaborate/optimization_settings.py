"""The train block's optimization settings beside `optimizer`: `schedule = cosine(warmup = 100)`
(the learning rate as a function of the step, nngraph/training/schedules.py) and
`clip_norm = 1.0` (gradient clipping by global norm). They are attached to the optimizer after
the whole block is read, so their order against `optimizer = ...` does not matter."""
from __future__ import annotations

import dataclasses

from nngraph.diagnostics import NNError, did_you_mean
from nngraph.dsl import ast
from nngraph.dsl.values import Scope, describe
from nngraph.training.config import SCHEDULES, Optimizer, Schedule

OPTIMIZATION_SETTINGS = ("schedule", "clip_norm")
_INTEGER = ("warmup", "every", "steps")


def optimization_setting(elab, pending: dict, key: str, e: ast.Expr) -> None:
    """Read one setting into `pending` (key -> value); `with_settings` applies them."""
    if key == "clip_norm":
        value = elab.expr(e, Scope({}, ""))
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise NNError(f"`clip_norm` is the largest global norm of the gradients, a positive number; "
                          f"got {describe(value)}", e.span)
        pending[key] = float(value)
    else:
        pending[key] = schedule(elab, e)


def with_settings(opt: Optimizer, pending: dict) -> Optimizer:
    return dataclasses.replace(opt, schedule=pending.get("schedule", opt.schedule),
                               clip_norm=pending.get("clip_norm", opt.clip_norm))


def schedule(elab, e: ast.Expr) -> Schedule:
    func = e.func if isinstance(e, ast.Call) else e
    name = func.id if isinstance(func, ast.Name) else e.span.text()
    if not isinstance(func, ast.Name) or name not in SCHEDULES:
        raise NNError(f"unknown learning-rate schedule `{name}`", func.span,
                      hint=did_you_mean(name, SCHEDULES) or f"schedules: {', '.join(SCHEDULES)}, "
                      "e.g. `schedule = cosine(warmup = 100)`")
    settings = {}
    for key, (value, span) in elab.call_settings(e, name, ("warmup",) + SCHEDULES[name], Scope({}, "")).items():
        if key in _INTEGER:
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "warmup" else 1):
                raise NNError(f"`{key}` of {name}(...) counts steps, a {'non-negative' if key == 'warmup' else 'positive'} "
                              f"integer; got {describe(value)}", span)
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise NNError(f"`{key}` of {name}(...) must be a non-negative number, got {describe(value)}", span)
        settings[key] = value
    return Schedule(name, **settings)
