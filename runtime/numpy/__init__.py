"""The NumPy backend: nngraph's reference semantics and its default runtime.

`evaluate` is the one door through which the rest of nngraph (constant folding, the ONNX
importer) computes an op's value at compile time.
"""
from __future__ import annotations

import numpy as np


def evaluate(op: str, inputs, attrs: dict):
    """The value of one op applied to arrays: an array, or a tuple for ops with several outputs."""
    from nngraph.runtime.executor import KERNELS     # the executor registers `scan`
    return KERNELS[op](*(np.asarray(a) for a in inputs), **attrs)
