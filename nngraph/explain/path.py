"""The path from the loss to a parameter's gradient in a gradient graph, for a picture that
highlights it (`nngraph compile --grad --highlight NAME`): the forward nodes that carry the
parameter to the loss, and the backward nodes that compute grad:NAME."""
from __future__ import annotations

import networkx as nx

from nngraph.autodiff import grad_name
from nngraph.diagnostics import NNError, did_you_mean
from nngraph.ir.graph import Graph


def gradient_path(graph: Graph, param: str) -> set[int]:
    """id(node)s and value uids on the path, as `nngraph.visualize.write_picture(highlight=...)` takes them."""
    key = grad_name(param)
    if key not in graph.outputs:
        known = [k.split(":", 1)[1] for k in graph.outputs if k.startswith("grad:")]
        raise NNError(f"the gradient graph of `{graph.name}` has no gradient for `{param}`",
                      hint=did_you_mean(param, known) or f"its parameters: {', '.join(known)}")
    dg = graph.to_networkx()
    by_id = {id(n): n for n in graph.nodes}
    grad_node = graph.outputs[key].node
    loss = graph.outputs.get(graph.loss) if graph.loss else None
    param_value = next((p for p in graph.params if p.name == param), None)
    feeding = set() if grad_node is None else nx.ancestors(dg, id(grad_node)) | {id(grad_node)}
    users = {id(n) for n in graph.nodes if param_value is not None and param_value in n.inputs}
    downstream = set(users).union(*(nx.descendants(dg, u) for u in users)) if users else set()
    to_loss = set()
    if loss is not None and loss.node is not None:
        to_loss = nx.ancestors(dg, id(loss.node)) | {id(loss.node)}
    forward = downstream & to_loss
    backward = {i for i in feeding if by_id[i].role == "backward"} or (feeding & downstream)
    nodes = forward | backward
    uids = {v.uid for i in nodes for v in by_id[i].outputs}
    uids |= {v.uid for v in (param_value, loss, graph.outputs[key]) if v is not None}
    return nodes | uids
