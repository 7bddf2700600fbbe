"""ONNX lowerings of convolution and pooling (nngraph/ops/images.py)."""
from __future__ import annotations

import numpy as np

from nngraph.ir.graph import Value
from nngraph.onnx.lower.registry import LOWERINGS, onnx_dims, onnx_shape, onnx_zeros
from nngraph.ops.images import pair, window_geometry


def _onnx_cover(b, full: str, x: Value, x_name: str, covered: tuple, extra: tuple) -> str:
    """`full` holds the gradient of a windowed op from the input's first row and column on
    (`covered` rows and columns of it when known); rows and columns at the end that no window
    reached get zeros, and the result is cut to the input's height and width."""
    height, width = x.shape[2], x.shape[3]
    if all(isinstance(d, int) for d in (height, width) + covered):
        grow = (max(0, height - covered[0]), max(0, width - covered[1]))
        if any(grow):
            full = b.op("Pad", full, b.ints([0, 0, 0, 0, 0, 0, grow[0], grow[1]]))
        if covered[0] + grow[0] == height and covered[1] + grow[1] == width:
            return full
        return b.op("Slice", full, b.ints([0, 0]), b.ints([height, width]), b.ints([2, 3]))
    if any(extra):
        full = b.op("Pad", full, b.ints([0, 0, 0, 0, 0, 0, extra[0], extra[1]]))
    return b.op("Slice", full, b.ints([0, 0]), onnx_shape(b, x, x_name, (2, 3)), b.ints([2, 3]))


def _transposed_window(b, g: str, weight: str, g_value: Value, x: Value, x_name: str,
                       kernel, stride, pads, dilation, groups) -> str:
    """The adjoint of a windowed op from a transposed convolution, cut to the input's size."""
    full = b.op("ConvTranspose", g, weight, strides=list(stride), dilations=list(dilation), group=groups,
                pads=[pads[0], pads[1], 0, 0])
    covered = tuple(s * (o - 1) + d * (k - 1) + 1 - p if isinstance(o, int) else None
                    for s, o, d, k, p in zip(stride, g_value.shape[2:], dilation, kernel, pads[:2]))
    return _onnx_cover(b, full, x, x_name, covered, (stride[0] - 1, stride[1] - 1))


def _conv2d_onnx(b, n, ins):
    stride, pads, dilation = window_geometry(n.attrs, "conv2d", dilated=True)
    return [b.op("Conv", ins[0], ins[1], strides=list(stride), pads=list(pads), dilations=list(dilation),
                 group=n.attrs.get("groups", 1))]


def _conv2d_input_grad_onnx(b, n, ins):
    stride, pads, dilation = window_geometry(n.attrs, "conv2d_input_grad", dilated=True)
    g, w, x = n.inputs
    return [_transposed_window(b, ins[0], ins[1], g, x, ins[2], w.shape[2:], stride, pads, dilation,
                               n.attrs.get("groups", 1))]


def _conv2d_weight_grad_onnx(b, n, ins):
    """dw[o, c, i, j] = sum over n, p, q of g[n, o, p, q] x[n, c, p*s + i*d, q*s + j*d]: a
    convolution of x (channels and batch swapped) with g as the filter, stride and dilation
    swapped; each group of filters sees the batch of its own channel group."""
    stride, pads, dilation = window_geometry(n.attrs, "conv2d_weight_grad", dilated=True)
    x, g, w = n.inputs
    groups = n.attrs.get("groups", 1)
    _, in_c, kh, kw = w.shape
    if groups == 1:
        xt = b.op("Transpose", ins[0], perm=[1, 0, 2, 3])                    # [C, N, H, W]
    else:
        split = b.op("Reshape", ins[0], onnx_dims(b, [(x, ins[0], 0), groups, in_c, (x, ins[0], 2), (x, ins[0], 3)]))
        moved = b.op("Transpose", split, perm=[2, 1, 0, 3, 4])               # [C/G, G, N, H, W]
        xt = b.op("Reshape", moved, onnx_dims(b, [in_c, -1, (x, ins[0], 2), (x, ins[0], 3)]))
    gt = b.op("Transpose", ins[1], perm=[1, 0, 2, 3])                        # [O, N, Ho, Wo]
    full = b.op("Conv", xt, gt, strides=list(dilation), dilations=list(stride), pads=list(pads), group=groups)
    cut = b.op("Slice", full, b.ints([0, 0]), b.ints([kh, kw]), b.ints([2, 3]))
    return [b.op("Transpose", cut, perm=[1, 0, 2, 3])]


def _pool_onnx_attrs(n, opname):
    kernel = pair(n.attrs, "kernel", 1)
    stride, pads, _ = window_geometry(n.attrs, opname, dilated=False)
    return dict(kernel_shape=list(kernel), strides=list(stride), pads=list(pads))


def _max_pool2d_onnx(b, n, ins):
    return [b.op("MaxPool", ins[0], **_pool_onnx_attrs(n, "max_pool2d"))]


def _max_pool_indices(b, n, x: str) -> str:
    """MaxPool's Indices: each window's maximum as a position in the flattened input."""
    return b.op("MaxPool", x, n_outputs=2, **_pool_onnx_attrs(n, n.op))[1]


def _max_pool2d_grad_onnx(b, n, ins):
    x, _ = n.inputs
    flat = b.ints([-1])
    zeros = b.op("Reshape", onnx_zeros(b, onnx_shape(b, x, ins[0]), x.dtype), flat)
    where = b.op("Reshape", _max_pool_indices(b, n, ins[0]), flat)
    added = b.op("ScatterElements", zeros, where, b.op("Reshape", ins[1], flat), axis=0, reduction="add")
    return [b.op("Reshape", added, onnx_shape(b, x, ins[0]))]


def _max_pool2d_select_onnx(b, n, ins):
    return [b.op("Gather", b.op("Reshape", ins[1], b.ints([-1])), _max_pool_indices(b, n, ins[0]), axis=0)]


def _avg_pool2d_onnx(b, n, ins):
    return [b.op("AveragePool", ins[0], count_include_pad=1, **_pool_onnx_attrs(n, "avg_pool2d"))]


def _avg_pool2d_grad_onnx(b, n, ins):
    """Every channel on its own ([N*C, 1, Ho, Wo]) through a transposed convolution with a
    constant 1/(kh*kw) kernel."""
    g, x = n.inputs
    kernel = pair(n.attrs, "kernel", 1)
    stride, pads, _ = window_geometry(n.attrs, "avg_pool2d_grad", dilated=False)
    planes = b.op("Reshape", ins[0], onnx_dims(b, [-1, 1, (g, ins[0], 2), (g, ins[0], 3)]))
    weight = b.const(np.full((1, 1) + kernel, 1.0 / (kernel[0] * kernel[1])), g.dtype)
    one = g.type.with_shape((1, 1) + tuple(g.shape[2:]))
    spread = _transposed_window(b, planes, weight, Value("planes", one), x, ins[1], kernel, stride, pads,
                                (1, 1), 1)
    return [b.op("Reshape", spread, onnx_shape(b, x, ins[1]))]


LOWERINGS.update({
    "conv2d": _conv2d_onnx,
    "conv2d_input_grad": _conv2d_input_grad_onnx,
    "conv2d_weight_grad": _conv2d_weight_grad_onnx,
    "max_pool2d": _max_pool2d_onnx,
    "max_pool2d_grad": _max_pool2d_grad_onnx,
    "max_pool2d_select": _max_pool2d_select_onnx,
    "avg_pool2d": _avg_pool2d_onnx,
    "avg_pool2d_grad": _avg_pool2d_grad_onnx,
})
