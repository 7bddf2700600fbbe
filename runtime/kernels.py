"""NumPy kernels, one per op, registered under the op's name in nngraph/ops.py.

A kernel takes the input arrays and the node's attributes and returns one array (or a tuple for
ops with several outputs). Kernels are short and numerically careful: softplus, sigmoid,
softmax and log_softmax stay finite for logits of +-1e4.
"""
from __future__ import annotations

import functools

import numpy as np

KERNELS: dict = {}


def kernel(name: str):
    def register(fn):
        KERNELS[name] = fn
        return fn
    return register


def _simple(name: str, fn) -> None:
    KERNELS[name] = lambda *arrays, **attrs: fn(*arrays)


for _name, _fn in {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "less": np.less, "less_equal": np.less_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "equal": np.equal, "not_equal": np.not_equal,
    "where": np.where, "matmul": np.matmul,
}.items():
    _simple(_name, _fn)


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


@kernel("softmax")
def softmax(x, axis=-1):
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


@kernel("log_softmax")
def log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@kernel("cast")
def cast(x, dtype):
    return x.astype(dtype)


@kernel("argmax")
def argmax(x, axis=-1, keepdims=False):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int64)


@kernel("one_hot")
def one_hot(indices, depth, dtype="float32"):
    return (indices[..., None] == np.arange(depth)).astype(dtype)


@kernel("fill")
def fill(*refs, dims, value=0.0, dtype="float32"):
    return np.full([d if isinstance(d, int) else refs[d[0]].shape[d[1]] for d in dims], value, dtype=dtype)


@kernel("constant")
def constant(value):
    return value


def _axes(axes):
    return None if axes is None else tuple(axes) if not isinstance(axes, int) else axes


@kernel("sum")
def reduce_sum(x, axes=None, keepdims=False):
    return np.sum(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype)


@kernel("mean")
def reduce_mean(x, axes=None, keepdims=False):
    return np.mean(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype)


@kernel("max")
def reduce_max(x, axes=None, keepdims=False):
    return np.max(x, axis=_axes(axes), keepdims=keepdims)


@kernel("dim_size")
def dim_size(x, axes=None, dtype="float32"):
    axes = range(x.ndim) if axes is None else axes
    return np.asarray(np.prod([x.shape[a] for a in axes]), dtype=dtype)


@kernel("transpose")
def transpose(x, perm=None):
    return np.transpose(x, perm)


@kernel("reshape")
def reshape(x, shape):
    return np.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


@kernel("reshape_like")
def reshape_like(x, ref):
    return np.reshape(x, ref.shape)


@kernel("broadcast_like")
def broadcast_like(x, ref):
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, ref.shape))


@kernel("expand_dims")
def expand_dims(x, axes):
    return np.expand_dims(x, tuple(axes))


# ---------------------------------------------------------------- fused ops (made by passes)
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


# ops whose kernel is prepared once per node from its attributes (a fused formula compiled to
# closures, a scan body planned) rather than re-read on every call
PREPARE: dict = {}


def bind(op: str, attrs: dict):
    """The kernel of `op` with its attributes bound, made once per node when a graph is planned."""
    if op in PREPARE:
        return PREPARE[op](attrs)
    return functools.partial(KERNELS[op], **attrs) if attrs else KERNELS[op]


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
