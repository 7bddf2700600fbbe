"""Elementwise kernels: arithmetic, activations (finite for logits of +-1e4), sine, cosine, comparisons, casts."""
from __future__ import annotations

import numpy as np

from nngraph.runtime.numpy.kernels.registry import kernel, simple_kernels

simple_kernels({
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "less": np.less, "less_equal": np.less_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "equal": np.equal, "not_equal": np.not_equal,
    "where": np.where,
})


@kernel("relu")
def relu(x):
    return np.maximum(x, 0).astype(x.dtype, copy=False)


@kernel("sigmoid")
def sigmoid(x):
    # exp of a non-positive number only: no overflow for large |x|
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)


@kernel("tanh")
def tanh(x):
    return np.tanh(x)


@kernel("softplus")
def softplus(x):
    return np.logaddexp(x, 0).astype(x.dtype, copy=False)


@kernel("cast")
def cast(x, dtype):
    return x.astype(dtype)


@kernel("sin")
def sin(x):
    return np.sin(x)


@kernel("cos")
def cos(x):
    return np.cos(x)
