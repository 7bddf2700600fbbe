"""Convolution and pooling over 1, 2 or 3 spatial axes (NC + spatial inputs, OI + spatial
filters, `pads` = all starts then all ends).

conv2d is one `lax.conv_general_dilated`. Its two adjoints are convolutions too, written out here
(no jax.grad): the input gradient convolves the stride-dilated output gradient with the flipped,
group-transposed filters; the weight gradient convolves the input with the output gradient,
batch and channel axes swapped. Pooling is `lax.reduce_window`. The max-pooling gradients loop
over the kernel offsets, as the NumPy kernels do, so a tie goes to the same element: the first
maximum of the window in row-major order.
"""
from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
from jax import lax

from nngraph.ops.images import resize_plan
from nngraph.runtime.jax.ops.registry import impl

_HIGHEST = lax.Precision.HIGHEST


def _letters(n):
    return "DHW"[3 - n:]


def _defaults(n, stride, pads, dilation):
    return (tuple(stride) if stride is not None else (1,) * n, tuple(pads) if pads is not None else (0,) * 2 * n,
            tuple(dilation) if dilation is not None else (1,) * n)


def _rest(size, pad_before, pad_after, extent, stride):
    """Elements of the padded input after the last window along an axis: no window reads them."""
    padded = size + pad_before + pad_after
    return padded - ((padded - extent) // stride * stride + extent)


@impl("conv2d")
def conv2d(x, w, stride=None, pads=None, dilation=None, groups=1):
    n = x.ndim - 2
    stride, pads, dilation = _defaults(n, stride, pads, dilation)
    s = _letters(n)
    return lax.conv_general_dilated(x, w, stride, [(pads[a], pads[n + a]) for a in range(n)],
                                    rhs_dilation=dilation, dimension_numbers=("NC" + s, "OI" + s, "NC" + s),
                                    feature_group_count=groups, precision=_HIGHEST)


@impl("conv2d_input_grad")
def conv2d_input_grad(g, w, x_ref, stride=None, pads=None, dilation=None, groups=1):
    n = x_ref.ndim - 2
    stride, pads, dilation = _defaults(n, stride, pads, dilation)
    out_c, in_c, kernel = w.shape[0], w.shape[1], w.shape[2:]
    # filters [O, C/G, k...] -> [C, O/G, k...] within each group, flipped in space
    flipped = w.reshape((groups, out_c // groups, in_c) + kernel)
    flipped = jnp.swapaxes(flipped, 1, 2).reshape((groups * in_c, out_c // groups) + kernel)
    flipped = flipped[(slice(None), slice(None)) + (slice(None, None, -1),) * n]
    padding = []
    for axis, (k, st, d) in enumerate(zip(kernel, stride, dilation)):
        extent, before, after = d * (k - 1) + 1, pads[axis], pads[n + axis]
        # a full correlation of the dilated g covers the padded input up to its last window;
        # shift by the padding and extend over the elements no window read (their gradient is 0)
        rest = _rest(x_ref.shape[2 + axis], before, after, extent, st)
        padding.append((extent - 1 - before, extent - 1 - after + rest))     # may be < 0: a crop
    s = _letters(n)
    return lax.conv_general_dilated(g, flipped, (1,) * n, padding, lhs_dilation=stride, rhs_dilation=dilation,
                                    dimension_numbers=("NC" + s, "OI" + s, "NC" + s),
                                    feature_group_count=groups, precision=_HIGHEST)


@impl("conv2d_weight_grad")
def conv2d_weight_grad(x, g, w_ref, stride=None, pads=None, dilation=None, groups=1):
    # dw[o, c, i...] = sum over n, p... of g[n, o, p...] * x_padded[n, c, p*s + i*d ...]: a
    # convolution of x (channels as the batch, the batch contracted) with g dilated by the stride,
    # stepping by the dilation. batch_group_count pairs each group's channels with its filters.
    n = x.ndim - 2
    stride, pads, dilation = _defaults(n, stride, pads, dilation)
    padding = []
    for axis, (k, st, d) in enumerate(zip(w_ref.shape[2:], stride, dilation)):
        before, after = pads[axis], pads[n + axis]
        padding.append((before, after - _rest(x.shape[2 + axis], before, after, d * (k - 1) + 1, st)))
    s = _letters(n)
    return lax.conv_general_dilated(x, g, dilation, padding, rhs_dilation=stride,
                                    dimension_numbers=("CN" + s, "IO" + s, "CN" + s), batch_group_count=groups,
                                    precision=_HIGHEST)


def _pool(x, kernel, stride, pads, dilation):
    n = x.ndim - 2
    kernel = tuple(kernel) if kernel is not None else (1,) * n
    return (kernel,) + _defaults(n, stride, pads, dilation)


def _window_padding(pads, n):
    return ((0, 0), (0, 0)) + tuple((pads[a], pads[n + a]) for a in range(n))


def _reduce(x, init, op, kernel, stride, pads, dilation):
    return lax.reduce_window(x, jnp.array(init, x.dtype), op, (1, 1) + kernel, (1, 1) + stride,
                             _window_padding(pads, x.ndim - 2), window_dilation=(1, 1) + dilation)


@impl("max_pool2d")
def max_pool2d(x, kernel=None, stride=None, pads=None, dilation=None):
    return _reduce(x, -jnp.inf, lax.max, *_pool(x, kernel, stride, pads, dilation))


@impl("avg_pool2d")
def avg_pool2d(x, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation = _pool(x, kernel, stride, pads, dilation)
    return _reduce(x, 0, lax.add, kernel, stride, pads, dilation) / int(np.prod(kernel))   # count_include_pad


# ---- the pooling gradients, by kernel offset as in runtime/numpy/kernels/images.py
def _offsets(x_shape, kernel, stride, pads, dilation):
    """(flat offset, offset, slices) for each kernel offset: the padded input's strided slices that
    offset reads, one element per window."""
    n = len(x_shape) - 2
    out = [(x_shape[2 + a] + pads[a] + pads[n + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
           for a in range(n)]
    for flat, at in enumerate(itertools.product(*(range(k) for k in kernel))):
        yield flat, at, (slice(None), slice(None)) + tuple(
            slice(i * d, i * d + s * (o - 1) + 1, s) for i, d, s, o in zip(at, dilation, stride, out))


def _padded(x, pads, value):
    return jnp.pad(x, _window_padding(pads, x.ndim - 2), constant_values=jnp.asarray(value, x.dtype))


def _spread(part, at, x_shape, stride, pads, dilation, zero):
    """`part` (one value per window) placed at kernel offset `at` of each window in the padded
    input: spread out by the stride (interior padding) and shifted, instead of a strided scatter."""
    n = len(x_shape) - 2
    config = [(0, 0, 0), (0, 0, 0)]
    for a in range(n):
        padded = x_shape[2 + a] + pads[a] + pads[n + a]
        first, count = at[a] * dilation[a], part.shape[2 + a]
        config.append((first, padded - first - stride[a] * (count - 1) - 1, stride[a] - 1))
    return lax.pad(part, zero, config)


def _crop(xp, pads, shape):
    return xp[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(pads, shape[2:]))]


@impl("avg_pool2d_grad")
def avg_pool2d_grad(g, x_ref, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation = _pool(x_ref, kernel, stride, pads, dilation)
    share, zero = g / jnp.asarray(int(np.prod(kernel)), g.dtype), jnp.zeros((), g.dtype)
    dxp = sum(_spread(share, at, x_ref.shape, stride, pads, dilation, zero)
              for _, at, _ in _offsets(x_ref.shape, kernel, stride, pads, dilation))
    return _crop(dxp, pads, x_ref.shape)


def _window_argmax(x, kernel, stride, pads, dilation):
    """For each window, its flat kernel offset of the first maximum (only a strictly greater
    element replaces the best so far)."""
    xp = _padded(x, pads, -jnp.inf)
    best = where = None
    for k, _, at in _offsets(x.shape, kernel, stride, pads, dilation):
        part = xp[at]
        if best is None:
            best, where = part, jnp.zeros(part.shape, jnp.int32)
            continue
        better = part > best
        best, where = jnp.where(better, part, best), jnp.where(better, k, where)
    return where


@impl("max_pool2d_grad")
def max_pool2d_grad(x, g, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation = _pool(x, kernel, stride, pads, dilation)
    where, zero = _window_argmax(x, kernel, stride, pads, dilation), jnp.zeros((), g.dtype)
    dxp = sum(_spread(jnp.where(where == k, g, zero), at, x.shape, stride, pads, dilation, zero)
              for k, at, _ in _offsets(x.shape, kernel, stride, pads, dilation))
    return _crop(dxp, pads, x.shape)


@impl("max_pool2d_select")
def max_pool2d_select(x, h, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation = _pool(x, kernel, stride, pads, dilation)
    where = _window_argmax(x, kernel, stride, pads, dilation)
    hp = _padded(h, pads, 0)
    out = jnp.zeros(where.shape, h.dtype)
    for k, _, at in _offsets(x.shape, kernel, stride, pads, dilation):
        out = jnp.where(where == k, hp[at], out)
    return out


# ---- resize: the interpolation matrices of nngraph/ops/images.py, one product per resized axis
def _matrix(rows, in_len):
    m = np.zeros((len(rows), in_len))
    for o, row in enumerate(rows):
        for i, weight in row:
            m[o, i] = weight
    return m


def _along(m, x, axis):
    return jnp.moveaxis(jnp.tensordot(jnp.asarray(m, x.dtype), x, axes=([1], [axis]), precision=_HIGHEST), 0, axis)


@impl("resize")
def resize(x, extrapolation=0.0, **attrs):
    for axis, rows, outside in resize_plan(attrs, x.shape):
        if all(len(row) == 1 and row[0][1] == 1.0 for row in rows):
            x = jnp.take(x, np.array([row[0][0] for row in rows]), axis=axis)
        else:
            x = _along(_matrix(rows, x.shape[axis]), x, axis)
        if any(outside):
            mask = np.reshape(outside, (-1,) + (1,) * (x.ndim - axis - 1))
            x = jnp.where(mask, jnp.asarray(extrapolation, x.dtype), x)
    return x


@impl("resize_grad")
def resize_grad(g, x_ref, extrapolation=0.0, **attrs):
    for axis, rows, _ in resize_plan(attrs, x_ref.shape):
        g = _along(_matrix(rows, x_ref.shape[axis]).T, g, axis)
    return g
