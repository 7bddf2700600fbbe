"""Recurrence: ONNX Scan as nngraph's scan, its body imported by a nested importer; ONNX RNN, GRU and
LSTM as scans over cells (handlers/cells.py)."""
from __future__ import annotations

import numpy as np

from nngraph.ir import Graph, Value
from nngraph.onnx.context import Ctx, Reject
from nngraph.onnx.handlers.cells import CellSpec, activations, build_cell
from nngraph.onnx.handlers.common import need_float, slice_axis, squeeze
from nngraph.onnx.handlers.registry import handles


# ---------------------------------------------------------------- loops
@handles("Scan")
def _scan(cx: Ctx) -> list[Value]:
    """ONNX Scan (opset 9+) is nngraph's scan: the initial states are the carries, the scan
    inputs the sequences (along axis 0, all in one direction), and whatever the body reads from
    the enclosing graph the captured values."""
    if cx.opset < 9:
        raise Reject("Scan before opset 9 (a batch axis and sequence_lens)")
    body_proto, n_seq = cx.attr("body"), cx.attr("num_scan_inputs")
    if body_proto is None or n_seq is None:
        raise Reject("no body or no num_scan_inputs")
    values = [cx.x(i) for i in range(cx.n)]
    if not 0 < n_seq <= len(values):
        raise Reject(f"num_scan_inputs={n_seq} with {len(values)} inputs")
    carries, seqs = values[:len(values) - n_seq], values[len(values) - n_seq:]
    n_results = len(body_proto.output) - len(carries)
    if n_results < 0:
        raise Reject("a body that does not return every state")
    reverse = _scan_reverse(cx, n_seq, n_results)
    _scan_axes_are_zero(cx, "scan_input_axes", [s.type.rank for s in seqs])
    _scan_axes_are_zero(cx, "scan_output_axes", [None] * n_results)
    if any(s.type.rank == 0 for s in seqs):
        raise Reject("a 0-d scan input")
    formal = [c.type for c in carries] + [s.type.with_shape(s.shape[1:]) for s in seqs]
    # a nested Importer, reached through cx.imp: handlers do not import the importer (it imports them)
    child = type(cx.imp)(body_proto, cx.opset, cx.imp.path, {}, body_proto.name or "body", parent=cx.imp)
    body, captured = child.run_body(formal)
    seqs, length = _drop_unused_sequences(body, len(carries), seqs)
    return cx.many("scan", *carries, *seqs, *captured, body=body, n_carry=len(carries), n_seq=len(seqs),
                   reverse=reverse, length=length)


def _scan_reverse(cx: Ctx, n_seq: int, n_results: int) -> bool:
    """nngraph's scan walks every sequence one way and keeps result t at position t: ONNX's
    directions all 0, or all 1 (read from the end, prepend the results)."""
    directions = [int(d) for d in (cx.attr("scan_input_directions", None) or [0] * n_seq)] + \
                 [int(d) for d in (cx.attr("scan_output_directions", None) or [0] * n_results)]
    if set(directions) - {0, 1}:
        raise Reject("scan directions other than 0 and 1")
    if len(set(directions)) > 1:
        raise Reject("scan directions that differ")
    return directions[:1] == [1]


def _scan_axes_are_zero(cx: Ctx, name: str, ranks: list) -> None:
    """Axis 0 (also written -rank for inputs) is the only axis nngraph's scan walks and stacks on."""
    for axis, rank in zip(cx.attr(name, None) or [], ranks):
        if int(axis) != 0 and not (rank is not None and int(axis) == -rank):
            raise Reject(f"{name} other than 0")


def _drop_unused_sequences(body: Graph, n_carry: int, seqs: list[Value]) -> tuple[list[Value], int | None]:
    """A sequence the body never reads only counts the steps (nngraph's exporter writes a scan
    over a number of steps that way): with a known length it goes, and the scan runs `length`
    steps."""
    used = {v.uid for n in body.nodes for v in n.inputs} | {v.uid for v in body.outputs.values()}
    formal = body.inputs[n_carry:n_carry + len(seqs)]
    unused = [i for i, v in enumerate(formal) if v.uid not in used]
    keep = [i for i in range(len(seqs)) if i not in unused]
    length = None
    if not keep:
        length = next((s.shape[0] for s in seqs if isinstance(s.shape[0], int)), None)
        if length is None:
            return seqs, None
    for i in reversed(unused):
        body.inputs.remove(formal[i])
    return [seqs[i] for i in keep], length


# ---------------------------------------------------------------- recurrent layers
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
DIRECTIONS = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}


@handles("RNN", "GRU", "LSTM")
def _recurrent(cx: Ctx) -> list[Value]:
    """ONNX's recurrent layers as one nngraph scan per direction over a cell like the standard
    library's (handlers/cells.py): trained by backpropagation through time, drawn as a cell.
    Inputs X, W, R, B, sequence_lens, initial_h (, initial_c, P for an LSTM); outputs Y
    [T, directions, B, H], Y_h (and Y_c) [directions, B, H], batch first with layout 1."""
    kind = cx.node.op_type
    x = cx.x(0)
    need_float(cx, x)
    if x.type.rank != 3:
        raise Reject(f"X of rank {x.type.rank}")
    layout = cx.attr("layout", 0)
    if layout not in (0, 1):
        raise Reject(f"layout {layout}")
    if layout == 1:            # batch first: the scan walks the first axis
        x = cx.op("transpose", x, perm=(1, 0, 2))
    direction = cx.attr("direction", "forward")
    if direction not in DIRECTIONS:
        raise Reject(f"direction {direction}")
    reverses = DIRECTIONS[direction]
    w, r = cx.x(1), cx.x(2)
    hidden = cx.attr("hidden_size") or r.shape[-1]
    G, D = GATES[kind], len(reverses)
    if not isinstance(hidden, int) or w.shape[:2] != (D, G * hidden) or r.shape != (D, G * hidden, hidden):
        raise Reject(f"W {list(w.shape)} and R {list(r.shape)} for {D} direction(s) of hidden size {hidden}")
    names = [a.decode() if isinstance(a, bytes) else a for a in (cx.attr("activations") or [])] \
        or DEFAULT_ACTIVATIONS[kind]
    n_acts = len(DEFAULT_ACTIVATIONS[kind])
    if len(names) == n_acts and D == 2:      # onnxruntime reads one list for both directions too
        names = names * 2
    if len(names) != n_acts * D:
        raise Reject(f"{len(names)} activations for {D} direction(s)")
    acts = activations(names, cx.attr("activation_alpha") or [], cx.attr("activation_beta") or [])
    cx.ignore("output_sequence")      # opset 1: Y is computed whenever it is asked for
    spec = CellSpec(kind, hidden, [], clip=cx.attr("clip"), biased=cx.has(3),
                    peepholes=kind == "LSTM" and cx.has(7), input_forget=bool(cx.attr("input_forget", 0)),
                    linear_before_reset=bool(cx.attr("linear_before_reset", 0)))
    running, order = _sequence_lengths(cx, x)
    spec.masked = running is not None
    ys, finals = [], []
    for d, reverse in enumerate(reverses):
        spec.acts = acts[d * n_acts:(d + 1) * n_acts]
        xs = x if order is None or not reverse else _reorder(cx, x, order)
        part = "cell" if D == 1 else "backwards" if reverse else "forwards"     # the cell's scope, as drawn
        y, carries = _direction(cx, spec, d, part, reverse and order is None, xs, running, layout)
        if order is not None and reverse:      # back to time order, each sequence on its own
            y = _reorder(cx, y, order)
        ys.append(cx.op("expand_dims", y, axes=(1,)))
        finals.append([cx.op("expand_dims", c, axes=(0,)) for c in carries])
    y = ys[0] if D == 1 else cx.op("concat", *ys, axis=1)
    states = [f[0] if D == 1 else cx.op("concat", *f, axis=0) for f in zip(*finals)]
    if layout == 1:
        y = cx.op("transpose", y, perm=(2, 0, 1, 3))
        states = [cx.op("transpose", s, perm=(1, 0, 2)) for s in states]
    return [y, *states]


def _direction(cx: Ctx, spec: CellSpec, d: int, part: str, reverse: bool, xs: Value, running: Value | None,
               layout: int):
    """One direction's scan: its slice of the stacked weights, as the cell multiplies by them."""
    def mine(i: int, axis: int = 0) -> Value:       # this direction's part of input i
        return squeeze(cx, slice_axis(cx, cx.x(i), axis, d, d + 1), [axis])

    weights = [cx.op("transpose", mine(1)), cx.op("transpose", mine(2))]
    if spec.biased:
        both, GH = mine(3), GATES[spec.kind] * spec.hidden
        wb, rb = slice_axis(cx, both, 0, 0, GH), slice_axis(cx, both, 0, GH, 2 * GH)
        weights += [wb, rb] if spec.kind == "GRU" else [cx.op("add", wb, rb)]
    if spec.peepholes:
        weights.append(mine(7))
    # initial states are [directions, B, H], or [B, directions, H] with layout 1
    carries = [mine(5, layout) if cx.has(5) else _zeros(cx, xs, spec.hidden)]
    if spec.kind == "LSTM":
        carries.append(mine(6, layout) if cx.has(6) else _zeros(cx, xs, spec.hidden))
    for c in carries:
        if c.dtype != xs.dtype or c.shape[1:] != (spec.hidden,):
            raise Reject(f"an initial state {c.dtype}{list(c.shape)} for hidden size {spec.hidden}")
    scope = f"{cx.node.name or next((o for o in cx.node.output if o), spec.kind.lower())}.{part}"
    body = build_cell(spec, xs.type.with_shape(xs.shape[1:]), carries[0].type, [v.type for v in weights], scope)
    cx.imp.graph.scope_labels.update(body.scope_labels)
    seqs = [xs] + ([running] if running is not None else [])
    outs = cx.many("scan", *carries, *seqs, *weights, body=body, n_carry=len(carries), n_seq=len(seqs),
                   reverse=reverse, length=None)
    return outs[len(carries)], outs[:len(carries)]


def _zeros(cx: Ctx, xs: Value, hidden: int) -> Value:
    """The default initial state: zeros [B, H], B read from X at run time if symbolic."""
    return cx.op("fill", xs, dims=((0, 1), hidden), value=0.0, dtype=xs.dtype)


def _sequence_lengths(cx: Ctx, x: Value) -> tuple[Value | None, Value | None]:
    """With sequence_lens: `running` [T, B, 1] (step t of sequence b exists), and for the reverse
    direction `order` [B, T, T], the one-hot permutation that reverses each sequence's own steps
    (steps past its end stay where they are). None, None when every sequence is whole."""
    if not cx.has(4):
        return None, None
    lengths = cx.x(4)
    known = cx.imp.static(lengths)
    if known is not None and isinstance(x.shape[0], int) and np.all(known == x.shape[0]):
        return None, None
    lengths = cx.op("cast", lengths, dtype="int64")
    steps = cx.op("expand_dims", cx.op("positions", x, axis=0), axes=(1,))         # [T, 1]
    running = cx.op("less", steps, lengths)                                          # [T, B]
    order, T = None, x.shape[0]
    if cx.attr("direction", "forward") != "forward":
        if not isinstance(T, int):
            raise Reject("sequence_lens with a reverse direction and a symbolic number of steps")
        back = cx.op("sub", cx.op("sub", lengths, cx.const(1, "int64")), steps)        # len - 1 - t
        source = cx.op("where", running, back, cx.op("broadcast_like", steps, running))
        order = cx.op("one_hot", cx.op("transpose", source, perm=(1, 0)), depth=T, dtype=x.dtype)
    return cx.op("expand_dims", running, axes=(2,)), order


def _reorder(cx: Ctx, x: Value, order: Value) -> Value:
    """x [T, B, F] with each batch entry's steps permuted by order [B, T, T] (a matmul: differentiable)."""
    batch_first = cx.op("transpose", x, perm=(1, 0, 2))
    return cx.op("transpose", cx.op("matmul", order, batch_first), perm=(1, 0, 2))
