"""Images: convolution and pooling over 1, 2 or 3 spatial axes ([N, C, L], [N, C, H, W],
[N, C, D, H, W]), each with the ops its gradient needs; and resizing (interpolation), below.

The ops keep their first names (`conv2d`, `max_pool2d`, ...): the number of spatial axes comes from
the input's rank, and the spatial attributes have one entry per spatial axis (`pads` two: all the
starts, then all the ends, ONNX's order; for images (top, left, bottom, right))."""
from __future__ import annotations

import functools
import math

from nngraph.ir.registry import defop
from nngraph.ir.types import Dim, TensorType
from nngraph.ops.rules import dim_add, fmt_shape, require, require_float, same_dtype

AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
LAYOUTS = {1: "[N, C, L]", 2: "[N, C, H, W]", 3: "[N, C, D, H, W]"}


def pair(attrs: dict, key: str, default: int, n: int = 2) -> tuple[int, ...]:
    """A spatial attribute as n integers (one integer stands for all n)."""
    value = attrs.get(key, default)
    value = (value,) * n if isinstance(value, int) else tuple(value)
    require(len(value) == n and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
           f"`{key}` must be {n} integers, got {value}")
    return value


def window_geometry(attrs: dict, opname: str, dilated: bool = True, n: int = 2):
    """(stride, pads, dilation) of a window op with n spatial axes, checked."""
    stride, pads = pair(attrs, "stride", 1, n), pair(attrs, "pads", 0, 2 * n)
    dilation = pair(attrs, "dilation", 1, n) if dilated else (1,) * n
    require(min(stride) >= 1, f"`{opname}` needs strides of at least 1, got {stride}")
    require(min(dilation) >= 1, f"`{opname}` needs dilations of at least 1, got {dilation}")
    require(min(pads) >= 0, f"`{opname}` needs paddings of at least 0, got {pads}")
    return stride, pads, dilation


def _window_out(size: Dim, extent: int, stride: int, before: int, after: int, what: str, opname: str) -> Dim:
    """How many windows of `extent` (the dilated kernel size) fit along an axis."""
    if isinstance(size, int):
        require(size + before + after >= extent,
               f"`{opname}`: the input's {what} {size}" + (f" (padded to {size + before + after})" if before + after else "")
               + f" is smaller than the window's {extent}")
        return (size + before + after - extent) // stride + 1
    if stride == 1:
        return dim_add(size, before + after - extent + 1)
    return f"({dim_add(size, before + after - extent)})//{stride}+1"


def windows_out(x: tuple, extents, stride, pads, opname: str) -> tuple:
    """The spatial sizes of the output of a window op on input shape x."""
    n = len(x) - 2
    return tuple(_window_out(x[2 + a], extents[a], stride[a], pads[a], pads[n + a], AXIS_NAMES[n][a], opname)
                 for a in range(n))


def spatial_rank(t: TensorType, opname: str, what: str = "an input") -> int:
    require(3 <= t.rank <= 5, f"`{opname}` needs {what} of shape {LAYOUTS[2]} (or {LAYOUTS[1]}, {LAYOUTS[3]}), "
                              f"got {fmt_shape(t.shape)}")
    return t.rank - 2


def conv2d_shape(x: tuple, w: tuple, attrs: dict, opname: str = "conv2d") -> tuple:
    """The output shape of a convolution for input shape `x` and filter shape `w`."""
    n = len(w) - 2
    require(len(x) == len(w), f"`{opname}` needs filters with as many axes as the input, got filters "
                              f"{fmt_shape(w)} for input {fmt_shape(x)}")
    stride, pads, dilation = window_geometry(attrs, opname, dilated=True, n=n)
    groups = attrs.get("groups", 1)
    require(isinstance(groups, int) and groups >= 1, f"`{opname}` needs groups >= 1, got {groups}")
    out_c, in_c, kernel = w[0], w[1], w[2:]
    require(all(isinstance(d, int) for d in w),
           f"`{opname}` needs filters of a shape known at compile time, got {fmt_shape(w)}")
    require(out_c % groups == 0, f"`{opname}` with {groups} groups needs a number of filters divisible by "
                                f"{groups}, got {out_c} (filters {fmt_shape(w)})")
    require(not isinstance(x[1], int) or x[1] == in_c * groups,
           f"`{opname}` filters {fmt_shape(w)} read {in_c} channel{'s' if in_c != 1 else ''} per group "
           f"({groups} group{'s' if groups != 1 else ''}, {in_c * groups} in all), but the input {fmt_shape(x)} "
           f"has {x[1]}")
    extents = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    return (x[0], out_c) + windows_out(x, extents, stride, pads, opname)


def _filters_rank(w: TensorType, n: int, opname: str) -> None:
    require(w.rank == n + 2, f"`{opname}` needs filters of shape [out_channels, in_channels / groups, "
                             f"{', '.join('k' + a[0] for a in AXIS_NAMES[n])}], got {fmt_shape(w.shape)}")


def _conv2d_infer(types, attrs):
    x, w = types
    require_float(x, "conv2d")
    same_dtype(types, "conv2d")
    _filters_rank(w, spatial_rank(x, "conv2d"), "conv2d")
    return [x.with_shape(conv2d_shape(x.shape, w.shape, attrs))]


def check_grad_shape(g: TensorType, want: tuple, opname: str) -> None:
    require(tuple(g.shape) == tuple(want),
           f"`{opname}` needs a gradient of shape {fmt_shape(want)}, got {fmt_shape(g.shape)}")


def _conv2d_input_grad_infer(types, attrs):
    g, w, x = types
    require_float(g, "conv2d_input_grad")
    same_dtype([g, w], "conv2d_input_grad")
    _filters_rank(w, spatial_rank(x, "conv2d_input_grad", "a reference"), "conv2d_input_grad")
    check_grad_shape(g, conv2d_shape(x.shape, w.shape, attrs, "conv2d_input_grad"), "conv2d_input_grad")
    return [x.with_dtype(g.dtype)]


def _conv2d_weight_grad_infer(types, attrs):
    x, g, w = types
    require_float(x, "conv2d_weight_grad")
    same_dtype([x, g], "conv2d_weight_grad")
    _filters_rank(w, spatial_rank(x, "conv2d_weight_grad"), "conv2d_weight_grad")
    check_grad_shape(g, conv2d_shape(x.shape, w.shape, attrs, "conv2d_weight_grad"), "conv2d_weight_grad")
    return [w.with_dtype(g.dtype)]


_CONV_ATTRS = ("stride", "pads", "dilation", "groups")


def conv_attrs(node) -> dict:
    return {k: node.attrs[k] for k in _CONV_ATTRS if k in node.attrs}


# conv2d(x, w), I(g, w; x) = conv2d_input_grad and W(x, g; w) = conv2d_weight_grad are the three
# partial gradients of the trilinear <g, conv2d(x, w)>, so each one's VJP is made of the others.
def _conv2d_vjp(e, n, gs, w):
    x, f = n.inputs
    a = conv_attrs(n)
    return [e("conv2d_input_grad", gs[0], f, x, **a) if w[0] else None,
            e("conv2d_weight_grad", x, gs[0], f, **a) if w[1] else None]


def _conv2d_input_grad_vjp(e, n, gs, w):      # <h, I(g, f)> = <g, conv2d(h, f)>
    g, f, _ = n.inputs
    a = conv_attrs(n)
    return [e("conv2d", gs[0], f, **a) if w[0] else None,
            e("conv2d_weight_grad", gs[0], g, f, **a) if w[1] else None, None]


def _conv2d_weight_grad_vjp(e, n, gs, w):     # <h, W(x, g)> = <g, conv2d(x, h)>
    x, g, f = n.inputs
    a = conv_attrs(n)
    return [e("conv2d_input_grad", g, gs[0], x, **a) if w[0] else None,
            e("conv2d", x, gs[0], **a) if w[1] else None, None]


# ---- pooling: `kernel` (one size per spatial axis), `stride`, `pads`, `dilation` (the window
# reads every dilation-th element); a window never lies wholly in the padding. max pads with
# -inf; avg divides by the number of elements of the window, padding included (count_include_pad).
def pool_geometry(x: tuple, attrs: dict, opname: str):
    """(kernel, stride, pads, dilation) of a pool over input shape x, checked."""
    n = len(x) - 2
    kernel = pair(attrs, "kernel", 1, n)
    stride, pads, dilation = window_geometry(attrs, opname, dilated=True, n=n)
    require(min(kernel) >= 1, f"`{opname}` needs a kernel of at least 1, got {kernel}")
    extents = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    what = "kernel" if max(dilation) == 1 else "dilated kernel's extent"
    require(all(p < e for p, e in zip(pads, extents * 2)),
           f"`{opname}` needs each padding smaller than the {what}, got padding {pads} for kernel {kernel}"
           + (f" with dilation {dilation}" if max(dilation) > 1 else ""))
    return kernel, stride, pads, dilation


def pool2d_shape(x: tuple, attrs: dict, opname: str) -> tuple:
    kernel, stride, pads, dilation = pool_geometry(x, attrs, opname)
    extents = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    return (x[0], x[1]) + windows_out(x, extents, stride, pads, opname)


def _pool_infer(opname):
    def infer(types, attrs):
        x = types[0]
        require_float(x, opname)
        spatial_rank(x, opname)
        return [x.with_shape(pool2d_shape(x.shape, attrs, opname))]
    return infer


def pool_attrs(node) -> dict:
    return {k: node.attrs[k] for k in ("kernel", "stride", "pads", "dilation") if k in node.attrs}


def _max_pool2d_grad_infer(types, attrs):       # (x, g) -> like x
    x, g = types
    require_float(x, "max_pool2d_grad")
    same_dtype(types, "max_pool2d_grad")
    spatial_rank(x, "max_pool2d_grad")
    check_grad_shape(g, pool2d_shape(x.shape, attrs, "max_pool2d_grad"), "max_pool2d_grad")
    return [x]


def _max_pool2d_select_infer(types, attrs):     # (x, h) -> like max_pool2d(x)
    x, h = types
    require_float(x, "max_pool2d_select")
    same_dtype(types, "max_pool2d_select")
    spatial_rank(x, "max_pool2d_select")
    check_grad_shape(h, x.shape, "max_pool2d_select")
    return [x.with_shape(pool2d_shape(x.shape, attrs, "max_pool2d_select"))]


def _avg_pool2d_grad_infer(types, attrs):       # (g, x_ref) -> like x_ref
    g, x = types
    require_float(g, "avg_pool2d_grad")
    spatial_rank(x, "avg_pool2d_grad", "a reference")
    check_grad_shape(g, pool2d_shape(x.shape, attrs, "avg_pool2d_grad"), "avg_pool2d_grad")
    return [x.with_dtype(g.dtype)]


# max_pool2d's gradient routes g to the first maximum of each window (max_pool2d_grad, linear in
# g); the adjoint of that routing reads h at those maxima (max_pool2d_select). Both are piecewise
# constant in x, so no gradient flows to x through them.
def _max_pool2d_vjp(e, n, gs, w):
    return [e("max_pool2d_grad", n.inputs[0], gs[0], **pool_attrs(n))]


def _max_pool2d_grad_vjp(e, n, gs, w):
    return [None, e("max_pool2d_select", n.inputs[0], gs[0], **pool_attrs(n)) if w[1] else None]


def _max_pool2d_select_vjp(e, n, gs, w):
    return [None, e("max_pool2d_grad", n.inputs[0], gs[0], **pool_attrs(n)) if w[1] else None]


def _avg_pool2d_vjp(e, n, gs, w):
    return [e("avg_pool2d_grad", gs[0], n.inputs[0], **pool_attrs(n))]


def _avg_pool2d_grad_vjp(e, n, gs, w):
    return [e("avg_pool2d", gs[0], **pool_attrs(n)) if w[0] else None, None]


defop("conv2d", _conv2d_infer, _conv2d_vjp, arity=2)
defop("conv2d_input_grad", _conv2d_input_grad_infer, _conv2d_input_grad_vjp, arity=3)
defop("conv2d_weight_grad", _conv2d_weight_grad_infer, _conv2d_weight_grad_vjp, arity=3)
defop("max_pool2d", _pool_infer("max_pool2d"), _max_pool2d_vjp, arity=1)
defop("max_pool2d_grad", _max_pool2d_grad_infer, _max_pool2d_grad_vjp, arity=2)
defop("max_pool2d_select", _max_pool2d_select_infer, _max_pool2d_select_vjp, arity=2)
defop("avg_pool2d", _pool_infer("avg_pool2d"), _avg_pool2d_vjp, arity=1)
defop("avg_pool2d_grad", _avg_pool2d_grad_infer, _avg_pool2d_grad_vjp, arity=2)


# ---- resize (ONNX Resize): every resized axis is interpolated on its own, so along each one the
# output is a fixed linear map of the input, the same for nearest, linear and cubic modes: output
# position o reads the inputs `interpolation(...)[0][o]` with their weights. The gradient is the
# transposed map (resize_grad), and that one's gradient is resize again. tf_crop_and_resize's
# outputs outside the region of interest hold `extrapolation`, a constant: no gradient flows there.
RESIZE_MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _source_position(o: int, in_len: int, out_len: int, scale: float, coordinates: str, roi) -> float:
    """Where output position o samples the input (ONNX's coordinate_transformation_mode)."""
    out_width = scale * in_len
    if coordinates == "align_corners":
        return 0.0 if out_width == 1 else o * (in_len - 1) / (out_width - 1)
    if coordinates == "asymmetric":
        return o / scale
    if coordinates == "tf_crop_and_resize":
        start, end = roi
        if out_width == 1:
            return (end - start) * (in_len - 1) / 2 + start * (in_len - 1)
        return o * (end - start) * (in_len - 1) / (out_width - 1) + start * (in_len - 1)
    if coordinates == "pytorch_half_pixel" and out_width == 1:
        return -0.5
    if coordinates == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / out_width)
        return offset + (o + 0.5) / scale - 0.5
    return (o + 0.5) / scale - 0.5          # half_pixel, pytorch_half_pixel


def _coefficients(ratio: float, scale: float, mode: str, nearest: str, cubic_a: float, antialias: bool) -> list:
    """The weights of the neighbours of a source position `ratio` (in (0, 1]) past the one before."""
    if mode == "nearest":
        if ratio == int(ratio):
            return [0.0, 1.0]
        up = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5, "floor": False, "ceil": True}[nearest]
        return [0.0, 1.0] if up else [1.0, 0.0]
    if mode == "linear" and not antialias:
        return [1 - ratio, ratio]
    a = cubic_a
    if mode == "cubic" and not antialias:
        def near(t):
            return ((a + 2) * t - (a + 3)) * t * t + 1

        def far(t):
            return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
        return [far(ratio + 1), near(ratio), near(1 - ratio), far(2 - ratio)]
    # antialias (downsampling): the kernel stretched by 1/scale, normalised
    s = min(scale, 1.0)
    if mode == "linear":
        start = math.floor(-1 / s) + 1
        weights = [min(max(1 - abs((i - ratio) * s), 0.0), 1.0) for i in range(start, start + 2 - 2 * start)]
    else:
        def cubic(t):
            t = abs(t)
            if t <= 1:
                return (a + 2) * t ** 3 - (a + 3) * t * t + 1
            return a * t ** 3 - 5 * a * t * t + 8 * a * t - 4 * a if t < 2 else 0.0
        start = math.floor(-2 / s) + 1
        weights = [cubic(s * (i - ratio)) for i in range(start, 2 - start)]
    total = sum(weights)
    return [w / total for w in weights]


@functools.lru_cache(maxsize=512)
def interpolation(in_len: int, out_len: int, scale: float, mode: str = "nearest", coordinates: str = "half_pixel",
                  nearest: str = "round_prefer_floor", cubic_a: float = -0.75, exclude_outside: bool = False,
                  antialias: bool = False, roi: tuple = (0.0, 1.0)) -> tuple[tuple, tuple]:
    """For each output position along one axis, ((input index, weight), ...), and whether it lies
    outside the region of interest (tf_crop_and_resize only). Follows the ONNX reference
    (onnx/reference/ops/op_resize.py): neighbours past the input's edge repeat the edge."""
    rows, outside = [], []
    for o in range(out_len):
        x = _source_position(o, in_len, out_len, scale, coordinates, roi)
        ratio = 1.0 if x == math.floor(x) else x - math.floor(x)
        coeffs = _coefficients(ratio, scale, mode, nearest, cubic_a, antialias)
        n, half = len(coeffs), (len(coeffs) + 1) // 2
        p = math.floor(x + half)
        frac = x + half - p
        first = p + ((-(n // 2) if frac == 0 else 1 - n // 2) if n % 2 == 0 else
                     (-((n - 1) // 2) + (frac > 0.5)))
        indices = [first + k - half for k in range(n)]
        if exclude_outside:
            coeffs = [c if 0 <= i < in_len else 0.0 for c, i in zip(coeffs, indices)]
            total = sum(coeffs) or 1.0
            coeffs = [c / total for c in coeffs]
        row: dict[int, float] = {}
        for i, c in zip(indices, coeffs):
            if c:
                row[min(max(i, 0), in_len - 1)] = row.get(min(max(i, 0), in_len - 1), 0.0) + c
        beyond = coordinates == "tf_crop_and_resize" and not 0 <= x <= in_len - 1
        rows.append(() if beyond else tuple(sorted(row.items())))      # a constant there: no input reaches it
        outside.append(beyond)
    return tuple(rows), tuple(outside)


def resize_plan(attrs: dict, shape: tuple) -> list:
    """(axis, rows, outside) for each resized axis of an input of `shape` (see interpolation)."""
    axes, sizes, scales = attrs["axes"], attrs["sizes"], attrs["scales"]
    roi = attrs.get("roi") or (0.0,) * len(axes) + (1.0,) * len(axes)
    return [(axis, *interpolation(shape[axis], size, float(scale), attrs.get("mode", "nearest"),
                                  attrs.get("coordinates", "half_pixel"), attrs.get("nearest", "round_prefer_floor"),
                                  float(attrs.get("cubic_a", -0.75)), bool(attrs.get("exclude_outside", False)),
                                  bool(attrs.get("antialias", False)), (float(roi[k]), float(roi[len(axes) + k]))))
            for k, (axis, size, scale) in enumerate(zip(axes, sizes, scales))]


def resize_shape(x: tuple, attrs: dict, opname: str) -> tuple:
    axes, sizes, scales = (tuple(attrs.get(k, ())) for k in ("axes", "sizes", "scales"))
    require(len(axes) == len(sizes) == len(scales) and len(set(axes)) == len(axes)
            and all(isinstance(a, int) and 0 <= a < len(x) for a in axes),
            f"`{opname}` needs distinct axes of the input, with a size and a scale each, got axes {axes}, "
            f"sizes {sizes}, scales {scales}")
    require(all(isinstance(s, int) and s >= 1 for s in sizes) and all(s > 0 for s in scales),
            f"`{opname}` needs output sizes and scales above 0, got sizes {sizes}, scales {scales}")
    require(all(isinstance(x[a], int) for a in axes),
            f"`{opname}` resizes axes {axes} of {fmt_shape(x)}: they need sizes known at compile time")
    require(attrs.get("mode", "nearest") in RESIZE_MODES, f"`{opname}` mode must be one of {RESIZE_MODES}")
    require(attrs.get("coordinates", "half_pixel") in COORDINATE_MODES,
            f"`{opname}` coordinates must be one of {COORDINATE_MODES}")
    require(attrs.get("nearest", "round_prefer_floor") in NEAREST_MODES, f"`{opname}` nearest must be one of {NEAREST_MODES}")
    out = list(x)
    for a, s in zip(axes, sizes):
        out[a] = s
    return tuple(out)


def _resize_infer(types, attrs):
    x = types[0]
    require_float(x, "resize")
    return [x.with_shape(resize_shape(x.shape, attrs, "resize"))]


def _resize_grad_infer(types, attrs):       # (g, x_ref) -> like x_ref
    g, x = types
    require_float(g, "resize_grad")
    check_grad_shape(g, resize_shape(x.shape, attrs, "resize_grad"), "resize_grad")
    return [x.with_dtype(g.dtype)]


def _resize_vjp(e, n, gs, w):
    return [e("resize_grad", gs[0], n.inputs[0], **n.attrs)]


def _resize_grad_vjp(e, n, gs, w):          # the adjoint of the linear part: no extrapolated constant
    return [e("resize", gs[0], **dict(n.attrs, extrapolation=0.0)) if w[0] else None, None]


defop("resize", _resize_infer, _resize_vjp, arity=1)
defop("resize_grad", _resize_grad_infer, _resize_grad_vjp, arity=2)
