"""Convolution and pooling kernels on sliding windows (im2col)."""
from __future__ import annotations

import numpy as np

from nngraph.runtime.numpy.kernels.registry import kernel

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
