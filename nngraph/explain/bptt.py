"""Backpropagation through time, read from a scan: the per-step formulas and the gradient's norm
at every step.

Formulas: the scan's loop body is differentiated on its own (the same `backprop` walk the scan's
VJP uses), with the gradient of each new carry, ∂loss/∂h_t, as an input. That yields the repeated
factor ∂loss/∂h_{t−1} in terms of ∂loss/∂h_t, and each parameter's contribution at step t; the
parameter's gradient is the sum of the contributions over the steps.

Norms (method): ‖∂loss/∂h_t‖ is the total derivative of the loss with respect to the carry after
step t. The scan is rewritten so that step t adds an extra input ε_t (zeros) to its new carries,
h_t = cell(x_t, h_{t−1}) + ε_t, which leaves every value unchanged; then ∂loss/∂ε_t = ∂loss/∂h_t,
and `nngraph.autodiff.grad` differentiates the loss with respect to ε (an ordinary input). The
norm at step t is the Frobenius norm over the batch and the state's units.
"""
from __future__ import annotations

import numpy as np

from nngraph import autodiff, runtime
from nngraph.diagnostics import NNError
from nngraph.explain.derive import Explainer, display_names
from nngraph.explain.expr import Expr, simplify
from nngraph.ir.backprop import backprop, on_path
from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Graph, Node
from nngraph.ir.types import TensorType


def scans(graph: Graph) -> list[Node]:
    return [n for n in graph.nodes if n.op == "scan" and n.role == "forward"]


class StepExplainer(Explainer):
    """An Explainer over one step of a scan body: carries in are h_{t−1}, out h_t."""

    def __init__(self, scan: Node, carry_names: list[str], loss: str):
        body = scan.attrs["body"]
        nc, ns = scan.attrs["n_carry"], scan.attrs["n_seq"]
        g = Graph(f"{body.name}_step")
        ins = [g.add_input(v.name, v.type) for v in body.inputs]
        outs = g.inline(body, ins)
        seeds = [g.add_input(f"d_{c}", v.type) for c, v in zip(carry_names, outs[:nc])]
        grads = backprop(g, {o.uid: s for o, s in zip(outs, seeds)}, on_path(g, ins, outs[:nc]))
        self.model, self.loss, self.graph, self.grads = g, loss, g, grads
        self.names = {}
        for i, v in enumerate(ins):
            self.names[v.uid] = (f"{carry_names[i]}_t−1" if i < nc else f"{v.name}_t" if i < nc + ns else v.name)
        for c, o, s in zip(carry_names, outs, seeds):
            self.names[o.uid] = f"{c}_t"
            self.names[s.uid] = f"∂{loss}/∂{c}_t"
        self.names.update({uid: n for uid, n in display_names(g).items() if uid not in self.names})
        self.owner, self._memo, self.intermediate = {}, {}, {}
        self.inputs, self.carries_in, self.seeds = ins, ins[:nc], seeds
        self.captured = ins[nc + ns:]

    def values(self, arrays: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Every value of one step, from arrays for its inputs (carries, items, captured, seeds) by uid."""
        g = self.graph
        saved = dict(g.outputs)
        every = g.inputs + [v for n in g.nodes for v in n.outputs]
        try:
            g.outputs = {f"__value{v.uid}": v for v in every}
            out = runtime.get("numpy").compile(g)({v.name: arrays[v.uid] for v in g.inputs})
        finally:
            g.outputs = saved
        return {v.uid: out[f"__value{v.uid}"] for v in every}

    def step_formula(self, v) -> Expr | None:
        g = self.grads.get(v.uid)
        return None if g is None else simplify(self.expr_of(g, root=g.uid))


def bptt_text(explainer: Explainer, scan: Node, params: list[str], render) -> list[str]:
    names = [explainer.names.get(o.uid, f"h{i}") for i, o in enumerate(scan.outputs[:scan.attrs["n_carry"]])]
    steps = scan.inputs[scan.attrs["n_carry"]].shape[0] if scan.attrs["n_seq"] else scan.attrs.get("length")
    step = StepExplainer(scan, names, explainer.loss)
    loss = explainer.loss
    where = f" at {scan.span.file}:{scan.span.line}" if scan.span else ""
    lines = [f"backpropagation through time, over the scan{where} ({steps} steps, t = 1 … {steps}):"]
    for p in params:
        captured = next((v for v in step.captured if v.name == p), None)
        formula = step.step_formula(captured) if captured is not None else None
        if formula is not None:
            lines.append(f"  ∂{loss}/∂{p} = Σ_t [ {render(formula)} ]")
    lines.append("  the factor repeated at every step, from the last step back to the first:")
    for c, v in zip(names, step.carries_in):
        formula = step.step_formula(v)
        if formula is not None:
            lines.append(f"    ∂{loss}/∂{c}_t−1 = {render(formula)}")
    done: set[int] = set()
    while len(done) < len(step.intermediate):          # the pieces δk the step's formulas share
        uid = next(u for u in step.intermediate if u not in done)
        done.add(uid)
        value = step._value(uid)
        lines.append(f"    where {step.intermediate[uid]} = {render(simplify(step.expr_of(value, root=uid)))}")
    for c, out in zip(names, scan.outputs):
        g = explainer.grads.get(out.uid)
        if g is not None:
            eq = explainer.equation(out, g)
            lines.append(f"  starting from ∂{loss}/∂{c}_{steps} = ∂{loss}/∂{c} = {render(eq.expr)}")
    return lines


# ---------------------------------------------------------------- norms per step
def gradient_norms(graph: Graph, params: dict, feeds: dict) -> tuple[list[str], np.ndarray]:
    """The carry names of the model's (first) scan and ‖∂loss/∂carry_t‖ for t = 1..T, shape [T, carries]."""
    names, grads = carry_gradients(graph, params, feeds)
    norms = [np.sqrt((g.astype(np.float64) ** 2).reshape(len(g), -1).sum(axis=1)) for g in grads]
    return names, np.stack(norms, axis=1)


def carry_gradients(graph: Graph, params: dict, feeds: dict) -> tuple[list[str], list[np.ndarray]]:
    """The carry names of the model's (first) scan and ∂loss/∂carry_t for every step, stacked [T, ...]."""
    found = scans(graph)
    if not found:
        raise NNError(f"model `{graph.name}` has no scan, so there are no time steps to show gradient norms for",
                      next((v.span for v in graph.inputs if v.span), None),
                      hint="--gradient-norms is for recurrent models (`scan ... carry (...) { ... }`)")
    g, _ = graph.clone()
    scan = next(n for n in g.nodes if n.op == "scan" and n.span == found[0].span)
    names = [display_names(graph).get(o.uid, o.name) for o in found[0].outputs[:scan.attrs["n_carry"]]]
    eps = nudged(g, scan)
    grads = autodiff.grad(g, wrt=[e.name for e in eps])
    run = runtime.get("numpy").compile(grads)
    shapes = {e.name: _concrete(e.type, feeds, graph) for e in eps}
    feeds = dict(feeds) | {k: np.zeros(s, dtype=e.dtype) for (k, s), e in zip(shapes.items(), eps)}
    out = run(feeds, params, [autodiff.grad_name(e.name) for e in eps])
    return names, [out[autodiff.grad_name(e.name)] for e in eps]


def nudged(g: Graph, scan: Node) -> list:
    """Rewrite `scan` in place so that each step adds an input ε_t to its new carries; returns the ε inputs."""
    body, nc, ns = scan.attrs["body"], scan.attrs["n_carry"], scan.attrs["n_seq"]
    carries, seqs, captured = scan.inputs[:nc], scan.inputs[nc:nc + ns], scan.inputs[nc + ns:]
    steps = seqs[0].shape[0] if seqs else scan.attrs["length"]
    eps = [g.add_input(g.fresh_name(f"nudge_{i}"), c.type.with_shape((steps,) + tuple(c.shape)))
           for i, c in enumerate(carries)]
    new = Graph(body.name)
    ins = [new.add_input(v.name, v.type) for v in body.inputs]
    e_ins = [new.add_input(f"nudge_{i}", c.type) for i, c in enumerate(carries)]
    outs = new.inline(body, ins)
    emit = Emitter(new, role="forward")
    nudged_outs = [emit("add", o, e) for o, e in zip(outs[:nc], e_ins)] + outs[nc:]
    new.outputs = dict(zip(body.outputs, nudged_outs))
    # body inputs must be carries, sequence items, captured: put the nudges after the sequences
    new.inputs = ins[:nc + ns] + e_ins + ins[nc + ns:]
    scan.inputs = list(carries) + list(seqs) + eps + list(captured)
    scan.attrs = scan.attrs | {"body": new, "n_seq": ns + nc, "save_carries": False}
    return eps


def _concrete(t: TensorType, feeds: dict, graph: Graph) -> tuple[int, ...]:
    """Bind symbolic dims (the batch N) from the feeds."""
    bound: dict[str, int] = {}
    for v in graph.inputs:
        if v.name in feeds:
            for d, n in zip(v.shape, np.shape(feeds[v.name])):
                if isinstance(d, str):
                    bound.setdefault(d, n)
    return tuple(bound[d] if isinstance(d, str) else d for d in t.shape)


def norms_text(names: list[str], norms: np.ndarray, loss: str) -> list[str]:
    header = "  t  " + "".join(f"{'‖∂' + loss + '/∂' + n + '_t‖':>22}" for n in names)
    lines = ["gradient norm per time step (t = 1 is the first step):", header]
    for t, row in enumerate(norms, start=1):
        lines.append(f"{t:>3}  " + "".join(f"{x:>22.4e}" for x in row))
    if len(norms) > 1:
        ratio = norms[0] / np.maximum(norms.max(axis=0), 1e-300)
        lines.append("  step 1 / largest step: " + ", ".join(f"{n} {r:.3g}" for n, r in zip(names, ratio)))
    return lines
