"""A training step is a graph too: (params, optimizer state, batch) -> (new params, new state, loss).

It is built from the model's symbolic gradient plus the optimizer's update rule written in IR
ops, so the NumPy runtime runs it and ONNX can export it as a self-contained step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nngraph.autodiff import grad, grad_name
from nngraph.ir import Graph, TensorType, Value
from nngraph.ops import Emitter
from nngraph.passes import optimize, optimize_before_grad

OPTIMIZERS = {"sgd": ("lr", "momentum"), "adam": ("lr", "beta1", "beta2", "eps")}


@dataclass
class Optimizer:
    kind: str = "sgd"               # "sgd" (with optional momentum) or "adam"
    settings: dict = field(default_factory=dict)

    def get(self, key: str) -> float:
        defaults = {"lr": 0.01 if self.kind == "sgd" else 0.001, "momentum": 0.0,
                    "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
        return float(self.settings.get(key, defaults[key]))

    def slots(self) -> tuple[str, ...]:
        """Per-parameter state the optimizer keeps."""
        if self.kind == "adam":
            return ("m", "v")
        return ("velocity",) if self.get("momentum") else ()

    def __str__(self) -> str:
        args = ", ".join(f"{k} = {self.get(k):g}" for k in OPTIMIZERS[self.kind] if k in self.settings or k == "lr")
        return f"{self.kind}({args})"


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
            update, new_slots = _adam(e, const, opt, grad_value, slots, next_step)
        else:
            update, new_slots = _sgd(e, const, opt, grad_value, slots)
        g.outputs[new_name(p.name)] = e("sub", p, e("mul", lr, update))
        for s, value in new_slots.items():
            g.outputs[new_name(slot_name(s, p.name))] = value
    return optimize(g, opt_level)


def _sgd(e, const, opt, g: Value, slots) -> tuple[Value, dict]:
    if "velocity" not in slots:
        return g, {}
    velocity = e("add", e("mul", const(opt.get("momentum")), slots["velocity"]), g)
    return velocity, {"velocity": velocity}


def _adam(e, const, opt, g: Value, slots, t: Value) -> tuple[Value, dict]:
    b1, b2 = opt.get("beta1"), opt.get("beta2")
    m = e("add", e("mul", const(b1), slots["m"]), e("mul", const(1 - b1), g))
    v = e("add", e("mul", const(b2), slots["v"]), e("mul", const(1 - b2), e("mul", g, g)))
    m_hat = e("div", m, e("sub", const(1), e("pow", const(b1), t)))     # bias correction
    v_hat = e("div", v, e("sub", const(1), e("pow", const(b2), t)))
    update = e("div", m_hat, e("add", e("sqrt", v_hat), const(opt.get("eps"))))
    return update, {"m": m, "v": v}
