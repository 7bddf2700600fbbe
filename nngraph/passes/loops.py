"""Passes about scans (loops with a body subgraph)."""
from __future__ import annotations

from nngraph.ir import Graph, Value
from nngraph.passes.rewrite import redirect_outputs


def nested_bodies(graph: Graph) -> list[Graph]:
    """Every graph nested in `graph`'s nodes (scan bodies, theirs too), each once, inner first."""
    seen: dict[int, Graph] = {}

    def visit(g: Graph):
        for node in g.nodes:
            for attr in node.attrs.values():
                if isinstance(attr, Graph) and id(attr) not in seen:
                    visit(attr)
                    seen[id(attr)] = attr
    visit(graph)
    return list(seen.values())


def count_nodes(graph: Graph) -> int:
    """The nodes of `graph` and of every scan body in it (a body shared by two scans, once)."""
    return len(graph.nodes) + sum(len(body.nodes) for body in nested_bodies(graph))


def share_scan_forward(graph: Graph) -> Graph:
    """Under the "recompute" residual policy (nngraph/ops/recurrence.py) a scan's gradient runs the
    forward scan again to save the carry of every step; when the original scan is in the same
    graph, it saves them instead and the rerun goes away. (Under "save" the gradient extends the
    original scan itself, so there is no rerun to remove.)"""
    first: dict[tuple, object] = {}
    replacement: dict[int, Value] = {}
    kept = []
    for node in graph.nodes:
        node.inputs = [replacement.get(v.uid, v) for v in node.inputs]
        if node.op != "scan":
            kept.append(node)
            continue
        key = (tuple(v.uid for v in node.inputs), id(node.attrs["body"]),
               tuple(sorted((k, v) for k, v in node.attrs.items() if k not in ("body", "save_carries", "steps_of"))))
        earlier = first.get(key)
        if earlier is None:
            first[key] = node
            kept.append(node)
            continue
        if node.attrs.get("save_carries") and not earlier.attrs.get("save_carries"):
            earlier.attrs = earlier.attrs | {"save_carries": True}
            earlier.outputs += [Value(v.name, v.type, earlier, v.span) for v in node.outputs[len(earlier.outputs):]]
        replacement.update((a.uid, b) for a, b in zip(node.outputs, earlier.outputs))
    graph.nodes = kept
    return redirect_outputs(graph, replacement)
