"""A training step is a graph too: (params, optimizer state, batch) -> (new params, new state, loss).

It is built from the model's symbolic gradient plus the optimizer's update rule written in IR
ops, so the NumPy runtime runs it and ONNX can export it as a self-contained step: the
learning-rate schedule (schedules.py), gradient clipping and weight decay are IR too.

A scalar input `step` counts the updates made so far; the step outputs `new:step`. It is there
when Adam needs it for bias correction, when a schedule reads it, or when the model itself reads
it (dropout's masks are drawn from it, nngraph/ops/normalization.py). Parameters that the model
updates itself (an output `new:NAME`, e.g. batch norm's running statistics) are not trained:
their new value is the model's.
"""
from __future__ import annotations

import numpy as np

from nngraph.autodiff import grad, grad_name
from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Graph
from nngraph.ir.types import TensorType
from nngraph.passes import optimize, optimize_before_grad
from nngraph.training.config import Optimizer
from nngraph.training.optimizers import adam_update, adamw_update, clip_by_global_norm, sgd_update, sparse_sgd_step
from nngraph.training.schedules import learning_rate

STEP = "step"


def new_name(name: str) -> str:
    return f"new:{name}"


def slot_name(slot: str, param: str) -> str:
    return f"{slot}:{param}"


def trainable(graph: Graph) -> list:
    """The parameters the optimizer updates: all but those the model updates itself (`new:NAME`)."""
    return [p for p in graph.params if new_name(p.name) not in graph.outputs]


def needs_step(graph: Graph, opt: Optimizer) -> bool:
    return (opt.kind in ("adam", "adamw") or opt.schedule is not None
            or any(v.name == STEP for v in graph.inputs))


def initial_state(graph: Graph, opt: Optimizer) -> dict[str, np.ndarray]:
    state = {slot_name(s, p.name): np.zeros(p.shape, p.dtype) for p in trainable(graph) for s in opt.slots()}
    if needs_step(graph, opt):
        state[STEP] = np.zeros((), _float_dtype(graph))
    return state


def _float_dtype(graph: Graph) -> str:
    return graph.params[0].dtype if graph.params else "float32"


def train_step_graph(model: Graph, opt: Optimizer, opt_level: int = 0) -> Graph:
    """One optimizer step as a graph, optimized at `opt_level` (before and after autodiff)."""
    model = optimize_before_grad(model.clone()[0], opt_level)
    params = trainable(model)
    g = grad(model, wrt=[p.name for p in params])
    g.outputs = {k: v for k, v in g.outputs.items() if k == model.loss or k.startswith(("grad:", "new:"))}
    g.name = f"{model.name}_train_step"
    e = Emitter(g, role="optimizer")
    dtype = _float_dtype(g)

    def const(x):
        return e("constant", value=np.asarray(x, dtype))

    step = next_step = None
    if needs_step(model, opt):
        step = next((v for v in g.inputs if v.name == STEP), None) or g.add_input(STEP, TensorType(dtype, ()))
        next_step = e("add", step, const(1))
        g.outputs[new_name(STEP)] = next_step
    lr = learning_rate(e, const, opt, step)
    grads = [g.outputs.pop(grad_name(p.name)) for p in params]
    if opt.clip_norm is not None and grads:
        grads = clip_by_global_norm(e, const, grads, opt.clip_norm)
    by_name = {p.name: p for p in g.params}
    for p, grad_value in zip(params, grads):
        p = by_name[p.name]
        slots = {s: g.add_input(slot_name(s, p.name), p.type) for s in opt.slots()}
        if opt.kind == "adamw":
            update, new_slots = adamw_update(e, const, opt, grad_value, slots, next_step, p)
        elif opt.kind == "adam":
            update, new_slots = adam_update(e, const, opt, grad_value, slots, next_step)
        else:
            update, new_slots = sgd_update(e, const, opt, grad_value, slots)
        sparse = sparse_sgd_step(e, p, grad_value, lr) if opt.kind == "sgd" and not slots else None
        g.outputs[new_name(p.name)] = sparse if sparse is not None else e("sub", p, e("mul", lr, update))
        for s, value in new_slots.items():
            g.outputs[new_name(slot_name(s, p.name))] = value
    return optimize(g.prune(), opt_level)
