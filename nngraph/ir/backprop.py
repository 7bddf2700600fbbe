"""The reverse walk of autodiff: from seed gradients, visit the nodes backwards and build each
op's VJP (read from the op registry) into the graph. `grad` (nngraph/autodiff.py) and the scan
op's VJP for its loop body (nngraph/ops/recurrence.py) both use it. It knows no op: it only reads
the registry.
"""
from __future__ import annotations

import numpy as np

from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Graph, Value
from nngraph.ir.registry import OPS


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
