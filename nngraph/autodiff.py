"""Reverse-mode autodiff as a graph transform: `grad` returns a new graph whose extra outputs are
d(loss)/d(x) for the requested values, built from each op's symbolic VJP. Because the result is
ordinary IR it can be optimized, printed, exported, run, and differentiated again.

The reverse walk itself, `backprop`, lives in nngraph/ir/backprop.py: the scan op's VJP (the
gradient of a loop body, nngraph/ops/recurrence.py) uses it too, and ops sit below autodiff.
"""
from __future__ import annotations

import numpy as np

from nngraph.ir.backprop import backprop, on_path, zeros_like
from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Graph


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
