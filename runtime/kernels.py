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


# ---------------------------------------------------------------- convolution, pooling, indexing
# No Python loop runs over pixels: a convolution is one im2col copy (a strided view of the padded
# input) and one matrix product per group; pooling and the adjoints loop over the kh*kw kernel
# offsets only, each step a whole-tensor NumPy operation on a strided slice.

def _padded(x, pads, value=0.0):
    top, left, bottom, right = pads
    if not (top or left or bottom or right):
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _cropped(xp, pads, shape):
    top, left = pads[0], pads[1]
    if xp.shape == tuple(shape):
        return np.ascontiguousarray(xp)
    return np.ascontiguousarray(xp[:, :, top:top + shape[2], left:left + shape[3]])


def _out_size(padded, extent, stride):
    return (padded - extent) // stride + 1


def _offsets(kernel, stride, dilation, out_hw):
    """(i, j, rows, cols) for each kernel offset: the padded input's slices that offset reads."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i * dh, i * dh + sh * (ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)


def _im2col(xp, kernel, stride, dilation, out_hw, groups):
    """[groups, C/groups * kh * kw, N * Ho * Wo]: every window of the padded input as a column."""
    n, c, _, _ = xp.shape
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    s = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp, (c, kh, kw, n, ho, wo), (s[1], s[2] * dh, s[3] * dw, s[0], s[2] * sh, s[3] * sw), writeable=False)
    return windows.reshape(groups, (c // groups) * kh * kw, n * ho * wo)      # (the one copy)


def _conv_geometry(x_shape, w_shape, stride, pads, dilation):
    kh, kw = w_shape[2:]
    hp, wp = x_shape[2] + pads[0] + pads[2], x_shape[3] + pads[1] + pads[3]
    return (kh, kw), (_out_size(hp, dilation[0] * (kh - 1) + 1, stride[0]),
                      _out_size(wp, dilation[1] * (kw - 1) + 1, stride[1]))


@kernel("conv2d")
def conv2d(x, w, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    kernel_hw, (ho, wo) = _conv_geometry(x.shape, w.shape, stride, pads, dilation)
    n, out_c = x.shape[0], w.shape[0]
    cols = _im2col(_padded(x, pads), kernel_hw, stride, dilation, (ho, wo), groups)
    out = np.matmul(w.reshape(groups, out_c // groups, -1), cols)              # [G, O/G, N*Ho*Wo]
    return np.ascontiguousarray(out.reshape(out_c, n, ho, wo).transpose(1, 0, 2, 3))


def _grad_columns(g, groups):
    """g [N, O, Ho, Wo] as [groups, O/groups, N * Ho * Wo], the layout of _im2col's columns."""
    n, out_c, ho, wo = g.shape
    return g.transpose(1, 0, 2, 3).reshape(groups, out_c // groups, n * ho * wo)


@kernel("conv2d_input_grad")
def conv2d_input_grad(g, w, x_ref, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    n, c, h, wd = x_ref.shape
    out_c, in_c, kh, kw = w.shape
    ho, wo = g.shape[2:]
    filters = w.reshape(groups, out_c // groups, in_c * kh * kw).transpose(0, 2, 1)
    cols = np.matmul(filters, _grad_columns(g, groups)).reshape(c, kh, kw, n, ho, wo)
    dxp = np.zeros((c, n, h + pads[0] + pads[2], wd + pads[1] + pads[3]), dtype=g.dtype)
    for i, j, rows, columns in _offsets((kh, kw), stride, dilation, (ho, wo)):     # col2im
        dxp[:, :, rows, columns] += cols[:, i, j]
    return _cropped(dxp.transpose(1, 0, 2, 3), pads, x_ref.shape)


@kernel("conv2d_weight_grad")
def conv2d_weight_grad(x, g, w_ref, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    kernel_hw, out_hw = _conv_geometry(x.shape, w_ref.shape, stride, pads, dilation)
    cols = _im2col(_padded(x, pads), kernel_hw, stride, dilation, out_hw, groups)   # [G, K, N*P]
    dw = np.matmul(_grad_columns(g, groups), cols.transpose(0, 2, 1))                # [G, O/G, K]
    return dw.reshape(w_ref.shape)


def _pool_geometry(x_shape, kernel, stride, pads):
    return (_out_size(x_shape[2] + pads[0] + pads[2], kernel[0], stride[0]),
            _out_size(x_shape[3] + pads[1] + pads[3], kernel[1], stride[1]))


def _window_argmax(xp, kernel, stride, out_hw):
    """For each window, the offset i * kw + j of its first maximum."""
    best, where = None, None
    for i, j, rows, columns in _offsets(kernel, stride, (1, 1), out_hw):
        part = xp[:, :, rows, columns]
        if best is None:
            best, where = part.copy(), np.zeros(part.shape, dtype=np.int64)
            continue
        better = part > best
        np.copyto(best, part, where=better)
        where[better] = i * kernel[1] + j
    return where


@kernel("max_pool2d")
def max_pool2d(x, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    xp = _padded(x, pads, -np.inf)
    out = None
    for _, _, rows, columns in _offsets(kernel, stride, (1, 1), _pool_geometry(x.shape, kernel, stride, pads)):
        out = xp[:, :, rows, columns].copy() if out is None else np.maximum(out, xp[:, :, rows, columns], out=out)
    return out


@kernel("max_pool2d_grad")
def max_pool2d_grad(x, g, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    out_hw = _pool_geometry(x.shape, kernel, stride, pads)
    where = _window_argmax(_padded(x, pads, -np.inf), kernel, stride, out_hw)
    dxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + pads[0] + pads[2], x.shape[3] + pads[1] + pads[3]),
                   dtype=g.dtype)
    zero = np.zeros((), dtype=g.dtype)
    for i, j, rows, columns in _offsets(kernel, stride, (1, 1), out_hw):
        dxp[:, :, rows, columns] += np.where(where == i * kernel[1] + j, g, zero)
    return _cropped(dxp, pads, x.shape)


@kernel("max_pool2d_select")
def max_pool2d_select(x, h, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    out_hw = _pool_geometry(x.shape, kernel, stride, pads)
    where = _window_argmax(_padded(x, pads, -np.inf), kernel, stride, out_hw)
    hp = _padded(h, pads)
    out = np.zeros(where.shape, dtype=h.dtype)
    for i, j, rows, columns in _offsets(kernel, stride, (1, 1), out_hw):
        np.copyto(out, hp[:, :, rows, columns], where=where == i * kernel[1] + j)
    return out


@kernel("avg_pool2d")
def avg_pool2d(x, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    xp = _padded(x, pads)
    out = None
    for _, _, rows, columns in _offsets(kernel, stride, (1, 1), _pool_geometry(x.shape, kernel, stride, pads)):
        out = xp[:, :, rows, columns].copy() if out is None else np.add(out, xp[:, :, rows, columns], out=out)
    out /= kernel[0] * kernel[1]
    return out


@kernel("avg_pool2d_grad")
def avg_pool2d_grad(g, x_ref, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    n, c, h, w = x_ref.shape
    dxp = np.zeros((n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), dtype=g.dtype)
    share = g / g.dtype.type(kernel[0] * kernel[1])
    for _, _, rows, columns in _offsets(kernel, stride, (1, 1), g.shape[2:]):
        dxp[:, :, rows, columns] += share
    return _cropped(dxp, pads, x_ref.shape)


def _slices(rank, axes, starts=None, ends=None, steps=None):
    index = [slice(None)] * rank
    n = len(axes)
    for axis, start, end, step in zip(axes, starts or (None,) * n, ends or (None,) * n, steps or (1,) * n):
        index[axis] = slice(start, end, step)
    return tuple(index)


@kernel("slice")
def slice_(x, axes, starts=None, ends=None, steps=None):
    return x[_slices(x.ndim, axes, starts, ends, steps)]


@kernel("slice_grad")
def slice_grad(g, x_ref, axes, starts=None, ends=None, steps=None):
    out = np.zeros(x_ref.shape, dtype=g.dtype)
    out[_slices(out.ndim, axes, starts, ends, steps)] = g
    return out


@kernel("pad")
def pad(x, pads, value=0.0):
    rank = x.ndim
    out = np.full([d + b + a for d, b, a in zip(x.shape, pads[:rank], pads[rank:])], value, dtype=x.dtype)
    out[tuple(slice(b, b + d) for d, b in zip(x.shape, pads[:rank]))] = x
    return out


@kernel("concat")
def concat(*xs, axis=0):
    return np.concatenate(xs, axis=axis)


@kernel("gather")
def gather(table, indices, axis=0):
    return np.take(table, indices, axis=axis)


@kernel("scatter_add")
def scatter_add(g, indices, table_ref, axis=0):
    out = np.zeros(table_ref.shape, dtype=g.dtype)
    axis = axis % out.ndim
    np.add.at(out, (slice(None),) * axis + (indices,), g)      # repeated indices accumulate
    return out


# ---------------------------------------------------------------- attention helpers
@kernel("sin")
def sin(x):
    return np.sin(x)


@kernel("cos")
def cos(x):
    return np.cos(x)


@kernel("positions")
def positions(x, axis=0):
    return np.arange(x.shape[axis], dtype=np.int64)


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
