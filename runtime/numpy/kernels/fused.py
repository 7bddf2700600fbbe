"""Kernels of the fused ops: a fused elementwise formula is compiled once per node into closures that
reuse temporaries."""
from __future__ import annotations

import numpy as np

from nngraph.runtime.numpy.kernels.reductions import log_softmax
from nngraph.runtime.numpy.kernels.registry import KERNELS, PREPARE, kernel


@kernel("gemm")
def gemm(a, b, c):
    out = np.matmul(a, b)
    try:
        return np.add(out, c, out=out)    # in place: the product is a fresh array nobody else holds
    except ValueError:                    # the bias broadcasts the result to a larger shape
        return out + c


@kernel("softmax_cross_entropy")
def softmax_cross_entropy(logits, target, axis=-1):
    log_probs = log_softmax(logits, axis)
    return -np.sum(target * log_probs, axis=axis), np.exp(log_probs)


# ufuncs that can write into a temporary of the fused tree instead of allocating a new array
_IN_PLACE = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "neg": np.negative,
             "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "abs": np.abs}


@kernel("fused")
def fused(*inputs, expr):
    return _compiled(expr)(inputs)[0]


def _prepare_fused(attrs):
    evaluate = _compiled(attrs["expr"])
    return lambda *inputs: evaluate(inputs)[0]


PREPARE["fused"] = _prepare_fused


def _compiled(expr):
    """A function inputs -> (value of `expr`, whether it is a temporary of this evaluation and so
    safe to overwrite), built once per formula so a call costs only the NumPy work."""
    arg_fns = [_leaf(a) if isinstance(a, int) else _compiled(a) for a in expr.args]
    ufunc, op_kernel, attrs = _IN_PLACE.get(expr.op), KERNELS[expr.op], dict(expr.attrs)

    def evaluate(inputs):
        args, temps = [], []
        for fn in arg_fns:
            value, temp = fn(inputs)
            args.append(value)
            if temp and isinstance(value, np.ndarray):
                temps.append(value)
        if ufunc is not None and temps:
            try:
                return ufunc(*args, out=temps[0]), True
            except ValueError:       # the result is larger than the temporary (it broadcasts)
                pass
        return op_kernel(*args, **attrs), True
    return evaluate


def _leaf(index: int):
    return lambda inputs: (inputs[index], False)
