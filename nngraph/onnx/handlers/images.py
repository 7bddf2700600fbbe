"""Images: Conv, ConvTranspose and pooling (MaxPool, AveragePool, the global pools) as nngraph's
2-d window ops."""
from __future__ import annotations

import numpy as np

from nngraph.ir import Value
from nngraph.ir.registry import ShapeError
from nngraph.onnx.context import Ctx, DimRef, Reject
from nngraph.onnx.handlers.common import (
    fill_of,
    float_input,
    lined_positions,
    need_float,
    same_dtype,
    shape_like,
    size_of,
    squeeze,
    static_dims,
)
from nngraph.onnx.handlers.registry import handles


# ---------------------------------------------------------------- images: convolution and pooling
# nngraph's conv2d and pools are 2-D (NCHW) with pads (top, left, bottom, right), ONNX's order. A
# 1-D window op runs as a 2-D one over a height of 1.
def spatial_rank(cx: Ctx, x: Value, what: str) -> int:
    spatial = x.type.rank - 2
    if spatial not in (1, 2):
        raise Reject(f"{spatial}-d {what} (nngraph has 1-d and 2-d)" if spatial > 2 else f"rank {x.type.rank} input")
    return spatial


def window_ints(cx: Ctx, name: str, spatial: int, default: int) -> list[int]:
    values = [int(v) for v in cx.attr(name, [default] * spatial)]
    if len(values) != spatial:
        raise Reject(f"{name} of length {len(values)} for {spatial} spatial axes")
    return values


def window_pads(cx: Ctx, x: Value, extents: list[int], strides: list[int]) -> list[int]:
    """Explicit pads, or the ones auto_pad asks for: SAME_UPPER/SAME_LOWER give an output of
    ceil(size / stride) (the odd pixel at the end or at the start), VALID none."""
    spatial = len(extents)
    mode = cx.attr("auto_pad", "NOTSET")
    if mode == "NOTSET":
        pads = [int(p) for p in cx.attr("pads", [0] * 2 * spatial)]
        if len(pads) != 2 * spatial:
            raise Reject(f"pads of length {len(pads)} for {spatial} spatial axes")
        return pads
    if "pads" in cx.attrs:
        raise Reject("auto_pad together with pads")
    if mode == "VALID":
        return [0] * 2 * spatial
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise Reject(f"auto_pad={mode}")
    begins, ends = [], []
    for size, extent, stride in zip(x.shape[2:], extents, strides):
        if isinstance(size, int):
            total = max(0, (-(-size // stride) - 1) * stride + extent - size)
        elif stride == 1:
            total = extent - 1
        else:
            raise Reject("auto_pad SAME on a symbolic size with a stride above 1")
        small, large = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else large)
        ends.append(large if mode == "SAME_UPPER" else small)
    return begins + ends


def as_2d(cx: Ctx, x: Value, spatial: int) -> Value:
    """[N, C, L] as [N, C, 1, L]."""
    return x if spatial == 2 else cx.op("expand_dims", x, axes=(2,))


def from_2d(cx: Ctx, y: Value, spatial: int) -> Value:
    return y if spatial == 2 else squeeze(cx, y, [2])


def pairs_2d(values: list[int], spatial: int, fill: int) -> tuple[int, ...]:
    """A 1-D op's strides or dilations as (height, width), the height being the unit axis."""
    return tuple(values) if spatial == 2 else (fill, values[0])


def pads_2d(pads: list[int], spatial: int) -> tuple[int, ...]:
    return tuple(pads) if spatial == 2 else (0, pads[0], 0, pads[1])


@handles("Conv")
def _conv(cx: Ctx) -> Value:
    x, w = cx.x(0), cx.x(1)
    need_float(cx, x)
    same_dtype(cx, x, w)
    spatial = spatial_rank(cx, x, "convolution")
    kernel = list(w.shape[2:])
    if w.type.rank != x.type.rank or not all(isinstance(k, int) for k in kernel):
        raise Reject("filters of a spatial size not known at import")
    if [int(k) for k in cx.attr("kernel_shape", kernel)] != kernel:
        raise Reject("kernel_shape that differs from the filters")
    strides, dilations = window_ints(cx, "strides", spatial, 1), window_ints(cx, "dilations", spatial, 1)
    pads = window_pads(cx, x, [d * (k - 1) + 1 for d, k in zip(dilations, kernel)], strides)
    attrs = {"stride": pairs_2d(strides, spatial, 1), "pads": pads_2d(pads, spatial),
             "dilation": pairs_2d(dilations, spatial, 1), "groups": int(cx.attr("group", 1))}
    x2, w2 = as_2d(cx, x, spatial), as_2d(cx, w, spatial)
    if all(isinstance(d, int) for d in w.shape):
        y = cx.op("conv2d", x2, w2, **attrs)
    else:
        y = _conv_as_weight_grad(cx, x2, w2, attrs)
    if cx.has(2):      # a bias per output channel: [C] lined up with axis 1
        bias = cx.x(2)
        same_dtype(cx, x, bias)
        y = cx.op("add", y, cx.op("expand_dims", bias, axes=(1, 2)))
    return from_2d(cx, y, spatial)


def _conv_as_weight_grad(cx: Ctx, x: Value, w: Value, attrs: dict) -> Value:
    """A Conv whose filters' channel count is known only at run time: exporters write a
    convolution's weight gradient that way (the input, batch and channels swapped, convolved with
    the output gradient as filters, the batch being the channels summed over). That is nngraph's
    conv2d_weight_grad with the roles swapped back: stride and dilation trade places, and a
    constant the size of the result stands for the filters it would be the gradient of."""
    if attrs["groups"] != 1:
        raise Reject("grouped Conv with filters of a size not known at import")
    batch, out_c = x.shape[0], w.shape[0]
    sizes = [_window_out_size(x.shape[2 + a], w.shape[2 + a], attrs, a) for a in range(2)]
    if not all(isinstance(d, int) for d in [batch, out_c] + sizes):
        raise Reject("Conv with filters of a size not known at import")
    swapped = (1, 0, 2, 3)
    ref = cx.imp.constant(np.broadcast_to(np.zeros((), dtype=x.dtype), (out_c, batch, *sizes)))
    try:
        grad = cx.op("conv2d_weight_grad", cx.op("transpose", x, perm=swapped), cx.op("transpose", w, perm=swapped),
                     ref, stride=attrs["dilation"], pads=attrs["pads"], dilation=attrs["stride"])
    except ShapeError:
        raise Reject("Conv with filters of a size not known at import") from None
    return cx.op("transpose", grad, perm=swapped)


def _window_out_size(size, kernel, attrs: dict, axis: int):
    if not isinstance(size, int) or not isinstance(kernel, int):
        return None
    padded = size + attrs["pads"][axis] + attrs["pads"][axis + 2]
    return (padded - attrs["dilation"][axis] * (kernel - 1) - 1) // attrs["stride"][axis] + 1


@handles("ConvTranspose")
def _conv_transpose(cx: Ctx) -> Value:
    """The adjoint of a convolution, nngraph's conv2d_input_grad: its output has the shape of the
    input of the convolution it transposes (a value of that shape tells conv2d_input_grad)."""
    g, w = cx.x(0), cx.x(1)
    need_float(cx, g)
    same_dtype(cx, g, w)
    spatial = spatial_rank(cx, g, "transposed convolution")
    kernel, sizes = list(w.shape[2:]), list(g.shape[2:])
    if w.type.rank != g.type.rank or not all(isinstance(d, int) for d in kernel + [w.shape[1]]):
        raise Reject("filters of a shape not known at import")
    if not all(isinstance(d, int) for d in sizes):
        raise Reject("a symbolic height or width")
    if [int(k) for k in cx.attr("kernel_shape", kernel)] != kernel:
        raise Reject("kernel_shape that differs from the filters")
    strides, dilations = window_ints(cx, "strides", spatial, 1), window_ints(cx, "dilations", spatial, 1)
    extra = window_ints(cx, "output_padding", spatial, 0)
    # the output before any padding is cut away
    full = [s * (n - 1) + d * (k - 1) + 1 + e for s, n, d, k, e in zip(strides, sizes, dilations, kernel, extra)]
    pads = _transpose_pads(cx, full, sizes, strides)
    grow, pads = [max(-p, 0) for p in pads], [max(p, 0) for p in pads]     # an output_shape beyond the full output
    group = int(cx.attr("group", 1))
    out = [f - pads[a] - pads[spatial + a] for a, f in enumerate(full)]
    ref = shape_like(cx, [DimRef(g, 0), w.shape[1] * group] + ([] if spatial == 2 else [1]) + out)
    try:
        y = cx.op("conv2d_input_grad", as_2d(cx, g, spatial), as_2d(cx, w, spatial), ref,
                  stride=pairs_2d(strides, spatial, 1), pads=pads_2d(pads, spatial),
                  dilation=pairs_2d(dilations, spatial, 1), groups=group)
    except ShapeError:
        raise Reject("output_padding not smaller than the stride") from None
    if any(grow):        # rows and columns no window reaches: zeros
        top, left, bottom, right = pads_2d(grow, spatial)
        y = cx.op("pad", y, pads=(0, 0, top, left, 0, 0, bottom, right), value=0.0)
    if cx.has(2):
        bias = cx.x(2)
        same_dtype(cx, g, bias)
        y = cx.op("add", y, cx.op("expand_dims", bias, axes=(1, 2)))
    return from_2d(cx, y, spatial)


def _transpose_pads(cx: Ctx, full: list[int], sizes: list[int], strides: list[int]) -> list[int]:
    """ConvTranspose's pads: explicit, or cut from the full output to reach `output_shape` (or
    size * stride for auto_pad SAME), the odd one at the start unless SAME_UPPER."""
    spatial = len(full)
    mode = cx.attr("auto_pad", "NOTSET")
    target = cx.attr("output_shape", None)
    if target is None and mode in ("SAME_UPPER", "SAME_LOWER"):
        target = [n * s for n, s in zip(sizes, strides)]
    if target is not None:
        totals = [f - int(t) for f, t in zip(full, list(target)[-spatial:])]
        begins = [t // 2 if mode == "SAME_UPPER" else t - t // 2 for t in totals]
        cx.ignore("pads")
        return begins + [t - b for t, b in zip(totals, begins)]
    if mode == "VALID":
        return [0] * 2 * spatial
    if mode != "NOTSET":
        raise Reject(f"auto_pad={mode}")
    pads = [int(p) for p in cx.attr("pads", [0] * 2 * spatial)]
    if len(pads) != 2 * spatial:
        raise Reject(f"pads of length {len(pads)} for {spatial} spatial axes")
    return pads


def pool_geometry(cx: Ctx, x: Value, spatial: int) -> tuple[list[int], list[int], list[int]]:
    """kernel, strides and pads of a pooling node; with ceil_mode the last, partial windows come
    from extra padding at the end (a window must still start inside the input or its padding)."""
    kernel = window_ints(cx, "kernel_shape", spatial, 0)
    if any(k < 1 for k in kernel):
        raise Reject("no kernel_shape")
    strides = window_ints(cx, "strides", spatial, 1)
    if window_ints(cx, "dilations", spatial, 1) != [1] * spatial:
        raise Reject("dilations other than 1")
    pads = window_pads(cx, x, kernel, strides)
    if cx.attr("ceil_mode", 0):
        extra = ceil_extra(x, kernel, strides, pads)
        pads = pads[:spatial] + [end + more for end, more in zip(pads[spatial:], extra)]
    return kernel, strides, pads


def ceil_extra(x: Value, kernel, strides, pads) -> list[int]:
    spatial = len(kernel)
    extra = []
    for axis, (size, k, s) in enumerate(zip(x.shape[2:], kernel, strides)):
        if not isinstance(size, int):
            raise Reject("ceil_mode=1 on a symbolic size")
        begin, end = pads[axis], pads[spatial + axis]
        out = -(-(size + begin + end - k) // s) + 1
        if (out - 1) * s >= size + begin:       # the last window would start in the end padding
            out -= 1
        extra.append(max(0, (out - 1) * s + k - (size + begin + end)))
    return extra


def pool_attrs(kernel, strides, pads, spatial: int) -> dict:
    return {"kernel": pairs_2d(kernel, spatial, 1), "stride": pairs_2d(strides, spatial, 1),
            "pads": pads_2d(pads, spatial)}


@handles("MaxPool")
def _max_pool(cx: Ctx) -> list[Value]:
    x = cx.x(0)
    need_float(cx, x)
    spatial = spatial_rank(cx, x, "pooling")
    attrs = pool_attrs(*pool_geometry(cx, x, spatial), spatial)
    column_major = cx.attr("storage_order", 0) == 1
    x2 = as_2d(cx, x, spatial)
    y = from_2d(cx, cx.op("max_pool2d", x2, **attrs), spatial)
    if len(cx.node.output) < 2 or not cx.node.output[1]:
        return [y]
    return [y, from_2d(cx, max_pool_indices(cx, x2, attrs, column_major), spatial)]


def max_pool_indices(cx: Ctx, x: Value, attrs: dict, column_major: bool) -> Value:
    """MaxPool's Indices: where each window's maximum sits in the flattened input (height and width
    swapped within each image for storage_order 1). max_pool2d_select reads a tensor shaped like x
    at the maxima; reading x's flat positions (in float64: exact up to 2**53) gives the indices."""
    n, c, h, w = (lined_positions(cx, x, axis) for axis in range(4))
    if column_major:
        inner = cx.op("add", cx.op("mul", w, size_of(cx, x, (2,))), h)
    else:
        inner = cx.op("add", cx.op("mul", h, size_of(cx, x, (3,))), w)
    image = cx.op("add", cx.op("mul", n, size_of(cx, x, (1,))), c)
    where = cx.op("add", cx.op("mul", image, size_of(cx, x, (2, 3))), inner)
    x64 = x if x.dtype == "float64" else cx.op("cast", x, dtype="float64")
    picked = cx.op("max_pool2d_select", x64, cx.op("cast", where, dtype="float64"), **attrs)
    return cx.op("cast", picked, dtype="int64")


@handles("AveragePool")
def _average_pool(cx: Ctx) -> Value:
    """avg_pool2d divides by the whole window, padding included (count_include_pad=1). Other
    divisors (count_include_pad=0, ceil_mode's partial windows) divide the same result by the
    share of each window that counts: the average of a mask of ones over the counted area."""
    x = cx.x(0)
    need_float(cx, x)
    spatial = spatial_rank(cx, x, "pooling")
    kernel, strides, pads = pool_geometry(cx, x, spatial)
    explicit = window_pads(cx, x, kernel, strides)
    include = bool(cx.attr("count_include_pad", 0))
    x2 = as_2d(cx, x, spatial)
    y = cx.op("avg_pool2d", x2, **pool_attrs(kernel, strides, pads, spatial))
    counted = explicit if include else [0] * 2 * spatial
    if counted == pads:       # every padded position counts: the plain average
        return from_2d(cx, y, spatial)
    mask = pool_mask(cx, x2, pads_2d(counted, spatial))
    uncounted = [p - c for p, c in zip(pads, counted)]
    share = cx.op("avg_pool2d", mask, **pool_attrs(kernel, strides, uncounted, spatial))
    return from_2d(cx, cx.op("div", y, share), spatial)


def pool_mask(cx: Ctx, x: Value, counted: tuple) -> Value:
    """Ones over x's height and width (and the `counted` padding): [1, 1, H', W']."""
    entries = [1, 1, DimRef(x, 2), DimRef(x, 3)]
    mask = fill_of(cx, entries, 1.0, x.dtype) if static_dims(x, (2, 3)) is None else \
        cx.imp.constant(np.ones([1, 1] + static_dims(x, (2, 3)), dtype=x.dtype))
    if any(counted):
        mask = cx.op("pad", mask, pads=(0, 0, counted[0], counted[1], 0, 0, counted[2], counted[3]), value=1.0)
    return mask


@handles("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(cx: Ctx) -> Value:
    x = float_input(cx)
    if x.type.rank < 3:
        raise Reject(f"rank {x.type.rank} input (needs N, C and spatial axes)")
    axes = tuple(range(2, x.type.rank))
    return cx.op("mean" if cx.node.op_type == "GlobalAveragePool" else "max", x, axes=axes, keepdims=True)
