"""The IR builder that VJPs, the training step and the passes share."""
from __future__ import annotations

import numpy as np

from nngraph.ir.graph import Graph, Value


class Emitter:
    """Builds IR for a gradient: every node it makes carries the span and scope of the forward
    node being differentiated, so the backward pass still points at the user's source line."""

    def __init__(self, graph: Graph, span=None, scope: str = "", role: str = "backward"):
        self.graph, self.span, self.scope, self.role = graph, span, scope, role

    def __call__(self, op: str, *inputs: Value, **attrs) -> Value:
        return self.many(op, *inputs, **attrs)[0]

    def many(self, op: str, *inputs: Value, **attrs) -> list[Value]:
        return self.graph.apply(op, list(inputs), attrs, span=self.span, scope=self.scope, role=self.role,
                                name=f"{self.scope}.d{op}" if self.role == "backward" and self.scope else None)

    def const(self, value, like: Value) -> Value:
        """A scalar constant with the dtype of `like`."""
        return self("constant", value=np.asarray(value, dtype=like.dtype))

    def sum_to(self, g: Value, target: Value) -> Value:
        """Undo broadcasting: sum `g` over the axes along which `target` was broadcast."""
        return sum_to(self, g, target)


def sum_to(e: Emitter, g: Value, target: Value) -> Value:
    if g.shape == target.shape:
        return g
    lead = g.type.rank - target.type.rank
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(target.shape) if d == 1 and g.shape[lead + i] != 1)
    if axes:
        g = e("sum", g, axes=axes, keepdims=True)
    return e("reshape_like", g, target) if g.shape != target.shape else g
