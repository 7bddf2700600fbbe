"""Functions every .nn file can call that map onto IR ops (layers written in .nn live in stdlib/).

Each builtin is a `Builtin(name, params, build)`: `params` is its signature (a default makes an
argument optional) and `build(call, **arguments)` emits the IR through `call.emit`.
"""
from __future__ import annotations

import numpy as np

from nngraph.dsl.values import REQUIRED, Builtin, describe
from nngraph.ir import DTYPES, ShapeError, TensorType, Value, limits
from nngraph.ops.images import AXIS_NAMES
from nngraph.ops.rules import norm_axis

BUILTINS: dict[str, Builtin] = {}


def builtin(name: str, *params: str | tuple[str, object], doc: str = ""):
    spec = tuple(p if isinstance(p, tuple) else (p, REQUIRED) for p in params)

    def register(fn):
        BUILTINS[name] = Builtin(name, spec, fn, doc)
        return fn
    return register


def _unary(op: str) -> None:
    builtin(op, "x")(lambda call, x: call.emit(op, call.tensor(x, "x")))


for _op in ("exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "softplus", "sign", "erf"):
    _unary(_op)


@builtin("identity", "x")
def _identity(call, x):
    return call.tensor(x, "x")


@builtin("matmul", "a", "b")
def _matmul(call, a, b):
    return call.emit("matmul", call.tensor(a, "a"), call.tensor(b, "b"))


for _op in ("softmax", "log_softmax"):
    builtin(_op, "x", ("axis", -1))(
        lambda call, x, axis, _op=_op: call.emit(_op, call.tensor(x, "x"), axis=call.int(axis, "axis")))


@builtin("argmax", "x", ("axis", -1), ("keepdims", False))
def _argmax(call, x, axis, keepdims):
    return call.emit("argmax", call.tensor(x, "x"), axis=call.int(axis, "axis"), keepdims=bool(keepdims))


for _op in ("sum", "mean", "max"):
    builtin(_op, "x", ("axis", None), ("keepdims", False))(
        lambda call, x, axis, keepdims, _op=_op: call.emit(
            _op, call.tensor(x, "x"), axes=call.axes(axis, "axis"), keepdims=bool(keepdims)))


@builtin("transpose", "x", ("perm", None))
def _transpose(call, x, perm):
    return call.emit("transpose", call.tensor(x, "x"), perm=call.axes(perm, "perm") if perm is not None else None)


@builtin("reshape", "x", "shape", doc="0 keeps the input's size on that axis, -1 infers one size")
def _reshape(call, x, shape):
    return call.emit("reshape", call.tensor(x, "x"), shape=call.axes(shape, "shape", sort=False))


@builtin("where", "condition", "a", "b")
def _where(call, condition, a, b):
    cond = call.tensor(condition, "condition")
    a, b = call.tensors(a, b)
    return call.emit("where", cond, a, b)


@builtin("one_hot", "labels", "depth")
def _one_hot(call, labels, depth):
    return call.emit("one_hot", call.tensor(labels, "labels"), depth=call.int(depth, "depth"), dtype=call.float_dtype)


@builtin("cast", "x", "dtype")
def _cast(call, x, dtype):
    return call.emit("cast", call.tensor(x, "x"), dtype=call.dtype(dtype, "dtype"))


@builtin("as_distribution", "target", "logits",
         doc="class indices become one-hot rows as wide as the logits; probabilities pass through")
def _as_distribution(call, target, logits):
    target, logits = call.tensor(target, "target"), call.tensor(logits, "logits")
    if target.type.is_float:
        return target
    if logits.type.rank == 0:    # (a number where the logits go: no axis of classes)
        call.fail(f"the logits need an axis of classes, got a scalar {logits.type}", "logits")
    depth = logits.shape[-1]
    if not isinstance(depth, int):
        call.fail(f"the number of classes (last axis of the logits, {depth}) must be known at compile time")
    return call.emit("one_hot", target, depth=depth, dtype=logits.dtype)


def dtype_name(text: str) -> str | None:
    aliases = {"float": None, "int": "int64"}
    if text in aliases:
        return aliases[text]
    return text if text in DTYPES else None


def constant_like(value, like: Value) -> np.ndarray:
    return np.asarray(value, dtype=like.dtype)


def _filled_like(value: float):
    def build(call, like):
        like = call.tensor(like, "like")
        return call.emit("broadcast_like", call.elab.constant(value, like.dtype, call.span, call.scope), like)
    return build


# `zeros(x)` is a tensor of zeros shaped like x; `zeros[B, 4]` (a shape in brackets) is handled by
# the elaborator, which finds where each symbolic size comes from
builtin("zeros", "like", doc="zeros shaped like a tensor, or zeros[d0, d1, ...]")(_filled_like(0.0))
builtin("ones", "like", doc="ones shaped like a tensor, or ones[d0, d1, ...]")(_filled_like(1.0))


# ---------------------------------------------------------------- images, slicing, lookup
def _ints(call, value, arg: str, sizes: tuple[int, ...], minimum: int = 0) -> tuple[int, ...]:
    """An int or a list/tuple of ints of one of the allowed lengths; one int stands for every axis."""
    items = [value] * min(sizes) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, (list, tuple)) or len(items) not in sizes or \
            not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
        counts = " or ".join(str(s) for s in sizes)
        call.fail(f"argument `{arg}` of `{call.name}` must be an integer or {counts} integers, got "
                  f"{describe(value)}", arg)
    if min(items) < minimum:
        call.fail(f"argument `{arg}` of `{call.name}` must be at least {minimum}, got {value}", arg)
    return tuple(items)


def _image(call, x, arg: str = "x", spatial: tuple[int, ...] = (2,)) -> Value:
    """A batch [N, C, ...] with one of the allowed numbers of spatial axes (an image: 2)."""
    x = call.tensor(x, arg)
    if x.type.rank - 2 not in spatial:
        call.fail(f"`{call.name}` needs {_LAYOUTS[spatial[0]]}, got {x.type}", arg)
    return x


_LAYOUTS = {1: "a batch of sequences of shape [N, C, L]", 2: "an image batch of shape [N, C, H, W]",
            3: "a batch of volumes of shape [N, C, D, H, W]"}


def _padding(call, padding, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
             x: Value) -> tuple[int, ...]:
    """An int (every side), one int per spatial axis (both sides of each), two per axis (all the
    starts, then all the ends: for images top, left, bottom, right), "valid" (none) or "same" (the
    output keeps the input's size at stride 1, or ceil(size / stride) in general; an odd total puts
    the extra element at the end)."""
    n = len(kernel)
    if padding == "valid":
        return (0,) * 2 * n
    if padding == "same":
        pads = []
        for axis, (k, s, d) in enumerate(zip(kernel, stride, dilation)):
            extent, size = d * (k - 1) + 1, x.shape[2 + axis]
            if s == 1:
                total = extent - 1
            elif isinstance(size, int):
                total = max((-(-size // s) - 1) * s + extent - size, 0)
            else:
                call.fail(f"padding \"same\" with stride {s} needs the input's {AXIS_NAMES[n][axis]} at "
                          f"compile time, but it is {size}", "padding",
                          hint="give the padding as numbers, or use stride 1")
            pads.append((total // 2, total - total // 2))
        return tuple(p[0] for p in pads) + tuple(p[1] for p in pads)
    if isinstance(padding, str):
        what = "a number of rows and columns" if n == 2 else "a number of elements"
        call.fail(f"argument `padding` of `{call.name}` must be {what}, \"same\" or "
                  f"\"valid\", got \"{padding}\"", "padding")
    pads = _ints(call, padding, "padding", (n, 2 * n))
    return pads * 2 if len(pads) == n else pads


@builtin("conv", "x", "w", ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1),
         doc="convolution of x [N, C, H, W] with filters w [out, C / groups, kh, kw] (or 1-d: x [N, C, L], "
             "w [out, C / groups, k]; 3-d: x [N, C, D, H, W], w [out, C / groups, kd, kh, kw]); "
             "padding: an int, (height, width), (top, left, bottom, right), \"same\" or \"valid\"")
def _conv(call, x, w, stride, padding, dilation, groups):
    x, w = _image(call, x, spatial=(2, 1, 3)), call.tensor(w, "w")
    n = x.type.rank - 2
    if w.type.rank != n + 2:
        sizes = ", ".join("k" + a[0] for a in AXIS_NAMES[n])
        call.fail(f"`conv` needs filters of shape [out_channels, in_channels / groups, {sizes}], got {w.type}", "w")
    stride = _ints(call, stride, "stride", (n,), minimum=1)
    dilation = _ints(call, dilation, "dilation", (n,), minimum=1)
    groups = call.int(groups, "groups")
    pads = _padding(call, padding, tuple(w.shape[2:]), stride, dilation, x)
    return call.emit("conv2d", x, w, stride=stride, pads=pads, dilation=dilation, groups=groups)


def _pool(op: str, n: int):
    def build(call, x, kernel, stride, padding, dilation):
        x = _image(call, x, spatial=(n,))
        kernel = _ints(call, kernel, "kernel", (n,), minimum=1)
        stride = kernel if stride is None else _ints(call, stride, "stride", (n,), minimum=1)
        dilation = _ints(call, dilation, "dilation", (n,), minimum=1)
        pads = _padding(call, padding, kernel, stride, dilation, x)
        return call.emit(op, x, kernel=kernel, stride=stride, pads=pads, dilation=dilation)
    return build


# one op per kind for 1, 2 and 3 spatial axes (the op's name is the 2-d one's)
for _kind in ("max", "avg"):
    for _n, _shape in ((1, "[N, C, L]"), (2, "[N, C, H, W]"), (3, "[N, C, D, H, W]")):
        builtin(f"{_kind}_pool{_n}d", "x", "kernel", ("stride", None), ("padding", 0), ("dilation", 1),
                doc=f"pooling over kernel-sized windows of x {_shape}; the stride defaults to the kernel; a "
                    "dilation reads every dilation-th element" + ("; the average counts padding as zeros"
                                                                 if _kind == "avg" else ""))(_pool(f"{_kind}_pool2d", _n))


@builtin("upsample", "x", "scale", ("mode", "nearest"), ("align_corners", 0),
         doc="x [N, C, ...] with every spatial axis `scale` times as long (an int, or one per axis): mode "
             "\"nearest\" (copies, as PyTorch's nn.Upsample) or \"linear\" (bi-/trilinear; align_corners = 1 "
             "maps the corner elements onto each other); the gradient sums back")
def _upsample(call, x, scale, mode, align_corners):
    x = _image(call, x, spatial=(2, 1, 3))
    n = x.type.rank - 2
    scale = _ints(call, scale, "scale", (n,), minimum=1)
    if mode not in ("nearest", "linear"):
        call.fail(f"argument `mode` of `upsample` is \"nearest\" or \"linear\", got {describe(mode)}", "mode")
    sizes = x.shape[2:]
    if not all(isinstance(d, int) for d in sizes):
        call.fail(f"`upsample` needs the spatial sizes at compile time, got {x.type}", "x")
    coordinates = "asymmetric" if mode == "nearest" else "align_corners" if call.int(align_corners, "align_corners") \
        else "half_pixel"
    return call.emit("resize", x, axes=tuple(range(2, n + 2)), sizes=tuple(d * s for d, s in zip(sizes, scale)),
                     scales=tuple(float(s) for s in scale), mode=mode, coordinates=coordinates, nearest="floor")


@builtin("global_avg_pool", "x", doc="the mean over height and width: [N, C, H, W] -> [N, C]")
def _global_avg_pool(call, x):
    return call.emit("mean", _image(call, x), axes=(2, 3), keepdims=False)


@builtin("flatten", "x", doc="every axis after the first as one: [N, ...] -> [N, rest]")
def _flatten(call, x):
    x = call.tensor(x, "x")
    if x.type.rank < 1:
        call.fail(f"`flatten` needs a tensor with a batch axis, got {x.type}", "x")
    return call.emit("reshape", x, shape=(0, -1))


@builtin("concat", "xs", ("axis", 0), doc="join a list of tensors along an axis")
def _concat(call, xs, axis):
    if not isinstance(xs, (list, tuple)) or not xs:
        call.fail(f"argument `xs` of `concat` must be a list of tensors, got {describe(xs)}", "xs")
    return call.emit("concat", *(call.tensor(x, "xs") for x in xs), axis=call.int(axis, "axis"))


@builtin("split", "x", "parts", ("axis", 0),
         doc="cut x along an axis into `parts` equal pieces, or pieces of the listed sizes; returns a tuple")
def _split(call, x, parts, axis):
    x, axis = call.tensor(x, "x"), call.int(axis, "axis")
    try:
        axis = norm_axis(axis, x.type.rank)
    except ShapeError as err:
        call.fail(str(err), "axis")
    size = x.shape[axis]
    if isinstance(parts, int) and not isinstance(parts, bool):
        if parts < 1:
            call.fail(f"`split` needs at least one part, got {parts}", "parts")
        if not isinstance(size, int) or size % parts:
            call.fail(f"`split` cannot cut axis {axis} of {x.type} into {parts} equal parts", "parts",
                      hint="list the sizes of the parts instead" if isinstance(size, int) else None)
        sizes = [size // parts] * parts
    else:
        if not isinstance(parts, (list, tuple)) or not parts or \
                not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in parts):
            call.fail(f"argument `parts` of `split` must be a number of equal parts or a list of positive sizes, "
                      f"got {describe(parts)}", "parts")
        sizes = list(parts)
        if isinstance(size, int) and sum(sizes) != size:
            call.fail(f"`split` sizes {sizes} add up to {sum(sizes)}, but axis {axis} of {x.type} has {size}",
                      "parts")
        if not isinstance(size, int):
            call.fail(f"`split` needs axis {axis} of {x.type} to have a size known at compile time", "axis")
    pieces, start = [], 0
    for n in sizes:
        pieces.append(call.emit("slice", x, axes=(axis,), starts=(start,), ends=(start + n,), steps=(1,)))
        start += n
    return tuple(pieces)


@builtin("gather", "table", "indices", ("axis", 0),
         doc="rows of a table at integer indices (any shape): table[indices] along an axis")
def _gather(call, table, indices, axis):
    table = call.tensor(table, "table")
    if isinstance(indices, int) and not isinstance(indices, bool):
        indices = call.elab.constant(indices, "int64", call.span, call.scope)
    indices = call.tensor(indices, "indices")
    if indices.dtype not in ("int32", "int64"):
        call.fail(f"`gather` needs integer indices, got {indices.type}", "indices",
                  hint='cast them first: cast(i, "int64")')
    return call.emit("gather", table, indices, axis=call.int(axis, "axis"))


@builtin("index_add", "table", "indices", "rows", ("axis", 0),
         doc="the table with each of `rows` added at its index along an axis, repeated indices summed "
             "(the gradient of gather, and a sparse write into zeros)")
def _index_add(call, table, indices, rows, axis):
    table, rows = call.tensor(table, "table"), call.tensor(rows, "rows")
    indices = call.tensor(indices, "indices")
    if indices.dtype not in ("int32", "int64"):
        call.fail(f"`index_add` needs integer indices, got {indices.type}", "indices",
                  hint='cast them first: cast(i, "int64")')
    return call.emit("index_add", table, indices, rows, axis=call.int(axis, "axis"))


@builtin("pad", "x", "pads", ("value", 0),
         doc="pad with a constant: pads lists (before, after) pairs for the last axes, or (as ONNX) "
             "every axis's start, then every axis's end")
def _pad(call, x, pads, value):
    x = call.tensor(x, "x")
    rank = x.type.rank
    if isinstance(pads, (list, tuple)) and pads and all(isinstance(p, (list, tuple)) for p in pads):
        if len(pads) > rank or not all(len(p) == 2 for p in pads):
            call.fail(f"argument `pads` of `pad` must hold one (before, after) pair per axis of {x.type}", "pads")
        pairs = [(0, 0)] * (rank - len(pads)) + [tuple(_ints(call, list(p), "pads", (2,))) for p in pads]
        flat = tuple(b for b, _ in pairs) + tuple(a for _, a in pairs)
    else:
        flat = _ints(call, pads, "pads", (2 * rank,))
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        call.fail(f"argument `value` of `pad` must be a number, got {describe(value)}", "value")
    return call.emit("pad", x, pads=flat, value=float(value) if x.type.is_float else int(value))


# ---------------------------------------------------------------- attention helpers
for _op in ("sin", "cos"):
    _unary(_op)


@builtin("positions", "x", ("axis", 0),
         doc="the indices 0, 1, ..., size - 1 of one axis of x (int64), its size read at run time if symbolic")
def _positions(call, x, axis):
    return call.emit("positions", call.tensor(x, "x"), axis=call.int(axis, "axis"))


@builtin("arange", "n", doc="the integers 0, 1, ..., n - 1 (int64) for an n known at compile time")
def _arange(call, n):
    n = call.int(n, "n")
    if n < 1:
        call.fail(f"`arange` needs a positive count, got {n}", "n")
    if n > limits.MAX_CONSTANT_ELEMENTS:
        call.fail(f"`arange({n})` would be a compile-time constant of more than "
                  f"{limits.MAX_CONSTANT_ELEMENTS:,} elements", "n",
                  hint="raise the limit with the environment variable NNGRAPH_MAX_CONSTANT_ELEMENTS")
    return call.elab.constant(np.arange(n), "int64", call.span, call.scope)


@builtin("swap_axes", "x", ("a", -2), ("b", -1),
         doc="exchange two axes of x (default the last two, as for the keys in q @ swap_axes(k))")
def _swap_axes(call, x, a, b):
    x = call.tensor(x, "x")
    rank = x.type.rank
    try:
        a, b = norm_axis(call.int(a, "a"), rank), norm_axis(call.int(b, "b"), rank)
    except ShapeError as err:
        call.fail(str(err), "a")
    perm = list(range(rank))
    perm[a], perm[b] = perm[b], perm[a]
    return call.emit("transpose", x, perm=tuple(perm))


@builtin("sample", "scores", "uniform", ("temperature", 1.0), ("top_k", 0), ("top_p", 1.0),
         doc="a category per row of scores, drawn with a fed uniform number (nngraph/ops/sampling.py)")
def _sample(call, scores, uniform, temperature, top_k, top_p):
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        top_k = call.elab.constant(top_k, "int64", call.span, call.scope)
    return call.emit("sample_categorical", call.tensor(scores, "scores"), call.tensor(uniform, "uniform"),
                     call.tensor(temperature, "temperature"), call.tensor(top_k, "top_k"), call.tensor(top_p, "top_p"))


# ---------------------------------------------------------------- fused layers (nngraph/ops/fused.py, normalization.py)
@builtin("gelu", "x", ("approximate", "none"),
         doc="x * Phi(x): exactly, through erf (approximate = \"none\"), or its tanh approximation (\"tanh\")")
def _gelu(call, x, approximate):
    if approximate not in ("none", "tanh"):
        call.fail(f"argument `approximate` of `{call.name}` is \"none\" or \"tanh\", got {describe(approximate)}",
                  "approximate")
    return call.emit("gelu", call.tensor(x, "x"), approximate=approximate)


builtin("gelu_tanh", "x", doc="GELU's tanh approximation, as an activation to pass by name")(
    lambda call, x: call.emit("gelu", call.tensor(x, "x"), approximate="tanh"))


@builtin("layer_normalize", "x", "gain", "bias", ("eps", 1e-5),
         doc="each vector along the last axis to mean 0 and variance 1, then * gain + bias ([d] each)")
def _layer_normalize(call, x, gain, bias, eps):
    x, gain, bias = call.tensor(x, "x"), call.tensor(gain, "gain"), call.tensor(bias, "bias")
    try:
        outputs = call.elab.apply("layer_norm", [x, gain, bias], {"eps": _number(call, eps, "eps", 0.0, 1.0)},
                                  call.span, call.scope)
    except ShapeError as err:
        call.fail(str(err))
    return _name_extra_outputs(call, outputs, "mean", "inv_std")


def _name_extra_outputs(call, outputs: list[Value], *names: str) -> Value:
    """Name a fused op's extra outputs for what they hold (they appear in gradient formulas, in
    `nngraph explain` and in pictures) rather than `layer_norm.1`; returns the first output."""
    scope = outputs[0].node.scope
    for value, name in zip(outputs[1:], names):
        value.name = call.elab.graph.fresh_name(f"{scope}.{name}" if scope else name)
    return outputs[0]


@builtin("dot_product_attention", "q", "k", "v", ("mask", 0), ("scale", None),
         doc="softmax(scale * q @ k^T + mask) @ v over the last axis; scale defaults to 1/sqrt(dk)")
def _dot_product_attention(call, q, k, v, mask, scale):
    q, k, v, mask = (call.tensor(t, name) for t, name in ((q, "q"), (k, "k"), (v, "v"), (mask, "mask")))
    if scale is None and q.type.rank >= 2 and not isinstance(q.type.shape[-1], int):
        return _attention_parts(call, q, k, v, mask)
    if scale is None:
        scale = q.type.shape[-1] ** -0.5 if q.type.rank else 1.0      # a scalar q: the op's shape rule reports it
    elif not isinstance(scale, (int, float)) or isinstance(scale, bool):
        call.fail(f"argument `scale` of `{call.name}` must be a number, got {describe(scale)}", "scale")
    try:
        outputs = call.elab.apply("attention", [q, k, v, mask], {"scale": float(scale)}, call.span, call.scope)
    except ShapeError as err:
        call.fail(str(err))
    return _name_extra_outputs(call, outputs, "weights")


def _attention_parts(call, q, k, v, mask):
    """Attention as primitive ops, for a head size known only at run time (1/sqrt(dk) read from q)."""
    perm = tuple(range(k.type.rank - 2)) + (k.type.rank - 1, k.type.rank - 2)
    dk = call.emit("dim_size", q, axes=(q.type.rank - 1,), dtype=q.dtype)
    scale = call.emit("pow", dk, call.elab.constant(-0.5, q.dtype, call.span, call.scope))
    scores = call.emit("add", call.emit("mul", call.emit("matmul", q, call.emit("transpose", k, perm=perm)), scale), mask)
    return call.emit("matmul", call.emit("softmax", scores, axis=-1), v)


# ---------------------------------------------------------------- training-time layers (nngraph/ops/normalization.py)
def _number(call, value, arg: str, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value < high:
        call.fail(f"argument `{arg}` of `{call.name}` must be a number in [{low:g}, {high:g}), got {describe(value)}", arg)
    return float(value)


def _outside_loops(call) -> None:
    if call.elab.frames:
        call.fail(f"`{call.name}` inside a `scan` body is not supported yet", hint="apply it to the scan's results")


@builtin("dropout", "x", ("rate", 0.5),
         doc="zeroes each element with probability `rate` while training (the rest scaled by 1/(1 - rate)); "
             "the identity in inference")
def _dropout(call, x, rate):
    _outside_loops(call)
    x, rate = call.tensor(x, "x"), _number(call, rate, "rate", 0.0, 1.0)
    graph = call.elab.graph
    step = next((v for v in graph.inputs if v.name == "step"), None)
    if step is None:            # the training step's update counter, fed by the train step (nngraph/training/step.py)
        step = graph.add_input("step", TensorType(call.float_dtype, ()), call.span)
    elif step.type.rank != 0 or not step.type.is_float:
        call.fail(f"dropout draws its masks from the training step counter, a float scalar input `step`; "
                  f"this model's `step` is {step.type}", hint="rename the model's input `step`")
    seed = sum(1 for n in graph.nodes if n.op == "dropout_mask")     # each dropout its own masks
    return call.emit("mul", x, call.emit("dropout_mask", x, step, rate=rate, seed=seed))


@builtin("batch_normalize", "x", "gain", "bias", "running_mean", "running_var", ("momentum", 0.1), ("eps", 1e-5),
         doc="batch norm over [N, C, ...]: the batch's statistics while training, which also update the running "
             "ones (parameters the train step does not train); the running statistics in inference")
def _batch_normalize(call, x, gain, bias, running_mean, running_var, momentum, eps):
    x, gain, bias = call.tensor(x, "x"), call.tensor(gain, "gain"), call.tensor(bias, "bias")
    graph, running = call.elab.graph, []
    for arg, value in (("running_mean", running_mean), ("running_var", running_var)):
        # a parameter by name (names are unique in a graph): scanning graph.params per call was quadratic
        if not (isinstance(value, Value) and value.node is None and value.name in graph.param_init):
            call.fail(f"argument `{arg}` of `{call.name}` must be a parameter (`param {arg}: [c] = ...`), "
                      f"which the training step updates", arg)
        running.append(value)
    momentum = _number(call, momentum, "momentum", 0.0, 1.0)
    _outside_loops(call)
    attrs = {"eps": _number(call, eps, "eps", 0.0, 1.0), "running": tuple(r.name for r in running)}
    try:
        y, mean, var = call.elab.apply("batch_norm", [x, gain, bias], attrs, call.span, call.scope)
    except ShapeError as err:
        call.fail(str(err))
    keep = call.elab.constant(1 - momentum, x.dtype, call.span, call.scope)
    take = call.elab.constant(momentum, x.dtype, call.span, call.scope)
    for old, batch in zip(running, (mean, var)):
        graph.outputs[f"new:{old.name}"] = call.emit("add", call.emit("mul", keep, old), call.emit("mul", take, batch))
    return y
