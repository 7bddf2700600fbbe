"""The pass pipeline. Each pass is a function Graph -> Graph with one job; -O0 runs none."""
from __future__ import annotations

import time

import numpy as np

from nngraph.ir import Graph, Node, Value


def redirect_outputs(graph: Graph, replacement: dict[int, Value]) -> Graph:
    """Point the graph's outputs at the replacements of replaced values. (Passes rewrite node
    inputs as they walk, since each node's rewrite depends on its already-rewritten inputs.)"""
    graph.outputs = {k: replacement.get(v.uid, v) for k, v in graph.outputs.items()}
    return graph


def dead_code_elimination(graph: Graph) -> Graph:
    """Drop nodes no output depends on."""
    return graph.prune()


def constant_folding(graph: Graph) -> Graph:
    """Evaluate nodes whose inputs are all constants, once, at compile time."""
    from nngraph.runtime.kernels import KERNELS
    replacement: dict[int, Value] = {}
    folded: list[Node] = []
    for node in graph.nodes:
        node.inputs = [replacement.get(v.uid, v) for v in node.inputs]
        producers = [v.node for v in node.inputs]
        if node.op != "constant" and len(node.outputs) == 1 and node.inputs and \
                all(p is not None and p.op == "constant" for p in producers):
            value = KERNELS[node.op](*(p.attrs["value"] for p in producers), **node.attrs)
            const = Node("constant", [], {"value": np.asarray(value, dtype=node.out.dtype)},
                         span=node.span, scope=node.scope, role=node.role)
            const.outputs = [Value(node.out.name, node.out.type, const, node.out.span)]
            replacement[node.out.uid] = const.outputs[0]
            folded.append(const)
        else:
            folded.append(node)
    graph.nodes = folded
    return redirect_outputs(graph, replacement)


def _attr_key(value):
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_attr_key(v) for v in value)
    return value


def common_subexpression_elimination(graph: Graph) -> Graph:
    """Compute each (op, inputs, attributes) once; later copies reuse the first result."""
    seen: dict[tuple, Node] = {}
    replacement: dict[int, Value] = {}
    kept = []
    for node in graph.nodes:
        node.inputs = [replacement.get(v.uid, v) for v in node.inputs]
        key = (node.op, tuple(v.uid for v in node.inputs),
               tuple(sorted((k, _attr_key(v)) for k, v in node.attrs.items())))
        first = seen.get(key)
        if first is None:
            seen[key] = node
            kept.append(node)
        else:
            replacement.update((a.uid, b) for a, b in zip(node.outputs, first.outputs))
    graph.nodes = kept
    return redirect_outputs(graph, replacement)


PIPELINES = {
    0: [],
    1: [dead_code_elimination],
    2: [constant_folding, common_subexpression_elimination, dead_code_elimination],
}


def optimize(graph: Graph, level: int = 1, stats: list | None = None) -> Graph:
    """Run the level's passes; `stats` (if given) receives (pass, nodes before, nodes after, seconds)."""
    for run_pass in PIPELINES[level]:
        before, start = len(graph.nodes), time.perf_counter()
        graph = run_pass(graph)
        if stats is not None:
            stats.append((run_pass.__name__, before, len(graph.nodes), time.perf_counter() - start))
    return graph
