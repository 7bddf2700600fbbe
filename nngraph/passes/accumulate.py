"""Sums over time out of scans: a carry that only accumulates, s_t = s_{t-1} + X_t, where X_t is a
weight gradient `transpose(A_t) @ B_t` or a bias gradient `sum(B_t, axes)` of values the scan
stacks anyway (its sequence items, its per-step results), becomes one operation after the loop:
s = s_0 + transpose(A) @ B over the rows of every step flattened (one GEMM over batch x time), or
s = s_0 + sum(B) over time too. Backpropagation through time is where these carries come from:
the reverse scan sums each captured weight's gradient over the steps.

A B_t the scan does not stack yet becomes one more per-step result (memory: one [steps, ...]
array, what the GEMM over time reads). The sum's order of additions changes (within float
rounding); what it computes does not.
"""
from __future__ import annotations

from nngraph.ir import Graph, Value
from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Node
from nngraph.ops.recurrence import scan_parts
from nngraph.ops.rules import norm_axis


def sum_scan_accumulations(graph: Graph) -> Graph:
    """Move every accumulate-only carry of `graph`'s scans (in place) out of the loop."""
    new_nodes: list[Node] = []
    replacement: dict[int, Value] = {}
    for node in graph.nodes:
        node.inputs = [replacement.get(v.uid, v) for v in node.inputs]
        new_nodes.append(node)
        if node.op != "scan" or node.attrs.get("save_carries"):
            continue
        if _accumulation(node) is None:
            continue
        node.attrs = node.attrs | {"body": node.attrs["body"].clone()[0]}   # a body two scans share stays as it was
        before = len(graph.nodes)
        while (found := _accumulation(node)) is not None:
            replacement.update(_move_out(graph, node, *found))
        new_nodes.extend(graph.nodes[before:])
        del graph.nodes[before:]
    graph.nodes = new_nodes
    graph.outputs = {k: replacement.get(v.uid, v) for k, v in graph.outputs.items()}
    return graph


def _uses(body: Graph) -> dict[int, int]:
    count: dict[int, int] = {}
    for node in body.nodes:
        for v in node.inputs:
            count[v.uid] = count.get(v.uid, 0) + 1
    for v in body.outputs.values():
        count[v.uid] = count.get(v.uid, 0) + 1
    return count


def _accumulation(scan: Node):
    """(carry index, kind, operands) of the first carry that is s + X with X a summable term."""
    body, nc = scan.attrs["body"], scan.attrs["n_carry"]
    uses, outs = _uses(body), list(body.outputs.values())
    for k in range(nc):
        c, o = body.inputs[k], outs[k]
        if uses.get(c.uid) != 1 or o.node is None or o.node.op != "add" or uses.get(o.uid) != 1:
            continue
        a, b = o.node.inputs
        term = b if a is c else a if b is c else None
        if term is None or term.node is None or uses.get(term.uid) != 1:
            continue
        t = term.node
        items = {v.uid for v in body.inputs[nc:nc + scan.attrs["n_seq"]]}

        def per_step(v: Value) -> bool:        # a carry or captured input cannot become a stacked result
            return v.node is not None or v.uid in items
        if t.op == "matmul" and all(v.type.rank == 2 for v in t.inputs):
            left = t.inputs[0]
            if (left.node is not None and left.node.op == "transpose" and tuple(left.node.attrs.get("perm", ())) == (1, 0)
                    and all(isinstance(v.shape[-1], int) and per_step(v) for v in (left.node.inputs[0], t.inputs[1]))):
                return k, "gemm", (left.node.inputs[0], t.inputs[1])
        if t.op == "sum" and not t.attrs.get("keepdims") and t.attrs.get("axes") is not None and per_step(t.inputs[0]):
            return k, "sum", (t.inputs[0],)
    return None


def _stacked(graph: Graph, scan: Node, value: Value) -> Value:
    """The outer [steps, ...] value holding `value` of every step; a body value not stacked yet
    becomes a new per-step result of the scan."""
    body, nc, ns = scan.attrs["body"], scan.attrs["n_carry"], scan.attrs["n_seq"]
    for i, item in enumerate(body.inputs[nc:nc + ns]):
        if item is value:
            return scan.inputs[nc + i]
    outs = list(body.outputs.values())
    for i in range(nc, len(outs)):
        if outs[i] is value:
            return scan.outputs[i]
    seqs = scan_parts(scan.inputs, scan.attrs)[1]
    steps = seqs[0].shape[0] if seqs else scan.attrs["length"]
    body.outputs[body.fresh_name(f"stacked_{value.name}")] = value
    stacked = Value(graph.fresh_name(f"{scan.outputs[0].name}.stacked"), value.type.with_shape((steps,) + tuple(value.shape)),
                    scan, value.span)
    scan.outputs.append(stacked)
    return stacked


def _move_out(graph: Graph, scan: Node, k: int, kind: str, operands: tuple) -> dict[int, Value]:
    """Drop carry k from the scan and compute its final value after the loop; returns
    {old final value uid: new value}."""
    body = scan.attrs["body"]
    out_name = list(body.outputs)[k]
    stacked = [_stacked(graph, scan, v) for v in operands]
    accumulate = list(body.outputs.values())[k].node
    e = Emitter(graph, span=accumulate.span, scope=accumulate.scope, role=accumulate.role)
    if kind == "gemm":
        a, b = stacked
        rows_a = e("reshape", a, shape=(-1, a.shape[-1]))
        rows_b = e("reshape", b, shape=(-1, b.shape[-1]))
        total = e("matmul", e("transpose", rows_a, perm=(1, 0)), rows_b)
    else:
        summed = _term(body, k)
        rank = summed.inputs[0].type.rank
        axes = summed.attrs["axes"]
        axes = (axes,) if isinstance(axes, int) else tuple(axes)
        total = e("sum", stacked[0], axes=(0,) + tuple(norm_axis(a, rank) + 1 for a in axes), keepdims=False)
    final = e("add", scan.inputs[k], total)
    old_final = scan.outputs[k]
    del body.outputs[out_name]
    body.inputs.pop(k)
    scan.inputs.pop(k)
    scan.outputs.pop(k)
    scan.attrs = scan.attrs | {"n_carry": scan.attrs["n_carry"] - 1}
    body.prune()
    return {old_final.uid: final}


def _term(body: Graph, k: int) -> Node:
    add = list(body.outputs.values())[k].node
    a, b = add.inputs
    return (b if a is body.inputs[k] else a).node
