"""Reverse-mode autodiff as a graph transform: `grad` returns a new graph whose extra outputs are
d(loss)/d(x) for the requested values, built from each op's symbolic VJP. Because the result is
ordinary IR it can be optimized, printed, exported, run, and differentiated again.

`backprop` is the core both `grad` and the scan op's VJP (for a loop body) use: given seed
gradients for some values, it walks the nodes backwards and returns the gradient of each value.
"""
from __future__ import annotations

import numpy as np

from nngraph.ir import Graph, Value
from nngraph.ops import OPS, Emitter


def grad_name(name: str) -> str:
    return f"grad:{name}"


def grad(graph: Graph, of: str | None = None, wrt: list[str] | None = None, keep_outputs: bool = True) -> Graph:
    """A copy of `graph` with outputs ``grad:NAME`` = d(of)/d(NAME) for each name in `wrt`.

    `of` names a scalar output (default: the model's loss); `wrt` names parameters or inputs
    (default: every parameter). A name the loss does not depend on gets a zero gradient.
    """
    of = of or graph.loss
    if of is None or of not in graph.outputs:
        raise ValueError(f"graph {graph.name} has no output {of!r} to differentiate")
    g, _ = graph.clone()
    table = g.value_by_name()
    wrt = [p.name for p in g.params] if wrt is None else wrt
    unknown = [n for n in wrt if n not in table]
    if unknown:
        raise ValueError(f"cannot differentiate with respect to unknown values {unknown}")
    target = g.outputs[of]
    if target.type.rank != 0 or not target.type.is_float:
        raise ValueError(f"the differentiated output {of!r} must be a float scalar, got {target.type}")

    sources = [table[n] for n in wrt]
    seed = Emitter(g, role="backward")("constant", value=np.ones((), target.dtype))
    grads = backprop(g, {target.uid: seed}, on_path(g, sources, [target]))

    if not keep_outputs:
        g.outputs = {of: target}
    for name, source in zip(wrt, sources):
        g.outputs[grad_name(name)] = grads.get(source.uid) or zeros_like(Emitter(g), source)
    return g.prune()


def backprop(g: Graph, seeds: dict[int, Value], needed: set[int]) -> dict[int, Value]:
    """Append to `g` the backward pass from `seeds` (value uid -> its gradient) and return the
    gradient of every value in `needed` that one flows to."""
    grads = dict(seeds)
    for node in reversed(list(g.nodes)):
        out_grads = [grads.get(v.uid) for v in node.outputs]
        if all(x is None for x in out_grads) or OPS[node.op].vjp is None:
            continue
        wants = [v.uid in needed for v in node.inputs]
        if not any(wants):
            continue
        e = Emitter(g, span=node.span, scope=node.scope)
        out_grads = [gv if gv is not None else e("constant", value=np.zeros((), v.dtype)) for gv, v in
                     zip(out_grads, node.outputs)]
        for value, want, contribution in zip(node.inputs, wants, OPS[node.op].vjp(e, node, out_grads, wants)):
            if contribution is None or not want:
                continue
            earlier = grads.get(value.uid)
            # fan-out: a value used twice receives the sum of both gradients
            grads[value.uid] = contribution if earlier is None else e("add", earlier, contribution)
    return grads


def zeros_like(e: Emitter, value: Value) -> Value:
    return e("broadcast_like", e("constant", value=np.zeros((), value.dtype)), value)


def on_path(graph: Graph, sources: list[Value], targets: list[Value]) -> set[int]:
    """Values that depend on a source and that a target depends on: only they need gradients."""
    downstream = {v.uid for v in sources}
    for node in graph.nodes:
        if any(v.uid in downstream for v in node.inputs) and OPS[node.op].vjp is not None:
            downstream.update(v.uid for v in node.outputs)
    upstream = {v.uid for v in targets}
    for node in reversed(graph.nodes):
        if any(v.uid in upstream for v in node.outputs):
            upstream.update(v.uid for v in node.inputs)
    return downstream & upstream


def scan_backward_body(body: Graph, n_carry: int, n_seq: int) -> Graph:
    """The body of the reverse scan that differentiates a scan over `body`. Per step it takes
    (carry gradients, sums of captured gradients, the carries the forward step started from,
    the step's sequence items, the gradients of the step's results, the captured values),
    recomputes the forward step, runs its VJP, and returns (gradients of the carries before the
    step, the sums plus this step's captured gradients, the gradients of the sequence items)."""
    n_captured = len(body.inputs) - n_carry - n_seq
    results = list(body.outputs.values())
    g = Graph(f"{body.name}_grad")
    types = [v.type for v in body.inputs]
    d_carry = [g.add_input(f"d_{v.name}", v.type) for v in body.inputs[:n_carry]]
    sums = [g.add_input(f"sum_d_{v.name}", v.type) for v in body.inputs[n_carry + n_seq:]]
    forward_in = [g.add_input(v.name, t) for v, t in zip(body.inputs[:n_carry + n_seq], types)]
    d_results = [g.add_input(f"d_{v.name}", v.type) for v in results[n_carry:]]
    captured = [g.add_input(v.name, v.type) for v in body.inputs[n_carry + n_seq:]]
    inputs = forward_in + captured
    outs = g.inline(body, inputs)
    e = Emitter(g, role="backward")
    seeds: dict[int, Value] = {}
    for out, d in zip(outs, d_carry + d_results):
        seeds[out.uid] = d if out.uid not in seeds else e("add", seeds[out.uid], d)
    grads = backprop(g, seeds, on_path(g, inputs, outs))
    d_inputs = [grads.get(v.uid) or zeros_like(e, v) for v in inputs]
    d_carry_before = d_inputs[:n_carry]
    d_items = d_inputs[n_carry:n_carry + n_seq]
    new_sums = [e("add", s, d) for s, d in zip(sums, d_inputs[n_carry + n_seq:])]
    for i, v in enumerate(d_carry_before + new_sums + d_items):
        g.outputs[f"out{i}"] = v
    assert len(captured) == n_captured
    return g.prune()
