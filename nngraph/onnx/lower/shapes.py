"""ONNX lowerings of the shape ops (nngraph/ops/shapes.py)."""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from nngraph.onnx.lower.registry import LOWERINGS, onnx_dims
from nngraph.ops.rules import norm_axis


def _constant_onnx(b, node, inputs):
    return [b.const(node.attrs["value"])]


def _dim_size_onnx(b, node, inputs):
    x = node.inputs[0]
    axes = node.attrs.get("axes")
    axes = list(range(x.type.rank)) if axes is None else [axes] if isinstance(axes, int) else list(axes)
    sizes = b.op("Gather", b.op("Shape", inputs[0]), b.ints(axes), axis=0)
    return [b.op("Cast", b.op("ReduceProd", sizes, keepdims=0), to=b.dtype(node.out.dtype))]


def _transpose_onnx(b, node, inputs):
    perm = node.attrs.get("perm")
    return [b.op("Transpose", inputs[0], perm=list(perm) if perm is not None else None)]


def _reshape_onnx(b, node, inputs):
    return [b.op("Reshape", inputs[0], b.ints(node.attrs["shape"]))]     # 0 copies, -1 infers: as here


def _reshape_like_onnx(b, node, inputs):
    return [b.op("Reshape", inputs[0], b.op("Shape", inputs[1]))]


def _broadcast_like_onnx(b, node, inputs):
    return [b.op("Expand", inputs[0], b.op("Shape", inputs[1]))]       # Expand broadcasts both ways


def _expand_dims_onnx(b, node, inputs):
    return [b.op("Unsqueeze", inputs[0], b.ints(node.attrs["axes"]))]


def _fill_onnx(b, node, inputs):
    parts = [d if isinstance(d, int) else (node.inputs[d[0]], inputs[d[0]], d[1]) for d in node.attrs["dims"]]
    shape = onnx_dims(b, parts)
    value = np.full(1, node.attrs.get("value", 0.0), dtype=node.out.dtype)
    return [b.op("ConstantOfShape", shape, value=numpy_helper.from_array(value))]


def _positions_onnx(b, node, inputs):
    x = node.inputs[0]
    axis = norm_axis(node.attrs.get("axis", 0), x.type.rank)
    size = x.shape[axis]
    if isinstance(size, int):
        return [b.const(np.arange(size, dtype=np.int64))]
    count = b.op("Squeeze", b.op("Shape", inputs[0], start=axis, end=axis + 1), b.ints([0]))
    return [b.op("Range", b.const(0, "int64"), count, b.const(1, "int64"))]


LOWERINGS.update({
    "fill": _fill_onnx,
    "constant": _constant_onnx,
    "dim_size": _dim_size_onnx,
    "transpose": _transpose_onnx,
    "reshape": _reshape_onnx,
    "reshape_like": _reshape_like_onnx,
    "broadcast_like": _broadcast_like_onnx,
    "expand_dims": _expand_dims_onnx,
    "positions": _positions_onnx,
})
