"""The machinery passes share: replacing values, and a driver for local rewrite rules."""
from __future__ import annotations

from typing import Callable

import numpy as np

from nngraph.ir import Graph, Node, Value
from nngraph.ir.emit import Emitter

# A rule looks at one node (and the producers of its inputs) and returns a value that can stand
# in for the node's output, building any new nodes it needs with the emitter; or None.
Rule = Callable[[Node, Emitter], "Value | None"]


def redirect_outputs(graph: Graph, replacement: dict[int, Value]) -> Graph:
    """Point the graph's outputs at the replacements of replaced values. (Passes rewrite node
    inputs as they walk, since each node's rewrite depends on its already-rewritten inputs.)"""
    graph.outputs = {k: replacement.get(v.uid, v) for k, v in graph.outputs.items()}
    return graph


def rewrite(graph: Graph, rules: dict[str, list[Rule]]) -> int:
    """Offer every node, in order, to the rules for its op; returns how many nodes were replaced.

    The driver, not the rules, guarantees a rewrite is sound in type: a replacement whose type
    differs from the node's output (say a broadcast that would be lost) is refused and the nodes
    the rule built for it are dropped. New nodes are placed where the old one stood, so the
    graph stays in topological order."""
    replacement: dict[int, Value] = {}
    old_nodes, graph.nodes = graph.nodes, []
    for node in old_nodes:
        node.inputs = [replacement.get(v.uid, v) for v in node.inputs]
        new = None
        if len(node.outputs) == 1:
            for rule in rules.get(node.op, ()):
                mark = len(graph.nodes)
                candidate = rule(node, Emitter(graph, node.span, node.scope, node.role))
                if candidate is not None and candidate.type == node.out.type and candidate is not node.out:
                    new = candidate
                    break
                del graph.nodes[mark:]
        if new is None:
            graph.nodes.append(node)
        else:
            replacement[node.out.uid] = new
    redirect_outputs(graph, replacement)
    return len(replacement)


def producer(value: Value, op: str | None = None) -> Node | None:
    """The node that makes `value`, if there is one (and it is an `op`, when given)."""
    node = value.node
    return node if node is not None and (op is None or node.op == op) else None


def constant_value(value: Value) -> np.ndarray | None:
    node = producer(value, "constant")
    return None if node is None else node.attrs["value"]


def is_constant(value: Value, number: float) -> bool:
    """Whether every element of `value` is known at compile time to equal `number`."""
    array = constant_value(value)
    return array is not None and array.size > 0 and bool(np.all(array == number))
