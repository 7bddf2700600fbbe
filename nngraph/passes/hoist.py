"""Loop-invariant code motion for scans: work a scan body repeats identically every step, or does
step by step on a sequence alone, moves out of the loop.

- A body node whose inputs are all captured values (parameters, say) or constants computes the
  same thing every step: it runs once before the scan and its result is captured instead
  (e.g. the transposed weights the backward scan of an LSTM multiplies by).
- A body node that maps one step of a sequence through an elementwise op or a matmul with a
  captured right operand, and reads no carry, runs once over the whole sequence before the scan,
  and its stacked result becomes a new sequence: the input projection `x_t @ w` of a recurrent
  cell becomes one GEMM `xs @ w` over every step (and its weight gradient, after autodiff, one
  GEMM over batch x time instead of a sum of per-step products).

Stacking along a new axis 0 commutes with those ops as long as every captured operand's rank is at
most the result's (NumPy broadcasting aligns trailing axes), which is checked, as is the type the
hoisted op infers. What the scan computes does not change; only where.
"""
from __future__ import annotations

from nngraph.ir import Graph, Value
from nngraph.ir.graph import Node
from nngraph.ir.registry import OPS
from nngraph.ops.fused import ELEMENTWISE
from nngraph.ops.recurrence import scan_parts

# ops that must run every step even with invariant inputs (they draw random numbers)
_NOT_INVARIANT = frozenset({"sample_categorical", "scan"})


def hoist_scan_invariants(graph: Graph) -> Graph:
    """Move loop-invariant and sequence-only work out of every scan of `graph` (in place)."""
    new_nodes: list[Node] = []
    for node in graph.nodes:
        if node.op == "scan":
            before = len(graph.nodes)
            _hoist(graph, node)
            new_nodes.extend(graph.nodes[before:])    # the hoisted nodes, emitted by graph.apply
            del graph.nodes[before:]
        new_nodes.append(node)
    graph.nodes = new_nodes
    return graph


def _hoist(graph: Graph, scan: Node) -> None:
    attrs, body = scan.attrs, scan.attrs["body"]
    nc, ns = attrs["n_carry"], attrs["n_seq"]
    outer_carries, outer_seqs, outer_captured = scan_parts(scan.inputs, attrs)
    b_carries, b_items, b_captured = scan_parts(body.inputs, attrs)
    body_outputs = {v.uid for v in body.outputs.values()}
    steps = outer_seqs[0].shape[0] if outer_seqs else None
    # body value uid -> its outer counterpart: the captured value itself (invariant), or the stacked
    # sequence (per step)
    invariant: dict[int, Value] = {v.uid: o for v, o in zip(b_captured, outer_captured)}
    stepwise: dict[int, Value] = {v.uid: o for v, o in zip(b_items, outer_seqs)}
    hoisted: set[int] = set()
    constants: dict[int, Node] = {}
    for node in body.nodes:
        if node.op == "constant" and not node.inputs:
            constants[node.out.uid] = node
            continue
        if any(v.uid in body_outputs for v in node.outputs):
            continue
        if node.op not in _NOT_INVARIANT and node.inputs and all(_invariant(v, invariant, constants) for v in node.inputs):
            outer = graph.apply(node.op, [_outer(graph, v, invariant, constants) for v in node.inputs],
                                dict(node.attrs), span=node.span, scope=node.scope, role=node.role)
            invariant.update((v.uid, o) for v, o in zip(node.outputs, outer))
            hoisted.add(id(node))
        elif steps is not None and _maps_over_steps(node, stepwise, invariant, constants):
            args = [stepwise[v.uid] if v.uid in stepwise else _outer(graph, v, invariant, constants) for v in node.inputs]
            try:
                types = OPS[node.op].infer([a.type for a in args], node.attrs)
            except Exception:     # an op whose shape rule refuses the stacked operands stays in the loop
                continue
            if [t.shape for t in types] != [(steps,) + tuple(v.shape) for v in node.outputs]:
                continue
            outer = graph.apply(node.op, args, dict(node.attrs), span=node.span, scope=node.scope, role=node.role)
            stepwise.update((v.uid, o) for v, o in zip(node.outputs, outer))
            hoisted.add(id(node))
    if hoisted:
        _rebuild_body(scan, body, hoisted, stepwise, invariant, outer_carries, nc, ns)


def _invariant(v: Value, invariant: dict, constants: dict) -> bool:
    return v.uid in invariant or v.uid in constants


def _outer(graph: Graph, v: Value, invariant: dict, constants: dict) -> Value:
    """The outer value of an invariant body value; a body constant is copied out when first needed."""
    if v.uid not in invariant:
        node = constants[v.uid]
        invariant[v.uid], = graph.apply("constant", [], dict(node.attrs), span=node.span, scope=node.scope)
    return invariant[v.uid]


def _maps_over_steps(node: Node, stepwise: dict, invariant: dict, constants: dict) -> bool:
    """Whether `node` reads one step of a sequence (and no carry) through an op that commutes with
    stacking steps along a new axis 0."""
    steps = [v for v in node.inputs if v.uid in stepwise]
    if not steps or not all(v.uid in stepwise or _invariant(v, invariant, constants) for v in node.inputs):
        return False
    rank = node.outputs[0].type.rank
    if node.op == "matmul":
        a, b = node.inputs
        return a.uid in stepwise and b.uid not in stepwise and b.type.rank == 2 and a.type.rank >= 1
    if node.op not in ELEMENTWISE:
        return False
    return (all(v.type.rank == rank for v in steps)
            and all(v.type.rank <= rank for v in node.inputs if v.uid not in stepwise))


def _rebuild_body(scan: Node, body: Graph, hoisted: set, stepwise: dict, invariant: dict, outer_carries, nc, ns):
    """A new body without the hoisted nodes: the hoisted values it still reads become new sequence
    items (stacked ones) or captured inputs; inputs nothing reads any more are dropped."""
    kept = [n for n in body.nodes if id(n) not in hoisted]
    read = {v.uid for n in kept for v in n.inputs} | {v.uid for v in body.outputs.values()}
    b_carries, b_items, b_captured = scan_parts(body.inputs, scan.attrs)
    new = Graph(body.name)
    vmap: dict[int, Value] = {}

    def add(v: Value) -> Value:
        vmap[v.uid] = nv = new.add_input(v.name, v.type)
        return nv

    for v in b_carries:
        add(v)
    seq_pairs = [(v, stepwise[v.uid]) for v in b_items if v.uid in read]
    seq_pairs += [(v, stepwise[v.uid]) for n in body.nodes if id(n) in hoisted for v in n.outputs
                  if v.uid in read and v.uid in stepwise]
    if not seq_pairs and b_items:       # the step count comes from a sequence: keep one
        seq_pairs = [(b_items[0], stepwise[b_items[0].uid])]
    captured_pairs = [(v, invariant[v.uid]) for v in b_captured if v.uid in read]
    captured_pairs += [(v, invariant[v.uid]) for n in body.nodes if id(n) in hoisted for v in n.outputs
                       if v.uid in read and v.uid in invariant]
    for v, _ in seq_pairs + captured_pairs:
        add(v)
    new._names |= body._names            # after the inputs, which keep their names
    new.append_copies(kept, vmap)
    new.outputs = {k: vmap[v.uid] for k, v in body.outputs.items()}
    scan.inputs = list(outer_carries) + [o for _, o in seq_pairs] + [o for _, o in captured_pairs]
    # pictures still name the loop after the sequences the user wrote (`a step of price`), not
    # after the hoisted projections it now walks over
    walked = scan.attrs.get("steps_of") or tuple(v.name for v in b_items)
    scan.attrs = scan.attrs | {"body": new, "n_seq": len(seq_pairs), "steps_of": walked}
