"""Kernels of the fused ops: a fused elementwise formula is compiled once per node into closures that
reuse temporaries; GELU and attention compute in place in the arrays they allocate."""
from __future__ import annotations

import numpy as np

from nngraph.ops.fused import GELU_CUBIC, SQRT_2_OVER_PI
from nngraph.runtime.numpy.kernels.elementwise import erf
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


@kernel("gelu")
def gelu(x, approximate="none"):
    one, half = x.dtype.type(1), x.dtype.type(0.5)
    if approximate == "tanh":       # 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))
        u = np.multiply(x, x)
        np.multiply(u, x.dtype.type(GELU_CUBIC), out=u)
        np.add(u, one, out=u)
        np.multiply(u, x, out=u)
        np.multiply(u, x.dtype.type(SQRT_2_OVER_PI), out=u)
        np.tanh(u, out=u)
    else:                           # 0.5 x (1 + erf(x / sqrt 2))
        u = erf(np.multiply(x, x.dtype.type(np.sqrt(0.5))))
    np.add(u, one, out=u)
    np.multiply(u, x, out=u)
    return np.multiply(u, half, out=u)


@kernel("attention")
def attention(q, k, v, mask, scale):
    """softmax(scale q k^T + mask) @ v, the scores turned into the weights in place (one array);
    the scale multiplies q, the smaller operand when keys are longer than the head size."""
    weights = np.matmul(np.multiply(q, q.dtype.type(scale)), np.swapaxes(k, -1, -2))
    if mask.ndim or mask != 0:          # a scalar 0 masks nothing
        if np.broadcast_shapes(weights.shape, mask.shape) == weights.shape:
            np.add(weights, mask, out=weights)
        else:                           # the mask has leading axes q and k lack
            weights = weights + mask
    np.subtract(weights, row_max(weights), out=weights)
    np.exp(weights, out=weights)
    total = row_sum(weights)
    np.multiply(weights, np.reciprocal(total, out=total), out=weights)
    return np.matmul(weights, v), weights


def row_max(x):
    """x.max(-1, keepdims=True), by halving the last axis with elementwise maxima while its length
    is even: NumPy's max over a short contiguous axis is ~3x slower than these passes together."""
    while x.shape[-1] > 1 and x.shape[-1] % 2 == 0:
        half = x.shape[-1] // 2
        x = np.maximum(x[..., :half], x[..., half:])
    return x if x.shape[-1] == 1 else x.max(axis=-1, keepdims=True)


def row_sum(x):
    """x.sum(-1, keepdims=True) as a matrix-vector product: BLAS sums short rows ~4x faster."""
    return np.matmul(x, np.ones(x.shape[-1], x.dtype))[..., None]


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


def fused_into(expr, positions):
    """The fused kernel allowed to overwrite its inputs at `positions` (each read once in the
    formula), for the executor's buffer reuse (runtime/numpy/inplace.py) when they die at the node."""
    evaluate = _compiled(expr, frozenset(positions))
    return lambda *inputs: evaluate(inputs)[0]


def _compiled(expr, owned: frozenset = frozenset()):
    """A function inputs -> (value of `expr`, whether it is a temporary of this evaluation and so
    safe to overwrite), built once per formula so a call costs only the NumPy work. The inputs at
    `owned` positions may be overwritten too."""
    arg_fns = [_leaf(a, a in owned) if isinstance(a, int) else _compiled(a, owned) for a in expr.args]
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


def _leaf(index: int, owned: bool = False):
    return lambda inputs: (inputs[index], owned)
