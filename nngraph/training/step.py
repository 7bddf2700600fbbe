"""A training step is a graph too: (params, optimizer state, batch) -> (new params, new state, loss).

It is built from the model's symbolic gradient plus the optimizer's update rule written in IR
ops, so the NumPy runtime runs it and ONNX can export it as a self-contained step.
"""
from __future__ import annotations

import numpy as np

from nngraph.autodiff import grad, grad_name
from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Graph
from nngraph.ir.types import TensorType
from nngraph.passes import optimize, optimize_before_grad
from nngraph.training.config import Optimizer
from nngraph.training.optimizers import adam_update, sgd_update


def new_name(name: str) -> str:
    return f"new:{name}"


def slot_name(slot: str, param: str) -> str:
    return f"{slot}:{param}"


def initial_state(graph: Graph, opt: Optimizer) -> dict[str, np.ndarray]:
    state = {slot_name(s, p.name): np.zeros(p.shape, p.dtype) for p in graph.params for s in opt.slots()}
    if opt.kind == "adam":
        state["step"] = np.zeros((), _float_dtype(graph))
    return state


def _float_dtype(graph: Graph) -> str:
    return graph.params[0].dtype if graph.params else "float32"


def train_step_graph(model: Graph, opt: Optimizer, opt_level: int = 0) -> Graph:
    """One optimizer step as a graph, optimized at `opt_level` (before and after autodiff)."""
    model = optimize_before_grad(model.clone()[0], opt_level)
    g = grad(model, keep_outputs=False)
    g.name = f"{model.name}_train_step"
    e = Emitter(g, role="optimizer")
    dtype = _float_dtype(g)

    def const(x):
        return e("constant", value=np.asarray(x, dtype))

    step = next_step = None
    if opt.kind == "adam":
        step = g.add_input("step", TensorType(dtype, ()))
        next_step = e("add", step, const(1))
        g.outputs[new_name("step")] = next_step
    lr = const(opt.get("lr"))
    for p in g.params:
        grad_value = g.outputs.pop(grad_name(p.name))
        slots = {s: g.add_input(slot_name(s, p.name), p.type) for s in opt.slots()}
        if opt.kind == "adam":
            update, new_slots = adam_update(e, const, opt, grad_value, slots, next_step)
        else:
            update, new_slots = sgd_update(e, const, opt, grad_value, slots)
        g.outputs[new_name(p.name)] = e("sub", p, e("mul", lr, update))
        for s, value in new_slots.items():
            g.outputs[new_name(slot_name(s, p.name))] = value
    return optimize(g, opt_level)
