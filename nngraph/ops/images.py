"""Images: 2-d convolution and pooling, each with the ops its gradient needs."""
from __future__ import annotations

from nngraph.ir.registry import defop
from nngraph.ir.types import Dim, TensorType
from nngraph.ops.rules import dim_add, fmt_shape, require, require_float, same_dtype


def pair(attrs: dict, key: str, default: int, n: int = 2) -> tuple[int, ...]:
    value = attrs.get(key, default)
    value = (value,) * n if isinstance(value, int) else tuple(value)
    require(len(value) == n and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
           f"`{key}` must be {n} integers, got {value}")
    return value


def window_geometry(attrs: dict, opname: str, dilated: bool):
    stride, pads = pair(attrs, "stride", 1), pair(attrs, "pads", 0, 4)
    dilation = pair(attrs, "dilation", 1) if dilated else (1, 1)
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


def _image_rank(t: TensorType, opname: str, what: str = "an input") -> None:
    require(t.rank == 4, f"`{opname}` needs {what} of shape [N, C, H, W], got {fmt_shape(t.shape)}")


def conv2d_shape(x: tuple, w: tuple, attrs: dict, opname: str = "conv2d") -> tuple:
    """The output shape of conv2d for input shape `x` and filter shape `w`."""
    stride, pads, dilation = window_geometry(attrs, opname, dilated=True)
    groups = attrs.get("groups", 1)
    require(isinstance(groups, int) and groups >= 1, f"`{opname}` needs groups >= 1, got {groups}")
    out_c, in_c, kh, kw = w
    require(all(isinstance(d, int) for d in w),
           f"`{opname}` needs filters of a shape known at compile time, got {fmt_shape(w)}")
    require(out_c % groups == 0, f"`{opname}` with {groups} groups needs a number of filters divisible by "
                                f"{groups}, got {out_c} (filters {fmt_shape(w)})")
    require(not isinstance(x[1], int) or x[1] == in_c * groups,
           f"`{opname}` filters {fmt_shape(w)} read {in_c} channel{'s' if in_c != 1 else ''} per group "
           f"({groups} group{'s' if groups != 1 else ''}, {in_c * groups} in all), but the input {fmt_shape(x)} "
           f"has {x[1]}")
    height = _window_out(x[2], dilation[0] * (kh - 1) + 1, stride[0], pads[0], pads[2], "height", opname)
    width = _window_out(x[3], dilation[1] * (kw - 1) + 1, stride[1], pads[1], pads[3], "width", opname)
    return (x[0], out_c, height, width)


def _conv2d_infer(types, attrs):
    x, w = types
    require_float(x, "conv2d")
    same_dtype(types, "conv2d")
    _image_rank(x, "conv2d")
    require(w.rank == 4, f"`conv2d` needs filters of shape [out_channels, in_channels / groups, kh, kw], "
                        f"got {fmt_shape(w.shape)}")
    return [x.with_shape(conv2d_shape(x.shape, w.shape, attrs))]


def check_grad_shape(g: TensorType, want: tuple, opname: str) -> None:
    require(tuple(g.shape) == tuple(want),
           f"`{opname}` needs a gradient of shape {fmt_shape(want)}, got {fmt_shape(g.shape)}")


def _conv2d_input_grad_infer(types, attrs):
    g, w, x = types
    require_float(g, "conv2d_input_grad")
    same_dtype([g, w], "conv2d_input_grad")
    _image_rank(x, "conv2d_input_grad", "a reference")
    require(w.rank == 4, f"`conv2d_input_grad` needs 4-d filters, got {fmt_shape(w.shape)}")
    check_grad_shape(g, conv2d_shape(x.shape, w.shape, attrs, "conv2d_input_grad"), "conv2d_input_grad")
    return [x.with_dtype(g.dtype)]


def _conv2d_weight_grad_infer(types, attrs):
    x, g, w = types
    require_float(x, "conv2d_weight_grad")
    same_dtype([x, g], "conv2d_weight_grad")
    _image_rank(x, "conv2d_weight_grad")
    require(w.rank == 4, f"`conv2d_weight_grad` needs 4-d filters, got {fmt_shape(w.shape)}")
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


# ---- pooling: `kernel` (kh, kw), `stride`, `pads`; a window never lies wholly in the padding.
# max pads with -inf; avg divides by the whole window, padding included (count_include_pad).
def pool2d_shape(x: tuple, attrs: dict, opname: str) -> tuple:
    kernel = pair(attrs, "kernel", 1)
    stride, pads, _ = window_geometry(attrs, opname, dilated=False)
    require(min(kernel) >= 1, f"`{opname}` needs a kernel of at least 1, got {kernel}")
    require(all(p < k for p, k in zip(pads, kernel * 2)),
           f"`{opname}` needs each padding smaller than the kernel, got padding {pads} for kernel {kernel}")
    return (x[0], x[1], _window_out(x[2], kernel[0], stride[0], pads[0], pads[2], "height", opname),
            _window_out(x[3], kernel[1], stride[1], pads[1], pads[3], "width", opname))


def _pool_infer(opname):
    def infer(types, attrs):
        x = types[0]
        require_float(x, opname)
        _image_rank(x, opname)
        return [x.with_shape(pool2d_shape(x.shape, attrs, opname))]
    return infer


def pool_attrs(node) -> dict:
    return {k: node.attrs[k] for k in ("kernel", "stride", "pads") if k in node.attrs}


def _max_pool2d_grad_infer(types, attrs):       # (x, g) -> like x
    x, g = types
    require_float(x, "max_pool2d_grad")
    same_dtype(types, "max_pool2d_grad")
    _image_rank(x, "max_pool2d_grad")
    check_grad_shape(g, pool2d_shape(x.shape, attrs, "max_pool2d_grad"), "max_pool2d_grad")
    return [x]


def _max_pool2d_select_infer(types, attrs):     # (x, h) -> like max_pool2d(x)
    x, h = types
    require_float(x, "max_pool2d_select")
    same_dtype(types, "max_pool2d_select")
    _image_rank(x, "max_pool2d_select")
    check_grad_shape(h, x.shape, "max_pool2d_select")
    return [x.with_shape(pool2d_shape(x.shape, attrs, "max_pool2d_select"))]


def _avg_pool2d_grad_infer(types, attrs):       # (g, x_ref) -> like x_ref
    g, x = types
    require_float(g, "avg_pool2d_grad")
    _image_rank(x, "avg_pool2d_grad", "a reference")
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
