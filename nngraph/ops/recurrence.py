"""Recurrence: `scan`, a loop whose body is a subgraph; its gradient is backpropagation through time."""
from __future__ import annotations

from nngraph.ir.backprop import backprop, on_path, zeros_like
from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Graph, Value
from nngraph.ir.registry import defop
from nngraph.ops.rules import fmt_shape, require

# ---------------------------------------------------------------- recurrence
# scan(carries..., sequences..., captured...) runs attrs["body"], a Graph, once per step along
# axis 0 of the sequences (or `length` times when there are none). The body's inputs are the
# carries, one step of each sequence, and the captured outer values (parameters, say); its
# outputs are the new carries, then the per-step results, which scan stacks along a new axis 0.
# Outputs: the final carries, the stacked results, and with `save_carries` the carry each step
# started from (stacked), which backpropagation through time reads.

def scan_parts(node_or_types, attrs) -> tuple[list, list, list]:
    items = node_or_types
    nc, ns = attrs["n_carry"], attrs["n_seq"]
    return list(items[:nc]), list(items[nc:nc + ns]), list(items[nc + ns:])


def _scan_infer(types, attrs):
    body = attrs["body"]
    carries, seqs, captured = scan_parts(types, attrs)
    require(len(body.inputs) == len(types),
           f"the scan body takes {len(body.inputs)} inputs but the scan gives it {len(types)}")
    if seqs:
        require(all(s.rank >= 1 for s in seqs), "a scanned sequence needs an axis to walk along")
        steps = seqs[0].shape[0]
        require(all(s.shape[0] == steps for s in seqs), "scanned sequences must have the same length, got "
               + " and ".join(fmt_shape(s.shape) for s in seqs))
    else:
        steps = attrs["length"]
    given = carries + [s.with_shape(s.shape[1:]) for s in seqs] + captured
    for v, t in zip(body.inputs, given):
        require(v.type == t, f"the scan body's input `{v.name}` is {v.type} but receives {t}")
    results = list(body.outputs.values())
    require(len(results) >= len(carries), "the scan body must return every carry")
    for c, new in zip(carries, results):
        require(new.type == c, f"a carry enters the step as {c} but leaves it as {new.type}: "
                              "a carry must keep its type from step to step")
    stacked = [y.type.with_shape((steps,) + y.shape) for y in results[len(carries):]]
    saved = [c.with_shape((steps,) + c.shape) for c in carries] if attrs.get("save_carries") else []
    return carries + stacked + saved


def _scan_vjp(e, n, gs, w):
    """Backpropagation through time: the forward scan is run again saving the carry of every
    step, then a scan in the opposite direction runs the body's own VJP step by step, carrying
    the gradient of the carry and summing the gradients of the captured values."""
    attrs, body = n.attrs, n.attrs["body"]
    carries, seqs, captured = scan_parts(n.inputs, attrs)
    nc, ny = len(carries), len(body.outputs) - len(carries)
    if attrs.get("save_carries"):
        saved = n.outputs[nc + ny:]
    else:
        saved = e.many("scan", *n.inputs, **(attrs | {"save_carries": True}))[nc + ny:]
    # autodiff hands scalar zeros for outputs nothing reads; scanned inputs need their full shape
    g_final = [_full(e, g, out) for g, out in zip(gs[:nc], n.outputs[:nc])]
    g_steps = [_full(e, g, out) for g, out in zip(gs[nc:nc + ny], n.outputs[nc:nc + ny])]
    sums = [e("broadcast_like", e.const(0, c), c) for c in captured]
    back = scan_backward_body(body, nc, len(seqs))
    outs = e.many("scan", *g_final, *sums, *saved, *seqs, *g_steps, *captured, body=back,
                  n_carry=nc + len(captured), n_seq=nc + len(seqs) + ny, reverse=not attrs.get("reverse", False),
                  length=attrs.get("length"))
    d_carries, d_captured, d_seqs = outs[:nc], outs[nc:nc + len(captured)], outs[nc + len(captured):]
    return [d if want else None for d, want in zip(d_carries + d_seqs + d_captured, w)]


def _full(e, g, like):
    return g if g.shape == like.shape else e("broadcast_like", g, like)


defop("scan", _scan_infer, _scan_vjp)


def scan_backward_body(body: Graph, n_carry: int, n_seq: int) -> Graph:
    """The body of the reverse scan that differentiates a scan over `body`. Per step it takes
    (carry gradients, sums of captured gradients, the carries the forward step started from,
    the step's sequence items, the gradients of the step's results, the captured values),
    recomputes the forward step, runs its VJP, and returns (gradients of the carries before the
    step, the sums plus this step's captured gradients, the gradients of the sequence items)."""
    n_captured = len(body.inputs) - n_carry - n_seq
    results = list(body.outputs.values())
    g = Graph(f"{body.name}_grad")
    types = [v.type for v in body.inputs]
    d_carry = [g.add_input(f"d_{v.name}", v.type) for v in body.inputs[:n_carry]]
    sums = [g.add_input(f"sum_d_{v.name}", v.type) for v in body.inputs[n_carry + n_seq:]]
    forward_in = [g.add_input(v.name, t) for v, t in zip(body.inputs[:n_carry + n_seq], types)]
    d_results = [g.add_input(f"d_{v.name}", v.type) for v in results[n_carry:]]
    captured = [g.add_input(v.name, v.type) for v in body.inputs[n_carry + n_seq:]]
    inputs = forward_in + captured
    outs = g.inline(body, inputs)
    e = Emitter(g, role="backward")
    seeds: dict[int, Value] = {}
    for out, d in zip(outs, d_carry + d_results):
        seeds[out.uid] = d if out.uid not in seeds else e("add", seeds[out.uid], d)
    grads = backprop(g, seeds, on_path(g, inputs, outs))
    d_inputs = [grads.get(v.uid) or zeros_like(e, v) for v in inputs]
    d_carry_before = d_inputs[:n_carry]
    d_items = d_inputs[n_carry:n_carry + n_seq]
    new_sums = [e("add", s, d) for s, d in zip(sums, d_inputs[n_carry + n_seq:])]
    for i, v in enumerate(d_carry_before + new_sums + d_items):
        g.outputs[f"out{i}"] = v
    assert len(captured) == n_captured
    return g.prune()
