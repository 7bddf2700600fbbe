"""Convolution and pooling (NCHW images, OIHW filters, `pads` = (top, left, bottom, right)).

conv2d is one `lax.conv_general_dilated`. Its two adjoints are convolutions too, written out here
(no jax.grad): the input gradient convolves the stride-dilated output gradient with the flipped,
group-transposed filters; the weight gradient convolves the input with the output gradient,
batch and channel axes swapped. Pooling is `lax.reduce_window`. The max-pooling gradients loop
over the kh*kw kernel offsets, as the NumPy kernels do, so a tie goes to the same element: the
first maximum of the window in row-major order.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from nngraph.runtime.jax.ops.registry import impl

_HIGHEST = lax.Precision.HIGHEST


def _rest(size, pad_before, pad_after, extent, stride):
    """Rows (or columns) of the padded input after the last window: no window reads them."""
    padded = size + pad_before + pad_after
    return padded - ((padded - extent) // stride * stride + extent)


@impl("conv2d")
def conv2d(x, w, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    return lax.conv_general_dilated(x, w, tuple(stride), [(pads[0], pads[2]), (pads[1], pads[3])],
                                    rhs_dilation=tuple(dilation), dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                    feature_group_count=groups, precision=_HIGHEST)


@impl("conv2d_input_grad")
def conv2d_input_grad(g, w, x_ref, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    out_c, in_c, kh, kw = w.shape
    # filters [O, C/G, kh, kw] -> [C, O/G, kh, kw] within each group, flipped in space
    flipped = w.reshape(groups, out_c // groups, in_c, kh, kw).transpose(0, 2, 1, 3, 4)
    flipped = flipped.reshape(groups * in_c, out_c // groups, kh, kw)[:, :, ::-1, ::-1]
    padding = []
    for axis, (k, s, d) in enumerate(zip((kh, kw), stride, dilation)):
        extent, before, after = d * (k - 1) + 1, pads[axis], pads[axis + 2]
        # a full correlation of the dilated g covers the padded input up to its last window;
        # shift by the padding and extend over the rows no window read (their gradient is 0)
        rest = _rest(x_ref.shape[2 + axis], before, after, extent, s)
        padding.append((extent - 1 - before, extent - 1 - after + rest))     # may be < 0: a crop
    return lax.conv_general_dilated(g, flipped, (1, 1), padding, lhs_dilation=tuple(stride),
                                    rhs_dilation=tuple(dilation), dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                    feature_group_count=groups, precision=_HIGHEST)


@impl("conv2d_weight_grad")
def conv2d_weight_grad(x, g, w_ref, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    # dw[o, c, i, j] = sum over n, y, x of g[n, o, y, x] * x_padded[n, c, y*s + i*d, x*s + j*d]: a
    # convolution of x (channels as the batch, the batch contracted) with g dilated by the stride,
    # stepping by the dilation. batch_group_count pairs each group's channels with its filters.
    _, _, kh, kw = w_ref.shape
    padding = []
    for axis, (k, s, d) in enumerate(zip((kh, kw), stride, dilation)):
        before, after = pads[axis], pads[axis + 2]
        padding.append((before, after - _rest(x.shape[2 + axis], before, after, d * (k - 1) + 1, s)))
    return lax.conv_general_dilated(x, g, tuple(dilation), padding, rhs_dilation=tuple(stride),
                                    dimension_numbers=("CNHW", "IOHW", "CNHW"), batch_group_count=groups,
                                    precision=_HIGHEST)


def _window_padding(pads):
    return ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3]))


@impl("max_pool2d")
def max_pool2d(x, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    return lax.reduce_window(x, jnp.array(-jnp.inf, x.dtype), lax.max, (1, 1) + tuple(kernel),
                             (1, 1) + tuple(stride), _window_padding(pads))


@impl("avg_pool2d")
def avg_pool2d(x, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    total = lax.reduce_window(x, jnp.array(0, x.dtype), lax.add, (1, 1) + tuple(kernel),
                              (1, 1) + tuple(stride), _window_padding(pads))
    return total / (kernel[0] * kernel[1])          # count_include_pad, as the NumPy kernel


@impl("avg_pool2d_grad")
def avg_pool2d_grad(g, x_ref, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    # each window's share goes to all of its kh*kw elements: spread g out by the stride (interior
    # padding), then sum a kh x kw window around every element; the edges shift by the padding
    share = g / jnp.asarray(kernel[0] * kernel[1], g.dtype)
    config = [(0, 0, 0), (0, 0, 0)]
    for axis, (k, s) in enumerate(zip(kernel, stride)):
        before, after = pads[axis], pads[axis + 2]
        rest = _rest(x_ref.shape[2 + axis], before, after, k, s)
        config.append((k - 1 - before, k - 1 - after + rest, s - 1))
    spread = lax.pad(share, jnp.array(0, g.dtype), config)
    return lax.reduce_window(spread, jnp.array(0, g.dtype), lax.add, (1, 1) + tuple(kernel), (1, 1, 1, 1), "VALID")


# ---- max pooling's gradients, by kernel offset as in runtime/numpy/kernels/images.py
def _offsets(x_shape, kernel, stride, pads):
    """(i * kw + j, i, j, rows, cols) for each kernel offset (i, j): the padded input's strided
    slices that offset reads, one element per window."""
    (kh, kw), (sh, sw) = kernel, stride
    ho = (x_shape[2] + pads[0] + pads[2] - kh) // sh + 1
    wo = (x_shape[3] + pads[1] + pads[3] - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, i, j, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)


def _padded(x, pads, value):
    return jnp.pad(x, _window_padding(pads), constant_values=jnp.asarray(value, x.dtype))


def _window_argmax(x, kernel, stride, pads):
    """For each window, the offset i * kw + j of its first maximum (only a strictly greater
    element replaces the best so far)."""
    xp = _padded(x, pads, -jnp.inf)
    best = where = None
    for k, _, _, rows, cols in _offsets(x.shape, kernel, stride, pads):
        part = xp[:, :, rows, cols]
        if best is None:
            best, where = part, jnp.zeros(part.shape, jnp.int32)
            continue
        better = part > best
        best, where = jnp.where(better, part, best), jnp.where(better, k, where)
    return where


@impl("max_pool2d_grad")
def max_pool2d_grad(x, g, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    where = _window_argmax(x, kernel, stride, pads)
    (n, c, h, w), (sh, sw), zero = x.shape, stride, jnp.zeros((), g.dtype)
    hp, wp = h + pads[0] + pads[2], w + pads[1] + pads[3]
    dxp = jnp.zeros((n, c, hp, wp), g.dtype)
    for k, i, j, _, _ in _offsets(x.shape, kernel, stride, pads):
        # the windows whose maximum sits at offset (i, j) send g there: g spread out by the stride
        # (interior padding) and shifted by the offset, instead of a strided scatter
        part = jnp.where(where == k, g, zero)
        ho, wo = part.shape[2:]
        dxp = dxp + lax.pad(part, zero, [(0, 0, 0), (0, 0, 0), (i, hp - i - sh * (ho - 1) - 1, sh - 1),
                                         (j, wp - j - sw * (wo - 1) - 1, sw - 1)])
    return dxp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w]


@impl("max_pool2d_select")
def max_pool2d_select(x, h, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0)):
    where = _window_argmax(x, kernel, stride, pads)
    hp = _padded(h, pads, 0)
    out = jnp.zeros(where.shape, h.dtype)
    for k, _, _, rows, cols in _offsets(x.shape, kernel, stride, pads):
        out = jnp.where(where == k, hp[:, :, rows, cols], out)
    return out
