"""ONNX lowering of `scan` as ONNX Scan (nngraph/ops/recurrence.py)."""
from __future__ import annotations

import numpy as np

from nngraph.ir.types import TensorType
from nngraph.onnx.lower.registry import LOWERINGS
from nngraph.ops.recurrence import scan_parts


def _scan_onnx(b, node, inputs):
    """ONNX Scan: reversed scans read their sequences from the end and prepend their results, so
    result t stays at position t as here. A scan with a step count only scans a dummy sequence."""
    attrs, body = node.attrs, node.attrs["body"]
    carries, seqs, captured = scan_parts(inputs, attrs)
    extra = []
    if not seqs:
        seqs, extra = [b.const(np.zeros(attrs["length"], np.float32))], [TensorType("float32", ())]
    n_saved = len(carries) if attrs.get("save_carries") else 0
    graph = b.lower_body(body, len(carries) + attrs["n_seq"], captured, extra, echo_inputs=n_saved)
    n_results = len(body.outputs) - len(carries) + n_saved
    direction = int(bool(attrs.get("reverse")))
    outputs = b.op("Scan", *carries, *seqs, n_outputs=len(node.outputs), body=graph, num_scan_inputs=len(seqs),
                   scan_input_directions=[direction] * len(seqs),
                   scan_output_directions=[direction] * n_results or None)
    return outputs if isinstance(outputs, list) else [outputs]


LOWERINGS.update({
    "scan": _scan_onnx,
})
