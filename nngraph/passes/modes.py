"""Training mode to inference mode. A model's graph is its training graph: dropout multiplies by
a mask drawn from the `step` input, batch norm normalizes with the batch's statistics and outputs
`new:NAME` running statistics. `to_inference` rewrites it for inference (and evaluation): no
dropout, batch norm with the running statistics and without the `new:` outputs of those
statistics, no `step` input. (Other `new:` outputs, e.g. of an imported ONNX graph, stay.)"""
from __future__ import annotations

import numpy as np

from nngraph.ir import Graph, Value
from nngraph.ir.emit import Emitter

STATE_PREFIX = "new:"


def has_training_mode(graph: Graph) -> bool:
    return any(n.op in ("dropout_mask", "batch_norm") for n in graph.nodes)


def to_inference(graph: Graph) -> Graph:
    """Rewrite `graph` in place for inference (see the module's doc); returns it."""
    if not has_training_mode(graph):
        return graph
    params = {p.name: p for p in graph.params}
    replacement: dict[int, Value] = {}
    masks: set[int] = set()
    old_nodes, graph.nodes = graph.nodes, []
    for node in old_nodes:
        node.inputs = [replacement.get(v.uid, v) for v in node.inputs]
        e = Emitter(graph, node.span, node.scope, node.role)
        if node.op == "dropout_mask":         # all ones (kept only if something other than a product reads it)
            ones = e("broadcast_like", e("constant", value=np.ones((), node.out.dtype)), node.inputs[0])
            replacement[node.out.uid] = ones
            masks.add(ones.uid)
        elif node.op == "mul" and any(v.uid in masks for v in node.inputs):
            other = node.inputs[1] if node.inputs[0].uid in masks else node.inputs[0]
            if other.type == node.out.type:
                replacement[node.out.uid] = other
            else:
                graph.nodes.append(node)
        elif node.op == "batch_norm" and all(r in params for r in node.attrs.get("running", ())):
            mean, var = (params[r] for r in node.attrs["running"])
            x, gamma, beta = node.inputs
            y = e("batch_norm_inference", x, gamma, beta, mean, var, eps=node.attrs.get("eps", 1e-5))
            replacement.update({node.outputs[0].uid: y, node.outputs[1].uid: mean, node.outputs[2].uid: var})
        else:
            graph.nodes.append(node)
    state = {STATE_PREFIX + r for n in old_nodes if n.op == "batch_norm" for r in n.attrs.get("running", ())}
    graph.outputs = {k: replacement.get(v.uid, v) for k, v in graph.outputs.items() if k not in state}
    graph.prune()
    used = {v.uid for n in graph.nodes for v in n.inputs} | {v.uid for v in graph.outputs.values()}
    graph.inputs = [v for v in graph.inputs if v.uid in used or v.name != "step"]
    return graph
