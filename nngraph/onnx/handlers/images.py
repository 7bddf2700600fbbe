"""Images: Conv, ConvTranspose and pooling (MaxPool, AveragePool, the global pools) over 1, 2 or 3
spatial axes as nngraph's window ops; Resize (in handlers/resize.py's words, below)."""
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
    static_dims,
)
from nngraph.onnx.handlers.registry import handles


# ---------------------------------------------------------------- images: convolution and pooling
# nngraph's window ops take 1, 2 or 3 spatial axes with pads (all starts, then all ends), ONNX's
# order, so the attributes carry over as they are.
def spatial_rank(cx: Ctx, x: Value, what: str) -> int:
    spatial = x.type.rank - 2
    if spatial not in (1, 2, 3):
        raise Reject(f"{spatial}-d {what} (nngraph has 1-d, 2-d and 3-d)" if spatial > 3 else f"rank {x.type.rank} input")
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


def bias_add(cx: Ctx, y: Value, like: Value) -> Value:
    """Conv's and ConvTranspose's optional bias, one per output channel, lined up with axis 1."""
    if not cx.has(2):
        return y
    bias = cx.x(2)
    same_dtype(cx, like, bias)
    return cx.op("add", y, cx.op("expand_dims", bias, axes=tuple(range(1, y.type.rank - 1))))


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
    attrs = {"stride": tuple(strides), "pads": tuple(pads), "dilation": tuple(dilations),
             "groups": int(cx.attr("group", 1))}
    if all(isinstance(d, int) for d in w.shape):
        y = cx.op("conv2d", x, w, **attrs)
    else:
        y = _conv_as_weight_grad(cx, x, w, attrs)
    return bias_add(cx, y, x)


def _conv_as_weight_grad(cx: Ctx, x: Value, w: Value, attrs: dict) -> Value:
    """A Conv whose filters' channel count is known only at run time: exporters write a
    convolution's weight gradient that way (the input, batch and channels swapped, convolved with
    the output gradient as filters, the batch being the channels summed over). That is nngraph's
    conv2d_weight_grad with the roles swapped back: stride and dilation trade places, and a
    constant the size of the result stands for the filters it would be the gradient of."""
    if attrs["groups"] != 1:
        raise Reject("grouped Conv with filters of a size not known at import")
    batch, out_c, spatial = x.shape[0], w.shape[0], x.type.rank - 2
    sizes = [_window_out_size(x.shape[2 + a], w.shape[2 + a], attrs, a) for a in range(spatial)]
    if not all(isinstance(d, int) for d in [batch, out_c] + sizes):
        raise Reject("Conv with filters of a size not known at import")
    swapped = (1, 0) + tuple(range(2, x.type.rank))
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
    padded = size + attrs["pads"][axis] + attrs["pads"][axis + len(attrs["stride"])]
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
    ref = shape_like(cx, [DimRef(g, 0), w.shape[1] * group] + out)
    try:
        y = cx.op("conv2d_input_grad", g, w, ref, stride=tuple(strides), pads=tuple(pads),
                  dilation=tuple(dilations), groups=group)
    except ShapeError:
        raise Reject("output_padding not smaller than the stride") from None
    if any(grow):        # elements no window reaches: zeros
        y = cx.op("pad", y, pads=(0, 0, *grow[:spatial], 0, 0, *grow[spatial:]), value=0.0)
    return bias_add(cx, y, g)


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


def pool_geometry(cx: Ctx, x: Value, spatial: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """kernel, strides, pads and dilations of a pooling node; with ceil_mode the last, partial
    windows come from extra padding at the end (a window must still start inside the input or its
    padding)."""
    kernel = window_ints(cx, "kernel_shape", spatial, 0)
    if any(k < 1 for k in kernel):
        raise Reject("no kernel_shape")
    strides = window_ints(cx, "strides", spatial, 1)
    dilations = window_ints(cx, "dilations", spatial, 1)
    extents = [d * (k - 1) + 1 for d, k in zip(dilations, kernel)]
    pads = window_pads(cx, x, extents, strides)
    if cx.attr("ceil_mode", 0):
        extra = ceil_extra(x, extents, strides, pads)
        pads = pads[:spatial] + [end + more for end, more in zip(pads[spatial:], extra)]
    return kernel, strides, pads, dilations


def ceil_extra(x: Value, extents, strides, pads) -> list[int]:
    spatial = len(extents)
    extra = []
    for axis, (size, k, s) in enumerate(zip(x.shape[2:], extents, strides)):
        if not isinstance(size, int):
            raise Reject("ceil_mode=1 on a symbolic size")
        begin, end = pads[axis], pads[spatial + axis]
        out = -(-(size + begin + end - k) // s) + 1
        if (out - 1) * s >= size + begin:       # the last window would start in the end padding
            out -= 1
        extra.append(max(0, (out - 1) * s + k - (size + begin + end)))
    return extra


def pool_attrs(kernel, strides, pads, dilations) -> dict:
    return {"kernel": tuple(kernel), "stride": tuple(strides), "pads": tuple(pads), "dilation": tuple(dilations)}


@handles("MaxPool")
def _max_pool(cx: Ctx) -> list[Value]:
    x = cx.x(0)
    need_float(cx, x)
    spatial = spatial_rank(cx, x, "pooling")
    attrs = pool_attrs(*pool_geometry(cx, x, spatial))
    column_major = cx.attr("storage_order", 0) == 1
    try:
        y = cx.op("max_pool2d", x, **attrs)
    except ShapeError as err:       # e.g. a padding that would make a window of padding only
        raise Reject(str(err)) from None
    if len(cx.node.output) < 2 or not cx.node.output[1]:
        return [y]
    return [y, max_pool_indices(cx, x, attrs, column_major)]


def max_pool_indices(cx: Ctx, x: Value, attrs: dict, column_major: bool) -> Value:
    """MaxPool's Indices: where each window's maximum sits in the flattened input (the spatial axes
    in reverse order within each image for storage_order 1). max_pool2d_select reads a tensor
    shaped like x at the maxima; reading x's flat positions (in float64: exact up to 2**53) gives
    the indices."""
    rank = x.type.rank
    spatial = list(range(2, rank))
    order = spatial[::-1] if column_major else spatial
    inner = None
    for axis in order:        # Horner's rule over the spatial axes, the last one varying fastest
        here = lined_positions(cx, x, axis)
        inner = here if inner is None else cx.op("add", cx.op("mul", inner, size_of(cx, x, (axis,))), here)
    n, c = lined_positions(cx, x, 0), lined_positions(cx, x, 1)
    image = cx.op("add", cx.op("mul", n, size_of(cx, x, (1,))), c)
    where = cx.op("add", cx.op("mul", image, size_of(cx, x, tuple(spatial))), inner)
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
    kernel, strides, pads, dilations = pool_geometry(cx, x, spatial)
    explicit = window_pads(cx, x, [d * (k - 1) + 1 for d, k in zip(dilations, kernel)], strides)
    include = bool(cx.attr("count_include_pad", 0))
    try:
        y = cx.op("avg_pool2d", x, **pool_attrs(kernel, strides, pads, dilations))
    except ShapeError as err:
        raise Reject(str(err)) from None
    counted = explicit if include else [0] * 2 * spatial
    if counted == pads:       # every padded position counts: the plain average
        return y
    mask = pool_mask(cx, x, counted)
    uncounted = [p - c for p, c in zip(pads, counted)]
    share = cx.op("avg_pool2d", mask, **pool_attrs(kernel, strides, uncounted, dilations))
    return cx.op("div", y, share)


def pool_mask(cx: Ctx, x: Value, counted: list) -> Value:
    """Ones over x's spatial axes (and the `counted` padding): [1, 1, ...]."""
    spatial = tuple(range(2, x.type.rank))
    entries = [1, 1] + [DimRef(x, a) for a in spatial]
    mask = fill_of(cx, entries, 1.0, x.dtype) if static_dims(x, spatial) is None else \
        cx.imp.constant(np.ones([1, 1] + static_dims(x, spatial), dtype=x.dtype))
    if any(counted):
        n = len(spatial)
        mask = cx.op("pad", mask, pads=(0, 0, *counted[:n], 0, 0, *counted[n:]), value=1.0)
    return mask


@handles("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(cx: Ctx) -> Value:
    x = float_input(cx)
    if x.type.rank < 3:
        raise Reject(f"rank {x.type.rank} input (needs N, C and spatial axes)")
    axes = tuple(range(2, x.type.rank))
    return cx.op("mean" if cx.node.op_type == "GlobalAveragePool" else "max", x, axes=axes, keepdims=True)


# ---------------------------------------------------------------- Resize (and Upsample, its ancestor)
def _optional_static(cx: Ctx, i: int, what: str) -> np.ndarray | None:
    """An optional constant input: absent, or empty (exporters write an empty tensor), is None."""
    if not cx.has(i):
        return None
    array = np.asarray(cx.static(i, what)).reshape(-1)
    return array if array.size else None


@handles("Resize", "Upsample")
def _resize(cx: Ctx) -> Value:
    """nngraph's resize over the axes that change (the others may be symbolic: a batch)."""
    x = cx.x(0)
    need_float(cx, x)
    rank = x.type.rank
    if cx.node.op_type == "Upsample" or cx.opset < 11:        # Upsample and Resize-10: asymmetric, floor
        scales, sizes, roi = _optional_static(cx, 1, "scales"), None, None
        if cx.node.op_type == "Upsample" and cx.opset < 9:
            scales = np.asarray(cx.attr("scales", []), dtype=np.float64)
        mode = cx.attr("mode", "nearest")
        coordinates, nearest, cubic_a, exclude, extrapolation, antialias = "asymmetric", "floor", -0.75, 0, 0.0, 0
        axes = list(range(rank))
    else:
        mode, coordinates = cx.attr("mode", "nearest"), cx.attr("coordinate_transformation_mode", "half_pixel")
        scales, sizes = _optional_static(cx, 2, "scales"), _optional_static(cx, 3, "sizes")
        roi = _optional_static(cx, 1, "roi") if coordinates == "tf_crop_and_resize" else None    # read only then
        nearest, cubic_a = cx.attr("nearest_mode", "round_prefer_floor"), float(cx.attr("cubic_coeff_a", -0.75))
        exclude, extrapolation = int(cx.attr("exclude_outside", 0)), float(cx.attr("extrapolation_value", 0.0))
        antialias = int(cx.attr("antialias", 0))
        axes = [a % rank for a in cx.attr("axes", list(range(rank)))]
    mode = {"bilinear": "linear", "trilinear": "linear"}.get(mode, mode)      # Upsample-7's names
    if mode not in ("nearest", "linear", "cubic"):
        raise Reject(f"mode={mode}")
    if antialias and mode == "nearest":
        raise Reject("antialias with mode=nearest")
    if (scales is None) == (sizes is None):
        raise Reject("both scales and sizes" if scales is not None else "neither scales nor sizes")
    amounts = scales if scales is not None else sizes
    if len(amounts) != len(axes):
        raise Reject(f"{len(amounts)} scales or sizes for {len(axes)} axes")
    inputs = [x.shape[a] for a in axes]
    if sizes is not None:
        scales, sizes = _sizes_policy(cx, [int(s) for s in sizes], inputs, axes)
    else:
        scales = [float(s) for s in scales]
        if any(not isinstance(d, int) for d, s in zip(inputs, scales) if s != 1):
            raise Reject("resizing an axis of a size not known at import")
        sizes = [int(d * s) if isinstance(d, int) else d for d, s in zip(inputs, scales)]
    if coordinates == "tf_crop_and_resize":
        if roi is None or len(roi) != 2 * len(axes):
            raise Reject("tf_crop_and_resize without a region of interest for every axis")
        roi = [float(r) for r in roi]
    kept = [k for k, (d, size, scale) in enumerate(zip(inputs, sizes, scales))
            if not (d == size and scale == 1 and (roi is None or roi[k] == 0 and roi[len(axes) + k] == 1))]
    if not kept:
        return x
    attrs = dict(axes=tuple(axes[k] for k in kept), sizes=tuple(int(sizes[k]) for k in kept),
                 scales=tuple(scales[k] for k in kept), mode=mode, coordinates=coordinates, nearest=nearest,
                 cubic_a=cubic_a, exclude_outside=bool(exclude), antialias=bool(antialias), extrapolation=extrapolation)
    if roi is not None:
        attrs["roi"] = tuple(roi[k] for k in kept) + tuple(roi[len(axes) + k] for k in kept)
    try:
        return cx.op("resize", x, **attrs)
    except ShapeError as err:
        raise Reject(str(err)) from None


def _sizes_policy(cx: Ctx, sizes: list[int], inputs: list, axes: list[int]) -> tuple[list[float], list[int]]:
    """Scales (size / input size) and sizes under keep_aspect_ratio_policy: `not_larger` and
    `not_smaller` scale every axis alike, by the smallest or the largest ratio."""
    if any(not isinstance(d, int) for d, s in zip(inputs, sizes) if d != s):
        raise Reject("resizing an axis of a size not known at import")
    policy = cx.attr("keep_aspect_ratio_policy", "stretch")
    ratios = [s / d if isinstance(d, int) else 1.0 for d, s in zip(inputs, sizes)]
    if policy == "stretch":
        return ratios, sizes
    if policy not in ("not_larger", "not_smaller"):
        raise Reject(f"keep_aspect_ratio_policy={policy}")
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    return [scale] * len(axes), [int(scale * d + 0.5) for d in inputs]
