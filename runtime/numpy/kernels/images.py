"""Convolution and pooling kernels over 1, 2 or 3 spatial axes, on sliding windows (im2col)."""
from __future__ import annotations

import functools
import itertools

import numpy as np

from nngraph.ops.images import resize_plan
from nngraph.runtime.numpy.kernels.registry import kernel

# No Python loop runs over pixels. A convolution is one im2col copy (a strided view of the padded
# input, per image) and one batched matrix product, its weight gradient the same; its input
# gradient one matrix product and a col2im that loops over the kernel offsets, each step a
# whole-tensor add on a strided slice. Pooling
# loops over the kernel offsets; max pooling's gradient finds each window's first maximum with
# arrays the size of the output (no mask the size of the input) and writes g there in one
# scatter. Spatial attributes default from the input's rank.


def _geometry(n, stride, pads, dilation):
    return (tuple(stride) if stride is not None else (1,) * n, tuple(pads) if pads is not None else (0,) * 2 * n,
            tuple(dilation) if dilation is not None else (1,) * n)


def _padded(x, pads, value=0.0):
    n = x.ndim - 2
    if not any(pads):
        return x
    out = np.full(x.shape[:2] + tuple(s + pads[a] + pads[n + a] for a, s in enumerate(x.shape[2:])), value,
                  dtype=x.dtype)
    out[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(pads, x.shape[2:]))] = x
    return out


def _cropped(xp, pads, shape):
    if xp.shape == tuple(shape):
        return np.ascontiguousarray(xp)
    return np.ascontiguousarray(xp[(slice(None), slice(None)) + tuple(slice(p, p + s) for p, s in zip(pads, shape[2:]))])


def _out_sizes(x_shape, kernel, stride, pads, dilation):
    n = len(x_shape) - 2
    return tuple((x_shape[2 + a] + pads[a] + pads[n + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                 for a in range(n))


def _offsets(kernel, stride, dilation, out):
    """(flat offset, slices) for each kernel offset: the padded input's strided slices that offset
    reads, one element per window."""
    for flat, at in enumerate(itertools.product(*(range(k) for k in kernel))):
        yield flat, (slice(None), slice(None)) + tuple(
            slice(i * d, i * d + s * (o - 1) + 1, s) for i, d, s, o in zip(at, dilation, stride, out))


def _windows_as_columns(xp, kernel, stride, dilation, out, groups):
    """[N, groups, C/groups * K, P]: each image's windows of the padded input as columns (K kernel
    elements, P output positions), so that a batched product gives [N, O, P] with no transpose."""
    n, c = xp.shape[:2]
    s = xp.strides
    shape = (n, c) + tuple(kernel) + tuple(out)
    strides = (s[0], s[1]) + tuple(st * d for st, d in zip(s[2:], dilation)) + \
        tuple(st * step for st, step in zip(s[2:], stride))
    windows = np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)
    return windows.reshape(n, groups, (c // groups) * int(np.prod(kernel)), -1)      # (the one copy)


@kernel("conv2d")
def conv2d(x, w, stride=None, pads=None, dilation=None, groups=1):
    stride, pads, dilation = _geometry(x.ndim - 2, stride, pads, dilation)
    out = _out_sizes(x.shape, w.shape[2:], stride, pads, dilation)
    cols = _windows_as_columns(_padded(x, pads), w.shape[2:], stride, dilation, out, groups)
    y = np.matmul(w.reshape(groups, w.shape[0] // groups, -1), cols)               # [N, G, O/G, P]
    return y.reshape((x.shape[0], w.shape[0]) + tuple(out))


def _grad_columns(g, groups):
    """g [N, O, *out] as [groups, O/groups, N * P]: every image's positions side by side."""
    return np.moveaxis(g, 1, 0).reshape(groups, g.shape[1] // groups, -1)


@kernel("conv2d_input_grad")
def conv2d_input_grad(g, w, x_ref, stride=None, pads=None, dilation=None, groups=1):
    n = x_ref.ndim - 2
    stride, pads, dilation = _geometry(n, stride, pads, dilation)
    out_c, kernel = w.shape[0], w.shape[2:]
    filters = w.reshape(groups, out_c // groups, -1).transpose(0, 2, 1)
    cols = np.matmul(filters, _grad_columns(g, groups))
    cols = cols.reshape((x_ref.shape[1], int(np.prod(kernel)), x_ref.shape[0]) + g.shape[2:])
    padded = tuple(s + pads[a] + pads[n + a] for a, s in enumerate(x_ref.shape[2:]))
    dxp = np.zeros((x_ref.shape[1], x_ref.shape[0]) + padded, dtype=g.dtype)
    for flat, where in _offsets(kernel, stride, dilation, g.shape[2:]):          # col2im
        dxp[where] += cols[:, flat]
    return _cropped(np.moveaxis(dxp, 0, 1), pads, x_ref.shape)


@kernel("conv2d_weight_grad")
def conv2d_weight_grad(x, g, w_ref, stride=None, pads=None, dilation=None, groups=1):
    # dw = sum over images n of g_n [O/G, P] @ columns_n [P, C/G * K], for each group
    stride, pads, dilation = _geometry(x.ndim - 2, stride, pads, dilation)
    cols = _windows_as_columns(_padded(x, pads), w_ref.shape[2:], stride, dilation, g.shape[2:], groups)
    gs = g.reshape(g.shape[0], groups, g.shape[1] // groups, -1)                     # [N, G, O/G, P]
    if gs.shape[2] <= gs.shape[3]:      # the per-image products are no larger than the columns
        return np.matmul(gs, cols.swapaxes(-1, -2)).sum(axis=0).reshape(w_ref.shape)
    # many filters on small maps: one product per group over images and positions at once
    return np.stack([np.tensordot(gs[:, k], cols[:, k], axes=([0, 2], [0, 2])) for k in range(groups)]
                    ).reshape(w_ref.shape)


def _pool_geometry(x, kernel, stride, pads, dilation):
    n = x.ndim - 2
    kernel = tuple(kernel) if kernel is not None else (1,) * n
    stride, pads, dilation = _geometry(n, stride, pads, dilation)
    return kernel, stride, pads, dilation, _out_sizes(x.shape, kernel, stride, pads, dilation)


def _window_reduce(xp, kernel, stride, dilation, out, ufunc):
    result = None
    for _, where in _offsets(kernel, stride, dilation, out):
        result = xp[where].copy() if result is None else ufunc(result, xp[where], out=result)
    return result


@kernel("max_pool2d")
def max_pool2d(x, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation, out = _pool_geometry(x, kernel, stride, pads, dilation)
    return _window_reduce(_padded(x, pads, -np.inf), kernel, stride, dilation, out, np.maximum)


def _first_maxima(xp, kernel, stride, dilation, out):
    """[(slices, hit)] for each kernel offset: `hit` marks the windows whose first maximum (in
    row-major order within the window) sits at that offset. Boolean arrays the size of the output
    only, and no masked selection (np.where, copyto(where=) cost ~10 ns an element): an offset
    holds a window's first maximum when it equals the maximum and no earlier offset did."""
    best = _window_reduce(xp, kernel, stride, dilation, out, np.maximum)
    taken, hits = np.zeros(best.shape, bool), []
    for _, at in _offsets(kernel, stride, dilation, out):
        hit = np.equal(xp[at], best)
        np.greater(hit, taken, out=hit)             # equal, and not taken before
        np.logical_or(taken, hit, out=taken)
        hits.append((at, hit))
    if not taken.all():         # a window holding NaN equals its maximum nowhere: its first element
        np.logical_or(hits[0][1], ~taken, out=hits[0][1])
    return hits


def _overlapping(kernel, stride, dilation) -> bool:
    return any(d * (k - 1) + 1 > s for k, s, d in zip(kernel, stride, dilation))


@kernel("max_pool2d_grad")
def max_pool2d_grad(x, g, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation, out = _pool_geometry(x, kernel, stride, pads, dilation)
    xp = _padded(x, pads, -np.inf)
    dxp = np.zeros(xp.shape, dtype=g.dtype)
    overlapping = _overlapping(kernel, stride, dilation)
    part = np.empty(g.shape, dtype=g.dtype) if overlapping else None
    for at, hit in _first_maxima(xp, kernel, stride, dilation, out):
        if overlapping:         # an element may be the maximum of several windows: their g add up
            np.multiply(g, hit, out=part)
            dxp[at] += part
        else:                   # each element is in one window at most: written once
            np.multiply(g, hit, out=dxp[at])
    return _cropped(dxp, pads, x.shape)


@kernel("max_pool2d_select")
def max_pool2d_select(x, h, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation, out = _pool_geometry(x, kernel, stride, pads, dilation)
    hp = _padded(h, pads)
    picked = np.zeros(tuple(x.shape[:2]) + tuple(out), dtype=h.dtype)
    for at, hit in _first_maxima(_padded(x, pads, -np.inf), kernel, stride, dilation, out):
        np.copyto(picked, hp[at], where=hit)
    return picked


@kernel("avg_pool2d")
def avg_pool2d(x, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation, out = _pool_geometry(x, kernel, stride, pads, dilation)
    total = _window_reduce(_padded(x, pads), kernel, stride, dilation, out, np.add)
    total /= total.dtype.type(np.prod(kernel))
    return total


@kernel("avg_pool2d_grad")
def avg_pool2d_grad(g, x_ref, kernel=None, stride=None, pads=None, dilation=None):
    kernel, stride, pads, dilation, out = _pool_geometry(x_ref, kernel, stride, pads, dilation)
    n = x_ref.ndim - 2
    padded = tuple(s + pads[a] + pads[n + a] for a, s in enumerate(x_ref.shape[2:]))
    dxp = np.zeros(x_ref.shape[:2] + padded, dtype=g.dtype)
    share = g / g.dtype.type(np.prod(kernel))
    for _, where in _offsets(kernel, stride, dilation, out):
        dxp[where] += share
    return _cropped(dxp, pads, x_ref.shape)


# ---- resize: along each resized axis a product with the interpolation matrix (or, for nearest
# neighbours, a gather: exact, and infinities stay infinite)
@functools.lru_cache(maxsize=256)
def _matrix(rows, in_len):
    m = np.zeros((len(rows), in_len))
    for o, row in enumerate(rows):
        for i, weight in row:
            m[o, i] = weight
    return m


def _along(m, x, axis):
    return np.moveaxis(np.tensordot(m, x, axes=([1], [axis])), 0, axis)


@kernel("resize")
def resize(x, extrapolation=0.0, **attrs):
    for axis, rows, outside in resize_plan(attrs, x.shape):
        if all(len(row) == 1 and row[0][1] == 1.0 for row in rows):
            x = np.take(x, [row[0][0] for row in rows], axis=axis)
        else:
            x = _along(_matrix(rows, x.shape[axis]).astype(x.dtype, copy=False), x, axis)
        if any(outside):
            x = np.where(np.reshape(outside, (-1,) + (1,) * (x.ndim - axis - 1)), x.dtype.type(extrapolation), x)
    return np.ascontiguousarray(x)


@kernel("resize_grad")
def resize_grad(g, x_ref, extrapolation=0.0, **attrs):
    for axis, rows, _ in resize_plan(attrs, x_ref.shape):
        g = _along(_matrix(rows, x_ref.shape[axis]).T.astype(g.dtype, copy=False), g, axis)
    return np.ascontiguousarray(g)
