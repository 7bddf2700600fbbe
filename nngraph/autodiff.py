"""Reverse-mode autodiff as a graph transform: `grad` returns a new graph whose extra outputs are
d(loss)/d(x) for the requested values, built from each op's symbolic VJP. Because the result is
ordinary IR it can be optimized, printed, exported, run, and differentiated again.
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
    needed = _on_path(g, sources, target)
    grads: dict[int, Value] = {target.uid: Emitter(g, role="backward")("constant", value=np.ones((), target.dtype))}

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

    if not keep_outputs:
        g.outputs = {of: target}
    for name, source in zip(wrt, sources):
        result = grads.get(source.uid)
        if result is None:   # the output does not depend on it
            e = Emitter(g)
            result = e("broadcast_like", e("constant", value=np.zeros((), source.dtype)), source)
        g.outputs[grad_name(name)] = result
    return g.prune()


def _on_path(graph: Graph, sources: list[Value], target: Value) -> set[int]:
    """Values that depend on a source and that the target depends on: only they need gradients."""
    downstream = {v.uid for v in sources}
    for node in graph.nodes:
        if any(v.uid in downstream for v in node.inputs) and OPS[node.op].vjp is not None:
            downstream.update(v.uid for v in node.outputs)
    upstream = {target.uid}
    for node in reversed(graph.nodes):
        if any(v.uid in upstream for v in node.outputs):
            upstream.update(v.uid for v in node.inputs)
    return downstream & upstream
