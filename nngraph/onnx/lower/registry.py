"""The ONNX lowering table and the helpers lowerings of several families share.

A lowering is ``lower(b, node, inputs) -> [output names]``: `b` is nngraph.onnx.export.Builder
(b.op(op_type, *inputs, n_outputs=1, **attrs), b.const(array), b.ints(values), b.dtype(name),
b.lower(node, inputs) for a made-up node, b.lower_body(...) for a loop body), `inputs` the ONNX
names of the node's inputs. Opset 18.
"""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from nngraph.ir.graph import Value

LOWERINGS: dict = {}      # op name -> lower(b, node, inputs)


def same(op_type: str, **fixed):
    """An op that is one ONNX operator with the same inputs."""
    return lambda b, node, inputs: [b.op(op_type, *inputs, **fixed)]


def onnx_shape(b, value: Value, name: str, axes=None) -> str:
    """The sizes of some axes of `value` (default all) as an int64 vector: a constant where they
    are known at compile time, else read with Shape."""
    axes = list(range(value.type.rank)) if axes is None else list(axes)
    dims = [value.shape[a] for a in axes]
    if all(isinstance(d, int) for d in dims):
        return b.ints(dims)
    whole = b.op("Shape", name)
    if axes == list(range(value.type.rank)):
        return whole
    return b.op("Gather", whole, b.ints(axes), axis=0)


def onnx_dims(b, parts) -> str:
    """An int64 vector from ints and (value, name, axis) triples (a size read at run time)."""
    if all(isinstance(p, int) or isinstance(p[0].shape[p[2]], int) for p in parts):
        return b.ints([p if isinstance(p, int) else p[0].shape[p[2]] for p in parts])
    pieces = [b.ints([p]) if isinstance(p, int) else b.op("Shape", p[1], start=p[2], end=p[2] + 1) for p in parts]
    return b.op("Concat", *pieces, axis=0)


def onnx_zeros(b, shape: str, dtype: str) -> str:
    return b.op("ConstantOfShape", shape, value=numpy_helper.from_array(np.zeros(1, dtype=dtype)))
