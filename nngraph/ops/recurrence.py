"""Recurrence: `scan`, a loop whose body is a subgraph; its gradient is backpropagation through time."""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from nngraph.diagnostics import NNError
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


@dataclass
class ResidualPolicy:
    """What backpropagation through time keeps of the forward scan (see README, "Scan memory").

    - "save": the forward scan stacks, for every step, the values the body's VJP reads (gate
      activations, say): the reverse scan only differentiates. Memory: steps x those values.
    - "recompute": the forward scan keeps only the carry each step started from; the reverse scan
      recomputes each step (the passes then hoist that recomputation out of the loop where it
      needs no carry). Memory: steps x carries.
    - "auto" (default): "save" when steps x the residuals' bytes fit in `budget_bytes`, else
      "recompute". A symbolic dimension (the batch N) counts as `symbolic_dim` in that estimate.

    Set it in the environment (NNGRAPH_SCAN_RESIDUALS=auto|save|recompute,
    NNGRAPH_SCAN_BUDGET_MB) or for a block of code with `with RESIDUALS.override(mode=...)`; it is
    read when a gradient graph is built (compile, train_step, export)."""
    mode: str = "auto"
    budget_bytes: int = 256 << 20
    symbolic_dim: int = 256

    def allows(self, steps, values) -> bool:
        if self.mode not in ("auto", "save", "recompute"):
            raise NNError(f"the scan residual policy must be auto, save or recompute, not {self.mode!r}",
                          hint="set NNGRAPH_SCAN_RESIDUALS to auto, save or recompute")
        if self.mode != "auto":
            return self.mode == "save"
        if self.budget_bytes < 0:
            raise NNError("NNGRAPH_SCAN_BUDGET_MB must be a number of megabytes, "
                          f"not {os.environ.get('NNGRAPH_SCAN_BUDGET_MB')!r}")
        return self._count(steps) * sum(self._bytes(v.type) for v in values) <= self.budget_bytes

    def _count(self, dim) -> int:
        return dim if isinstance(dim, int) else self.symbolic_dim

    def _bytes(self, t) -> int:
        return math.prod(self._count(d) for d in t.shape) * np.dtype(t.dtype).itemsize

    @contextmanager
    def override(self, **settings):
        before = {k: getattr(self, k) for k in settings}
        for k, v in settings.items():
            setattr(self, k, v)
        try:
            yield self
        finally:
            for k, v in before.items():
                setattr(self, k, v)


def _budget_from_environment() -> int:
    text = os.environ.get("NNGRAPH_SCAN_BUDGET_MB", "256")
    try:
        return int(float(text) * (1 << 20))
    except ValueError:      # reported when a gradient is built, like a bad mode: importing must not fail
        return -1


RESIDUALS = ResidualPolicy(mode=os.environ.get("NNGRAPH_SCAN_RESIDUALS", "auto"), budget_bytes=_budget_from_environment())


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
    """Backpropagation through time: a scan in the opposite direction runs the body's own VJP step
    by step, carrying the gradient of the carry and summing the gradients of the captured values.
    What that VJP reads of the forward step (gate activations, say) the forward scan itself keeps,
    as extra stacked results, when RESIDUALS allows the memory; otherwise the forward scan saves
    only the carry each step started from and the reverse scan recomputes the step."""
    attrs, body = n.attrs, n.attrs["body"]
    carries, seqs, captured = scan_parts(n.inputs, attrs)
    nc, ny = len(carries), len(body.outputs) - len(carries)
    back, forward = scan_backward_body(body, nc, len(seqs), keep_residuals=not attrs.get("save_carries"))
    n_res = len(forward.outputs) - len(body.outputs) if forward is not None else 0
    if n_res and RESIDUALS.allows(_steps(n), list(forward.outputs.values())[-n_res:]):
        # the forward scan itself (not a second one) keeps the residuals: it gets the body that
        # also returns them, and their stacked values and the saved carries as outputs
        steps = _steps(n)
        res_types = [v.type.with_shape((steps,) + tuple(v.shape)) for v in list(forward.outputs.values())[-n_res:]]
        n.attrs = attrs | {"body": forward, "save_carries": True}
        name = e.graph.fresh_name
        residuals = [Value(name(f"{n.outputs[0].name}.residual"), t, n, n.span) for t in res_types]
        saved = [Value(name(f"{n.outputs[0].name}.saved"), c.type.with_shape((steps,) + tuple(c.shape)), n, n.span)
                 for c in carries]
        n.outputs = n.outputs[:nc + ny] + residuals + saved
    else:
        back, residuals = scan_backward_body(body, nc, len(seqs))[0], []
        if attrs.get("save_carries"):
            saved = n.outputs[nc + ny:]
        else:
            saved = e.many("scan", *n.inputs, **(attrs | {"save_carries": True}))[nc + ny:]
    # autodiff hands scalar zeros for outputs nothing reads; scanned inputs need their full shape
    g_final = [_full(e, g, out) for g, out in zip(gs[:nc], n.outputs[:nc])]
    g_steps = [_full(e, g, out) for g, out in zip(gs[nc:nc + ny], n.outputs[nc:nc + ny])]
    sums = [e("broadcast_like", e.const(0, c), c) for c in captured]
    outs = e.many("scan", *g_final, *sums, *saved, *seqs, *g_steps, *residuals, *captured, body=back,
                  n_carry=nc + len(captured), n_seq=nc + len(seqs) + ny + len(residuals),
                  reverse=not attrs.get("reverse", False), length=attrs.get("length"))
    d_carries, d_captured, d_seqs = outs[:nc], outs[nc:nc + len(captured)], outs[nc + len(captured):]
    return [d if want else None for d, want in zip(d_carries + d_seqs + d_captured, w)]


def _steps(n):
    seqs = scan_parts(n.inputs, n.attrs)[1]
    return seqs[0].shape[0] if seqs else n.attrs["length"]


def _full(e, g, like):
    return g if g.shape == like.shape else e("broadcast_like", g, like)


defop("scan", _scan_infer, _scan_vjp)


def scan_backward_body(body: Graph, n_carry: int, n_seq: int, keep_residuals: bool = False):
    """The body of the reverse scan that differentiates a scan over `body`. Per step it takes
    (carry gradients, sums of captured gradients, the carries the forward step started from,
    the step's sequence items, the gradients of the step's results, [residuals,] the captured
    values), runs the step's VJP, and returns (gradients of the carries before the step, the sums
    plus this step's captured gradients, the gradients of the sequence items).

    Without `keep_residuals` it recomputes the forward step and returns (body, None). With it, the
    forward values the VJP reads that change from step to step become per-step inputs (after the
    result gradients), and it returns (body, forward body returning them too, after its own
    outputs); when there are none, (recomputing body, None)."""
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
    n_forward = len(g.nodes)
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
    forward = _keep_residuals(g, n_forward, inputs, n_carry + n_seq, outs, body) if keep_residuals else None
    return g.prune(), forward


def _keep_residuals(g: Graph, n_forward: int, inputs: list, n_varying: int, outs: list, body: Graph):
    """Cut the recomputed forward step out of backward body `g` (its first `n_forward` nodes): each
    forward value a backward node or output reads becomes a new input of `g`, unless it is the same
    every step (it depends on captured values and constants only: recomputing it is cheaper than
    stacking it). Returns the forward body that also returns those values, or None if none."""
    forward_nodes, backward_nodes = g.nodes[:n_forward], g.nodes[n_forward:]
    varying = {v.uid for v in inputs[:n_varying]}
    for node in forward_nodes:
        if any(v.uid in varying for v in node.inputs):
            varying.update(v.uid for v in node.outputs)
    produced = {v.uid: v for node in forward_nodes for v in node.outputs}
    wanted: dict[int, Value] = {}
    for v in [v for node in backward_nodes for v in node.inputs] + list(g.outputs.values()):
        if v.uid in produced and v.uid in varying:
            wanted.setdefault(v.uid, v)
    if not wanted:
        return None
    # the forward body: the inlined step as it is now (a nested scan's VJP may have extended it)
    fwd = Graph(body.name)
    vmap = {v.uid: fwd.add_input(b.name, b.type) for v, b in zip(inputs, body.inputs)}   # names kept as they were
    fwd._names |= body._names
    fwd.append_copies(forward_nodes, vmap)
    fwd.outputs = {k: vmap[v.uid] for k, v in zip(body.outputs, outs)}
    for i, v in enumerate(wanted.values()):
        fwd.outputs[fwd.fresh_name(f"residual{i}")] = vmap[v.uid]
    # the backward body reads them as per-step inputs placed after the result gradients
    first_captured = len(g.inputs) - (len(inputs) - n_varying)
    new_inputs = [Value(g.fresh_name(f"res_{v.name}"), v.type) for v in wanted.values()]
    g.inputs[first_captured:first_captured] = new_inputs
    swap = {uid: nv for uid, nv in zip(wanted, new_inputs)}
    for node in backward_nodes:
        node.inputs = [swap.get(v.uid, v) for v in node.inputs]
    g.outputs = {k: swap.get(v.uid, v) for k, v in g.outputs.items()}
    return fwd.prune()
