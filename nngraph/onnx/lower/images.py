"""ONNX lowerings of convolution and pooling over 1, 2 or 3 spatial axes (nngraph/ops/images.py)."""
from __future__ import annotations

import numpy as np

from nngraph.ir.graph import Value
from nngraph.onnx.lower.registry import LOWERINGS, onnx_dims, onnx_shape, onnx_zeros
from nngraph.ops.images import pool_geometry, resize_plan, window_geometry


def _spatial(x: Value) -> list[int]:
    return list(range(2, x.type.rank))


def _onnx_cover(b, full: str, x: Value, x_name: str, covered: tuple, extra: tuple) -> str:
    """`full` holds the gradient of a windowed op from the input's first element on along each
    spatial axis (`covered` elements of it when known); elements at the end that no window
    reached get zeros, and the result is cut to the input's spatial size."""
    axes, sizes = _spatial(x), list(x.shape[2:])
    rank = x.type.rank
    if all(isinstance(d, int) for d in sizes + list(covered)):
        grow = [max(0, s - c) for s, c in zip(sizes, covered)]
        if any(grow):
            full = b.op("Pad", full, b.ints([0] * rank + [0, 0] + grow))
        if all(c + g == s for c, g, s in zip(covered, grow, sizes)):
            return full
        return b.op("Slice", full, b.ints([0] * len(axes)), b.ints(sizes), b.ints(axes))
    if any(extra):
        full = b.op("Pad", full, b.ints([0] * rank + [0, 0] + list(extra)))
    return b.op("Slice", full, b.ints([0] * len(axes)), onnx_shape(b, x, x_name, axes), b.ints(axes))


def _transposed_window(b, g: str, weight: str, g_value: Value, x: Value, x_name: str,
                       kernel, stride, pads, dilation, groups) -> str:
    """The adjoint of a windowed op from a transposed convolution, cut to the input's size."""
    n = len(kernel)
    full = b.op("ConvTranspose", g, weight, strides=list(stride), dilations=list(dilation), group=groups,
                pads=list(pads[:n]) + [0] * n)
    covered = tuple(s * (o - 1) + d * (k - 1) + 1 - p if isinstance(o, int) else None
                    for s, o, d, k, p in zip(stride, g_value.shape[2:], dilation, kernel, pads[:n]))
    return _onnx_cover(b, full, x, x_name, covered, tuple(s - 1 for s in stride))


def _conv_geometry(n, opname):
    return window_geometry(n.attrs, opname, dilated=True, n=n.inputs[0].type.rank - 2)


def _conv2d_onnx(b, n, ins):
    stride, pads, dilation = _conv_geometry(n, "conv2d")
    return [b.op("Conv", ins[0], ins[1], strides=list(stride), pads=list(pads), dilations=list(dilation),
                 group=n.attrs.get("groups", 1))]


def _conv2d_input_grad_onnx(b, n, ins):
    g, w, x = n.inputs
    stride, pads, dilation = window_geometry(n.attrs, "conv2d_input_grad", dilated=True, n=x.type.rank - 2)
    return [_transposed_window(b, ins[0], ins[1], g, x, ins[2], w.shape[2:], stride, pads, dilation,
                               n.attrs.get("groups", 1))]


def _conv2d_weight_grad_onnx(b, n, ins):
    """dw[o, c, i...] = sum over n, p... of g[n, o, p...] x[n, c, p*s + i*d ...]: a convolution of
    x (channels and batch swapped) with g as the filter, stride and dilation swapped; each group
    of filters sees the batch of its own channel group."""
    stride, pads, dilation = _conv_geometry(n, "conv2d_weight_grad")
    x, g, w = n.inputs
    groups, in_c, kernel = n.attrs.get("groups", 1), w.shape[1], list(w.shape[2:])
    axes = _spatial(x)
    swap = [1, 0] + axes
    if groups == 1:
        xt = b.op("Transpose", ins[0], perm=swap)                                  # [C, N, ...]
    else:
        split = b.op("Reshape", ins[0], onnx_dims(b, [(x, ins[0], 0), groups, in_c] + [(x, ins[0], a) for a in axes]))
        moved = b.op("Transpose", split, perm=[2, 1, 0] + [a + 1 for a in axes])  # [C/G, G, N, ...]
        xt = b.op("Reshape", moved, onnx_dims(b, [in_c, -1] + [(x, ins[0], a) for a in axes]))
    gt = b.op("Transpose", ins[1], perm=swap)                                      # [O, N, ...]
    full = b.op("Conv", xt, gt, strides=list(dilation), dilations=list(stride), pads=list(pads), group=groups)
    cut = b.op("Slice", full, b.ints([0] * len(axes)), b.ints(kernel), b.ints(axes))
    return [b.op("Transpose", cut, perm=swap)]


def _pool_onnx_attrs(n, opname, dilations=True):
    kernel, stride, pads, dilation = pool_geometry(n.inputs[0].shape, n.attrs, opname)
    attrs = dict(kernel_shape=list(kernel), strides=list(stride), pads=list(pads))
    return dict(attrs, dilations=list(dilation)) if dilations and max(dilation) > 1 else attrs


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


def _planes(b, value: Value, name: str) -> str:
    """[N, C, ...] as [N*C, 1, ...]: every channel on its own, for a one-filter convolution."""
    return b.op("Reshape", name, onnx_dims(b, [-1, 1] + [(value, name, a) for a in _spatial(value)]))


def _mean_filter(b, kernel, dtype: str) -> str:
    return b.const(np.full((1, 1) + tuple(kernel), 1.0 / int(np.prod(kernel))), dtype)


def _avg_pool2d_onnx(b, n, ins):
    x = n.inputs[0]
    kernel, stride, pads, dilation = pool_geometry(x.shape, n.attrs, "avg_pool2d")
    if max(dilation) == 1:
        return [b.op("AveragePool", ins[0], count_include_pad=1, **_pool_onnx_attrs(n, "avg_pool2d"))]
    # AveragePool has dilations from opset 19 on: a dilated convolution with a constant mean filter
    y = b.op("Conv", _planes(b, x, ins[0]), _mean_filter(b, kernel, x.dtype), strides=list(stride),
             pads=list(pads), dilations=list(dilation))
    out = n.outputs[0]         # [N*C, 1, ...] -> [N, C, ...]; the spatial sizes are the output's, as y's
    return [b.op("Reshape", y, onnx_dims(b, [(x, ins[0], 0), (x, ins[0], 1)] + [(out, y, a) for a in _spatial(x)]))]


def _avg_pool2d_grad_onnx(b, n, ins):
    """Every channel on its own ([N*C, 1, ...]) through a transposed convolution with a constant
    1/K kernel."""
    g, x = n.inputs
    kernel, stride, pads, dilation = pool_geometry(x.shape, n.attrs, "avg_pool2d_grad")
    one = g.type.with_shape((1, 1) + tuple(g.shape[2:]))
    spread = _transposed_window(b, _planes(b, g, ins[0]), _mean_filter(b, kernel, g.dtype), Value("planes", one),
                                x, ins[1], kernel, stride, pads, dilation, 1)
    return [b.op("Reshape", spread, onnx_shape(b, x, ins[1]))]


def _resize_onnx(b, n, ins):
    """ONNX Resize over the resized axes (opset 18's `axes`): by output size where the scale is
    size / input size, else by the scales themselves (which set the sampling positions too)."""
    x = n.inputs[0]
    a = n.attrs
    axes, sizes, scales = list(a["axes"]), list(a["sizes"]), [float(s) for s in a["scales"]]
    by_size = all(s == size / x.shape[axis] for axis, size, s in zip(axes, sizes, scales))
    coordinates = a.get("coordinates", "half_pixel")
    roi = b.const(np.asarray(a["roi"], dtype=np.float32)) if coordinates == "tf_crop_and_resize" and a.get("roi") else ""
    amounts = ["", b.ints(sizes)] if by_size else [b.const(np.asarray(scales, dtype=np.float32)), ""]
    return [b.op("Resize", ins[0], roi, *amounts, axes=axes, mode=a.get("mode", "nearest"),
                 coordinate_transformation_mode=coordinates, nearest_mode=a.get("nearest", "round_prefer_floor"),
                 cubic_coeff_a=float(a.get("cubic_a", -0.75)), exclude_outside=int(bool(a.get("exclude_outside"))),
                 antialias=int(bool(a.get("antialias"))), extrapolation_value=float(a.get("extrapolation", 0.0)))]


def _resize_grad_onnx(b, n, ins):
    """The transposed interpolation matrix of each resized axis, applied by MatMul with that axis
    moved last."""
    g, x = n.inputs
    out = ins[0]
    for axis, rows, _ in resize_plan(n.attrs, x.shape):
        matrix = np.zeros((len(rows), x.shape[axis]))
        for o, row in enumerate(rows):
            for i, weight in row:
                matrix[o, i] = weight
        perm = [d for d in range(g.type.rank) if d != axis] + [axis]
        moved = b.op("MatMul", b.op("Transpose", out, perm=perm), b.const(matrix, g.dtype))
        out = b.op("Transpose", moved, perm=[perm.index(d) for d in range(g.type.rank)])
    return [out]


LOWERINGS.update({
    "resize": _resize_onnx,
    "resize_grad": _resize_grad_onnx,
    "conv2d": _conv2d_onnx,
    "conv2d_input_grad": _conv2d_input_grad_onnx,
    "conv2d_weight_grad": _conv2d_weight_grad_onnx,
    "max_pool2d": _max_pool2d_onnx,
    "max_pool2d_grad": _max_pool2d_grad_onnx,
    "max_pool2d_select": _max_pool2d_select_onnx,
    "avg_pool2d": _avg_pool2d_onnx,
    "avg_pool2d_grad": _avg_pool2d_grad_onnx,
})
