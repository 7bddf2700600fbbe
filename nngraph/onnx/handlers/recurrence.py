"""Recurrence: ONNX Scan as nngraph's scan, its body imported by a nested importer."""
from __future__ import annotations

from nngraph.ir import Graph, Value
from nngraph.onnx.context import Ctx, Reject
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
