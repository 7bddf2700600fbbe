"""ONNX lowerings of the reductions and the softmax family (nngraph/ops/reductions.py)."""
from __future__ import annotations

from nngraph.onnx.lower.registry import LOWERINGS


def _onnx_reduce(op_type: str):
    def lower(b, node, inputs):
        axes = node.attrs.get("axes")
        keep = int(bool(node.attrs.get("keepdims", False)))
        if axes is None:
            return [b.op(op_type, inputs[0], keepdims=keep)]
        axes = [axes] if isinstance(axes, int) else list(axes)
        if not axes:                          # reducing over no axis changes nothing
            return [b.op("Identity", inputs[0])]
        return [b.op(op_type, inputs[0], b.ints(axes), keepdims=keep)]
    return lower


def _axis_onnx(op_type: str):
    return lambda b, node, inputs: [b.op(op_type, inputs[0], axis=node.attrs.get("axis", -1))]


def _argmax_onnx(b, node, inputs):
    return [b.op("ArgMax", inputs[0], axis=node.attrs.get("axis", -1), keepdims=int(node.attrs.get("keepdims", False)))]


LOWERINGS.update({
    "softmax": _axis_onnx("Softmax"),
    "log_softmax": _axis_onnx("LogSoftmax"),
    "argmax": _argmax_onnx,
    "sum": _onnx_reduce("ReduceSum"),
    "mean": _onnx_reduce("ReduceMean"),
    "max": _onnx_reduce("ReduceMax"),
})
