"""The op registry. Each op is declared once, here: its shape/type rule and its symbolic
gradient (a VJP that *builds IR* through an `Emitter`, never computes numbers). Its NumPy
kernel lives in runtime/kernels.py under the same name; its ONNX lowering slot is `onnx`.

A VJP has the signature ``vjp(e, node, grads, wants) -> [grad for each input]``: `grads` are
the gradients of the node's outputs (None where nothing flows back), `wants[i]` says whether
input i needs a gradient; return None for inputs that need none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nngraph.ir import Dim, Graph, Node, TensorType, Value


class ShapeError(Exception):
    """An op's inputs do not fit its type rule. The elaborator adds the source span."""


@dataclass
class OpDef:
    name: str
    infer: Callable[[list[TensorType], dict], list[TensorType]]
    vjp: Callable | None = None          # None: not differentiable (gradient is zero)
    onnx: Callable | None = None         # ONNX lowering, filled in by nngraph/onnx_export.py
    arity: int | None = None             # number of tensor inputs, None when variadic


OPS: dict[str, OpDef] = {}


def defop(name: str, infer, vjp=None, arity: int | None = None, onnx=None) -> OpDef:
    assert name not in OPS, f"op {name} defined twice"
    OPS[name] = opdef = OpDef(name, infer, vjp, onnx, arity=arity)
    return opdef


# ---------------------------------------------------------------- ONNX lowering helpers
# A lowering is ``lower(b, node, inputs) -> [output names]``: `b` is nngraph.onnx_export.Builder
# (b.op(op_type, *inputs, n_outputs=1, **attrs), b.const(array), b.ints(values), b.dtype(name),
# b.lower(node, inputs) for a made-up node), `inputs` the ONNX names of the node's inputs.
def onnx_same(op_type: str, **fixed):
    """An op that is one ONNX operator with the same inputs."""
    return lambda b, node, inputs: [b.op(op_type, *inputs, **fixed)]


def _onnx_reduce(op_type: str):
    def lower(b, node, inputs):
        axes = node.attrs.get("axes")
        keep = int(bool(node.attrs.get("keepdims", False)))
        if axes is None:
            return [b.op(op_type, inputs[0], keepdims=keep)]
        axes = [axes] if isinstance(axes, int) else list(axes)
        if not axes:                          # reducing over no axis changes nothing
            return [b.op("Identity", inputs[0])]
        return [b.op(op_type, inputs[0], b.ints(axes), keepdims=keep)]
    return lower


def _axis_onnx(op_type: str):
    return lambda b, node, inputs: [b.op(op_type, inputs[0], axis=node.attrs.get("axis", -1))]


def _exp_minus_abs(b, x):
    """exp(-|x|) in (0, 1]: never overflows, the shared start of sigmoid and softplus."""
    return b.op("Exp", b.op("Neg", b.op("Abs", x)))


def _sigmoid_onnx(b, node, inputs):
    # Not ONNX Sigmoid: onnxruntime's is off by 2e-4 (relative) at x = -10 and returns 0 below
    # about -17. With e = exp(-|x|): 1 / (1 + e) for x >= 0 and e / (1 + e) below, exact like the
    # NumPy kernel in every runtime.
    x = inputs[0]
    e = _exp_minus_abs(b, x)
    one = b.const(1, node.out.dtype)
    above = b.op("GreaterOrEqual", x, b.const(0, node.out.dtype))
    return [b.op("Div", b.op("Where", above, one, e), b.op("Add", one, e))]


def _softplus_onnx(b, node, inputs):
    # relu(x) + log1p(exp(-|x|)): finite for any x, where log(1 + exp(x)) overflows. ONNX has no
    # Log1p, and log(1 + u) is 0 once 1 + u rounds to 1 (u < 6e-8 in float32), losing softplus(x) ~
    # exp(x) for x below -17; log1p(u) = u * log(w) / (w - 1) with w = 1 + u is exact (Goldberg
    # 1991, Theorem 4), and u itself where w rounds to 1.
    x = inputs[0]
    u = _exp_minus_abs(b, x)
    w = b.op("Add", b.const(1, node.out.dtype), u)
    w_minus_1 = b.op("Sub", w, b.const(1, node.out.dtype))
    rounded = b.op("Equal", w_minus_1, b.const(0, node.out.dtype))
    log1p = b.op("Where", rounded, u, b.op("Div", b.op("Mul", u, b.op("Log", w)), w_minus_1))
    return [b.op("Add", b.op("Relu", x), log1p)]


def _cast_onnx(b, node, inputs):
    return [b.op("Cast", inputs[0], to=b.dtype(node.attrs["dtype"]))]


def _argmax_onnx(b, node, inputs):
    return [b.op("ArgMax", inputs[0], axis=node.attrs.get("axis", -1), keepdims=int(node.attrs.get("keepdims", False)))]


def _one_hot_onnx(b, node, inputs):
    # indices[..., None] == arange(depth), as the kernel: onnxruntime's OneHot lacks float64 values
    indices = b.op("Cast", inputs[0], to=b.dtype("int64"))
    hits = b.op("Equal", b.op("Unsqueeze", indices, b.ints([-1])), b.ints(range(node.attrs["depth"])))
    return [b.op("Cast", hits, to=b.dtype(node.out.dtype))]


def _constant_onnx(b, node, inputs):
    return [b.const(node.attrs["value"])]


def _dim_size_onnx(b, node, inputs):
    x = node.inputs[0]
    axes = node.attrs.get("axes")
    axes = list(range(x.type.rank)) if axes is None else [axes] if isinstance(axes, int) else list(axes)
    sizes = b.op("Gather", b.op("Shape", inputs[0]), b.ints(axes), axis=0)
    return [b.op("Cast", b.op("ReduceProd", sizes, keepdims=0), to=b.dtype(node.out.dtype))]


def _transpose_onnx(b, node, inputs):
    perm = node.attrs.get("perm")
    return [b.op("Transpose", inputs[0], perm=list(perm) if perm is not None else None)]


def _reshape_onnx(b, node, inputs):
    return [b.op("Reshape", inputs[0], b.ints(node.attrs["shape"]))]     # 0 copies, -1 infers: as here


def _reshape_like_onnx(b, node, inputs):
    return [b.op("Reshape", inputs[0], b.op("Shape", inputs[1]))]


def _broadcast_like_onnx(b, node, inputs):
    return [b.op("Expand", inputs[0], b.op("Shape", inputs[1]))]       # Expand broadcasts both ways


def _expand_dims_onnx(b, node, inputs):
    return [b.op("Unsqueeze", inputs[0], b.ints(node.attrs["axes"]))]


class Emitter:
    """Builds IR for a gradient: every node it makes carries the span and scope of the forward
    node being differentiated, so the backward pass still points at the user's source line."""

    def __init__(self, graph: Graph, span=None, scope: str = "", role: str = "backward"):
        self.graph, self.span, self.scope, self.role = graph, span, scope, role

    def __call__(self, op: str, *inputs: Value, **attrs) -> Value:
        return self.many(op, *inputs, **attrs)[0]

    def many(self, op: str, *inputs: Value, **attrs) -> list[Value]:
        return self.graph.apply(op, list(inputs), attrs, span=self.span, scope=self.scope, role=self.role,
                                name=f"{self.scope}.d{op}" if self.role == "backward" and self.scope else None)

    def const(self, value, like: Value) -> Value:
        """A scalar constant with the dtype of `like`."""
        return self("constant", value=np.asarray(value, dtype=like.dtype))

    def sum_to(self, g: Value, target: Value) -> Value:
        """Undo broadcasting: sum `g` over the axes along which `target` was broadcast."""
        return sum_to(self, g, target)


# ---------------------------------------------------------------- shape helpers
def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ShapeError(message)


def fmt_shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast_shapes(*shapes: tuple[Dim, ...]) -> tuple[Dim, ...]:
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        distinct = {d for d in dims if d != 1}
        _check(len(distinct) <= 1, "cannot broadcast shapes " + " and ".join(fmt_shape(s) for s in shapes))
        out.append(distinct.pop() if distinct else 1)
    return tuple(out)


def norm_axis(axis: int, rank: int) -> int:
    _check(-rank <= axis < max(rank, 1), f"axis {axis} is out of range for a tensor of rank {rank}")
    return axis % rank if rank else 0


def norm_axes(axes, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank))
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    normalized = tuple(sorted(norm_axis(a, rank) for a in axes))
    _check(len(set(normalized)) == len(normalized), f"axes {axes} name the same axis twice")
    return normalized


def dim_product(dims) -> Dim:
    known = math.prod(d for d in dims if isinstance(d, int))
    symbols = [d for d in dims if isinstance(d, str)]
    if not symbols:
        return known
    return "*".join(([str(known)] if known != 1 else []) + symbols)


def _same_dtype(types: list[TensorType], opname: str) -> str:
    dtypes = {t.dtype for t in types}
    _check(len(dtypes) == 1, f"`{opname}` needs operands of one dtype, got " + " and ".join(t.dtype for t in types))
    return types[0].dtype


def _float_only(t: TensorType, opname: str) -> None:
    _check(t.is_float, f"`{opname}` needs a float tensor, got {t.dtype}")


# ---------------------------------------------------------------- type rules
def elementwise(opname: str, float_only=True):
    def infer(types, attrs):
        dtype = _same_dtype(types, opname)
        if float_only:
            _float_only(types[0], opname)
        _numeric_only(types, opname)
        return [TensorType(dtype, broadcast_shapes(*(t.shape for t in types)))]
    return infer


def comparison(opname: str):
    def infer(types, attrs):
        _same_dtype(types, opname)
        return [TensorType("bool", broadcast_shapes(*(t.shape for t in types)))]
    return infer


def _numeric_only(types: list[TensorType], opname: str) -> None:
    _check(all(t.dtype != "bool" for t in types), f"`{opname}` needs numbers, got bool")


def unary(opname: str, float_only=True):
    def infer(types, attrs):
        if float_only:
            _float_only(types[0], opname)
        _numeric_only(types, opname)
        return [types[0]]
    return infer


def reduction(opname: str):
    def infer(types, attrs):
        t = types[0]
        axes = norm_axes(attrs.get("axes"), t.rank)
        keep = attrs.get("keepdims", False)
        shape = [1 if i in axes else d for i, d in enumerate(t.shape)] if keep else \
                [d for i, d in enumerate(t.shape) if i not in axes]
        return [t.with_shape(shape)]
    return infer


def expanded_shape(g: Value, axes, rank: int) -> list:
    """Shape of a reduction result with `keepdims` restored."""
    axes = norm_axes(axes, rank)
    it = iter(g.shape)
    return [1 if i in axes else next(it) for i in range(rank)]


def keepdims_axes(node) -> tuple[int, ...]:
    return norm_axes(node.attrs.get("axes"), node.inputs[0].type.rank)


def restore_reduced(e: Emitter, g: Value, node) -> Value:
    """Broadcast a reduction's gradient back over the reduced axes."""
    x = node.inputs[0]
    if not node.attrs.get("keepdims", False) and keepdims_axes(node):
        g = e("expand_dims", g, axes=keepdims_axes(node))
    return e("broadcast_like", g, x)


def sum_to(e: Emitter, g: Value, target: Value) -> Value:
    if g.shape == target.shape:
        return g
    lead = g.type.rank - target.type.rank
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(target.shape) if d == 1 and g.shape[lead + i] != 1)
    if axes:
        g = e("sum", g, axes=axes, keepdims=True)
    return e("reshape_like", g, target) if g.shape != target.shape else g


# ---------------------------------------------------------------- arithmetic
defop("add", elementwise("add", float_only=False), arity=2,
      vjp=lambda e, n, gs, w: [e.sum_to(gs[0], x) if want else None for x, want in zip(n.inputs, w)],
      onnx=onnx_same("Add"))

defop("sub", elementwise("sub", float_only=False), arity=2,
      vjp=lambda e, n, gs, w: [e.sum_to(gs[0], n.inputs[0]) if w[0] else None,
                               e.sum_to(e("neg", gs[0]), n.inputs[1]) if w[1] else None], onnx=onnx_same("Sub"))


def _mul_vjp(e, n, gs, w):
    a, b = n.inputs
    return [e.sum_to(e("mul", gs[0], b), a) if w[0] else None,
            e.sum_to(e("mul", gs[0], a), b) if w[1] else None]


defop("mul", elementwise("mul", float_only=False), _mul_vjp, arity=2, onnx=onnx_same("Mul"))


def _div_vjp(e, n, gs, w):
    a, b = n.inputs
    da = e.sum_to(e("div", gs[0], b), a) if w[0] else None
    db = e.sum_to(e("neg", e("div", e("mul", gs[0], n.out), b)), b) if w[1] else None
    return [da, db]


defop("div", elementwise("div"), _div_vjp, arity=2, onnx=onnx_same("Div"))


def _pow_vjp(e, n, gs, w):
    a, b = n.inputs
    da = db = None
    if w[0]:   # b * a ** (b - 1)
        da = e.sum_to(e("mul", gs[0], e("mul", b, e("pow", a, e("sub", b, e.const(1, b))))), a)
    if w[1]:   # a ** b * log(a)
        db = e.sum_to(e("mul", gs[0], e("mul", n.out, e("log", a))), b)
    return [da, db]


defop("pow", elementwise("pow"), _pow_vjp, arity=2, onnx=onnx_same("Pow"))

defop("neg", unary("neg", float_only=False), arity=1, vjp=lambda e, n, gs, w: [e("neg", gs[0])],
      onnx=onnx_same("Neg"))
defop("exp", unary("exp"), arity=1, vjp=lambda e, n, gs, w: [e("mul", gs[0], n.out)], onnx=onnx_same("Exp"))
defop("log", unary("log"), arity=1, vjp=lambda e, n, gs, w: [e("div", gs[0], n.inputs[0])], onnx=onnx_same("Log"))
defop("sqrt", unary("sqrt"), arity=1,
      vjp=lambda e, n, gs, w: [e("div", gs[0], e("mul", e.const(2, n.out), n.out))], onnx=onnx_same("Sqrt"))
defop("abs", unary("abs", float_only=False), arity=1,
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sign", n.inputs[0]))], onnx=onnx_same("Abs"))
defop("sign", unary("sign", float_only=False), arity=1, onnx=onnx_same("Sign"))

# ---------------------------------------------------------------- activations
defop("relu", unary("relu"), arity=1,
      vjp=lambda e, n, gs, w: [e("where", e("greater", n.inputs[0], e.const(0, n.inputs[0])),
                                 gs[0], e.const(0, gs[0]))], onnx=onnx_same("Relu"))
defop("sigmoid", unary("sigmoid"), arity=1,   # s' = s (1 - s)
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("mul", n.out, e("sub", e.const(1, n.out), n.out)))],
      onnx=_sigmoid_onnx)
defop("tanh", unary("tanh"), arity=1,         # tanh' = 1 - tanh^2
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sub", e.const(1, n.out), e("mul", n.out, n.out)))],
      onnx=onnx_same("Tanh"))
defop("softplus", unary("softplus"), arity=1,  # softplus' = sigmoid
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sigmoid", n.inputs[0]))], onnx=_softplus_onnx)


def _axis_rule(opname):
    def infer(types, attrs):
        _float_only(types[0], opname)
        norm_axis(attrs.get("axis", -1), types[0].rank)
        return [types[0]]
    return infer


def _softmax_vjp(e, n, gs, w):   # y * (g - sum(g * y))
    y, axis = n.out, n.attrs.get("axis", -1)
    dot = e("sum", e("mul", gs[0], y), axes=(axis,), keepdims=True)
    return [e("mul", y, e("sub", gs[0], dot))]


def _log_softmax_vjp(e, n, gs, w):   # g - softmax * sum(g)
    axis = n.attrs.get("axis", -1)
    total = e("sum", gs[0], axes=(axis,), keepdims=True)
    return [e("sub", gs[0], e("mul", e("exp", n.out), total))]


defop("softmax", _axis_rule("softmax"), _softmax_vjp, arity=1, onnx=_axis_onnx("Softmax"))
defop("log_softmax", _axis_rule("log_softmax"), _log_softmax_vjp, arity=1, onnx=_axis_onnx("LogSoftmax"))

# ---------------------------------------------------------------- comparisons and selection
_COMPARISONS = {"less": "Less", "less_equal": "LessOrEqual", "greater": "Greater",
                "greater_equal": "GreaterOrEqual", "equal": "Equal", "not_equal": None}
for _name, _op_type in _COMPARISONS.items():
    defop(_name, comparison(_name), arity=2,
          onnx=onnx_same(_op_type) if _op_type else lambda b, node, inputs: [b.op("Not", b.op("Equal", *inputs))])


def _where_infer(types, attrs):
    cond, a, b = types
    _check(cond.dtype == "bool", f"the condition of `where` must be bool, got {cond.dtype}")
    dtype = _same_dtype([a, b], "where")
    return [TensorType(dtype, broadcast_shapes(cond.shape, a.shape, b.shape))]


def _where_vjp(e, n, gs, w):
    cond, a, b = n.inputs
    zero = e.const(0, gs[0])
    return [None,
            e.sum_to(e("where", cond, gs[0], zero), a) if w[1] else None,
            e.sum_to(e("where", cond, zero, gs[0]), b) if w[2] else None]


defop("where", _where_infer, _where_vjp, arity=3, onnx=onnx_same("Where"))


def _cast_infer(types, attrs):
    return [types[0].with_dtype(attrs["dtype"])]


defop("cast", _cast_infer, arity=1,
      vjp=lambda e, n, gs, w: [e("cast", gs[0], dtype=n.inputs[0].dtype) if n.inputs[0].type.is_float else None],
      onnx=_cast_onnx)


def _argmax_infer(types, attrs):
    t = types[0]
    axis = norm_axis(attrs.get("axis", -1), t.rank)
    shape = [1 if i == axis else d for i, d in enumerate(t.shape)] if attrs.get("keepdims", False) else \
            [d for i, d in enumerate(t.shape) if i != axis]
    return [TensorType("int64", tuple(shape))]


defop("argmax", _argmax_infer, arity=1, onnx=_argmax_onnx)


def _one_hot_infer(types, attrs):
    t = types[0]
    _check(t.dtype in ("int32", "int64"), f"`one_hot` needs integer class indices, got {t.dtype}")
    return [TensorType(attrs.get("dtype", "float32"), t.shape + (attrs["depth"],))]


defop("one_hot", _one_hot_infer, arity=1, onnx=_one_hot_onnx)


def _fill_infer(types, attrs):
    """`dims` holds ints and (input index, axis) pairs: a size read from an input at run time,
    which is how a symbolic size such as the batch reaches a tensor of zeros."""
    shape = [d if isinstance(d, int) else types[d[0]].shape[d[1]] for d in attrs["dims"]]
    return [TensorType(attrs.get("dtype", "float32"), tuple(shape))]


def _fill_onnx(b, node, inputs):
    from onnx import numpy_helper
    parts = [d if isinstance(d, int) else (node.inputs[d[0]], inputs[d[0]], d[1]) for d in node.attrs["dims"]]
    shape = _onnx_dims(b, parts)
    value = np.full(1, node.attrs.get("value", 0.0), dtype=node.out.dtype)
    return [b.op("ConstantOfShape", shape, value=numpy_helper.from_array(value))]


defop("fill", _fill_infer).onnx = _fill_onnx    # a tensor of one value whose shape may take sizes from inputs


def _constant_infer(types, attrs):
    value = attrs["value"]
    return [TensorType(str(value.dtype), tuple(value.shape))]


defop("constant", _constant_infer, arity=0, onnx=_constant_onnx)

# ---------------------------------------------------------------- reductions
defop("sum", reduction("sum"), arity=1, vjp=lambda e, n, gs, w: [restore_reduced(e, gs[0], n)],
      onnx=_onnx_reduce("ReduceSum"))


def _mean_vjp(e, n, gs, w):
    count = e("dim_size", n.inputs[0], axes=keepdims_axes(n), dtype=gs[0].dtype)
    return [restore_reduced(e, e("div", gs[0], count), n)]


defop("mean", reduction("mean"), _mean_vjp, arity=1, onnx=_onnx_reduce("ReduceMean"))


def _max_vjp(e, n, gs, w):
    """The gradient goes to the maxima, shared equally between ties."""
    x = n.inputs[0]
    peak = restore_reduced(e, n.out, n)
    hits = e("cast", e("equal", x, peak), dtype=x.dtype)
    share = e("div", hits, e("sum", hits, axes=keepdims_axes(n), keepdims=True))
    return [e("mul", share, restore_reduced(e, gs[0], n))]


defop("max", reduction("max"), _max_vjp, arity=1, onnx=_onnx_reduce("ReduceMax"))


def _dim_size_infer(types, attrs):
    return [TensorType(attrs.get("dtype", "float32"), ())]


defop("dim_size", _dim_size_infer, arity=1, onnx=_dim_size_onnx)   # product of the sizes of some axes, as a scalar

# ---------------------------------------------------------------- shapes
def _matmul_infer(types, attrs):
    a, b = types
    _same_dtype(types, "@")
    _check(a.rank >= 2 and b.rank >= 2,
           f"`@` needs operands of rank 2 or more, got {fmt_shape(a.shape)} and {fmt_shape(b.shape)}")
    _check(a.shape[-1] == b.shape[-2],
           f"`@` contracts the last axis of {fmt_shape(a.shape)} with the second-to-last of "
           f"{fmt_shape(b.shape)}: {a.shape[-1]} != {b.shape[-2]}")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return [TensorType(a.dtype, batch + (a.shape[-2], b.shape[-1]))]


def _swap_last(e, v):
    perm = tuple(range(v.type.rank - 2)) + (v.type.rank - 1, v.type.rank - 2)
    return e("transpose", v, perm=perm)


def _matmul_vjp(e, n, gs, w):
    a, b = n.inputs
    return [e.sum_to(e("matmul", gs[0], _swap_last(e, b)), a) if w[0] else None,
            e.sum_to(e("matmul", _swap_last(e, a), gs[0]), b) if w[1] else None]


defop("matmul", _matmul_infer, _matmul_vjp, arity=2, onnx=onnx_same("MatMul"))


def _transpose_infer(types, attrs):
    t = types[0]
    perm = attrs.get("perm") or tuple(reversed(range(t.rank)))
    _check(sorted(perm) == list(range(t.rank)), f"{tuple(perm)} is not a permutation of the {t.rank} axes")
    return [t.with_shape(tuple(t.shape[p] for p in perm))]


def _transpose_vjp(e, n, gs, w):
    perm = n.attrs.get("perm") or tuple(reversed(range(n.inputs[0].type.rank)))
    return [e("transpose", gs[0], perm=tuple(int(i) for i in np.argsort(perm)))]


defop("transpose", _transpose_infer, _transpose_vjp, arity=1, onnx=_transpose_onnx)


def _reshape_infer(types, attrs):
    """ONNX semantics: 0 copies the input's dim at that position, -1 is inferred."""
    t = types[0]
    target = list(attrs["shape"])
    _check(target.count(-1) <= 1, "a reshape can infer at most one dimension (-1)")
    _check(all(d != 0 or i < t.rank for i, d in enumerate(target)),
           f"a 0 in a reshape copies the input's size on that axis, but {fmt_shape(t.shape)} has only {t.rank} axes")
    out = [t.shape[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in out:
        rest = dim_product([d for d in out if d != -1])
        total = dim_product(t.shape)
        if isinstance(total, int) and isinstance(rest, int):
            _check(rest != 0 and total % rest == 0, f"cannot reshape {fmt_shape(t.shape)} to {fmt_shape(target)}")
            out[out.index(-1)] = total // rest
        else:
            out[out.index(-1)] = _divide_dims(t.shape, [d for d in out if d != -1])
    else:
        total, want = dim_product(t.shape), dim_product(out)
        _check(not (isinstance(total, int) and isinstance(want, int)) or total == want,
               f"cannot reshape {fmt_shape(t.shape)} ({total} elements) to {fmt_shape(out)} ({want} elements)")
    return [t.with_shape(out)]


def _divide_dims(have, known) -> Dim:
    """The inferred dim of a symbolic reshape, written as the leftover product (e.g. N*T)."""
    have, known = list(have), list(known)
    for d in list(known):
        if d in have:
            have.remove(d)
            known.remove(d)
    num, den = dim_product(have), dim_product(known)
    if isinstance(num, int) and isinstance(den, int) and num % den == 0:
        return num // den
    whole = math.prod(d for d in have if isinstance(d, int))
    if isinstance(den, int) and whole % den == 0:     # [N, 6] -> [-1, 3] gives 2*N, as [N, 2, 3] does
        return dim_product([whole // den] + [d for d in have if isinstance(d, str)])
    return str(num) if den == 1 else f"({num})/({den})"


defop("reshape", _reshape_infer, arity=1, vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0])],
      onnx=_reshape_onnx)
defop("reshape_like", lambda types, attrs: [types[0].with_shape(types[1].shape)], arity=2,
      vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0]) if w[0] else None, None],
      onnx=_reshape_like_onnx)
defop("broadcast_like", lambda types, attrs: [types[0].with_shape(broadcast_shapes(types[0].shape, types[1].shape))],
      arity=2, vjp=lambda e, n, gs, w: [e.sum_to(gs[0], n.inputs[0]) if w[0] else None, None],
      onnx=_broadcast_like_onnx)


def _expand_dims_infer(types, attrs):
    t = types[0]
    rank = t.rank + len(attrs["axes"])
    axes = norm_axes(attrs["axes"], rank)
    it = iter(t.shape)
    return [t.with_shape([1 if i in axes else next(it) for i in range(rank)])]


defop("expand_dims", _expand_dims_infer, arity=1,
      vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0])], onnx=_expand_dims_onnx)


# ---------------------------------------------------------------- recurrence
# scan(carries..., sequences..., captured...) runs attrs["body"], a Graph, once per step along
# axis 0 of the sequences (or `length` times when there are none). The body's inputs are the
# carries, one step of each sequence, and the captured outer values (parameters, say); its
# outputs are the new carries, then the per-step results, which scan stacks along a new axis 0.
# Outputs: the final carries, the stacked results, and with `save_carries` the carry each step
# started from (stacked), which backpropagation through time reads.

def scan_parts(node_or_types, attrs) -> tuple[list, list, list]:
    items = node_or_types
    nc, ns = attrs["n_carry"], attrs["n_seq"]
    return list(items[:nc]), list(items[nc:nc + ns]), list(items[nc + ns:])


def _scan_infer(types, attrs):
    body = attrs["body"]
    carries, seqs, captured = scan_parts(types, attrs)
    _check(len(body.inputs) == len(types),
           f"the scan body takes {len(body.inputs)} inputs but the scan gives it {len(types)}")
    if seqs:
        _check(all(s.rank >= 1 for s in seqs), "a scanned sequence needs an axis to walk along")
        steps = seqs[0].shape[0]
        _check(all(s.shape[0] == steps for s in seqs), "scanned sequences must have the same length, got "
               + " and ".join(fmt_shape(s.shape) for s in seqs))
    else:
        steps = attrs["length"]
    given = carries + [s.with_shape(s.shape[1:]) for s in seqs] + captured
    for v, t in zip(body.inputs, given):
        _check(v.type == t, f"the scan body's input `{v.name}` is {v.type} but receives {t}")
    results = list(body.outputs.values())
    _check(len(results) >= len(carries), "the scan body must return every carry")
    for c, new in zip(carries, results):
        _check(new.type == c, f"a carry enters the step as {c} but leaves it as {new.type}: "
                              "a carry must keep its type from step to step")
    stacked = [y.type.with_shape((steps,) + y.shape) for y in results[len(carries):]]
    saved = [c.with_shape((steps,) + c.shape) for c in carries] if attrs.get("save_carries") else []
    return carries + stacked + saved


def _scan_vjp(e, n, gs, w):
    """Backpropagation through time: the forward scan is run again saving the carry of every
    step, then a scan in the opposite direction runs the body's own VJP step by step, carrying
    the gradient of the carry and summing the gradients of the captured values."""
    from nngraph.autodiff import scan_backward_body
    attrs, body = n.attrs, n.attrs["body"]
    carries, seqs, captured = scan_parts(n.inputs, attrs)
    nc, ny = len(carries), len(body.outputs) - len(carries)
    if attrs.get("save_carries"):
        saved = n.outputs[nc + ny:]
    else:
        saved = e.many("scan", *n.inputs, **(attrs | {"save_carries": True}))[nc + ny:]
    # autodiff hands scalar zeros for outputs nothing reads; scanned inputs need their full shape
    g_final = [_full(e, g, out) for g, out in zip(gs[:nc], n.outputs[:nc])]
    g_steps = [_full(e, g, out) for g, out in zip(gs[nc:nc + ny], n.outputs[nc:nc + ny])]
    sums = [e("broadcast_like", e.const(0, c), c) for c in captured]
    back = scan_backward_body(body, nc, len(seqs))
    outs = e.many("scan", *g_final, *sums, *saved, *seqs, *g_steps, *captured, body=back,
                  n_carry=nc + len(captured), n_seq=nc + len(seqs) + ny, reverse=not attrs.get("reverse", False),
                  length=attrs.get("length"))
    d_carries, d_captured, d_seqs = outs[:nc], outs[nc:nc + len(captured)], outs[nc + len(captured):]
    return [d if want else None for d, want in zip(d_carries + d_seqs + d_captured, w)]


def _full(e, g, like):
    return g if g.shape == like.shape else e("broadcast_like", g, like)


def _scan_onnx(b, node, inputs):
    """ONNX Scan: reversed scans read their sequences from the end and prepend their results, so
    result t stays at position t as here. A scan with a step count only scans a dummy sequence."""
    from nngraph.onnx_export import lower_body
    attrs, body = node.attrs, node.attrs["body"]
    carries, seqs, captured = scan_parts(inputs, attrs)
    extra = []
    if not seqs:
        seqs, extra = [b.const(np.zeros(attrs["length"], np.float32))], [TensorType("float32", ())]
    n_saved = len(carries) if attrs.get("save_carries") else 0
    graph = lower_body(b, body, len(carries) + attrs["n_seq"], captured, extra, echo_inputs=n_saved)
    n_results = len(body.outputs) - len(carries) + n_saved
    direction = int(bool(attrs.get("reverse")))
    outputs = b.op("Scan", *carries, *seqs, n_outputs=len(node.outputs), body=graph, num_scan_inputs=len(seqs),
                   scan_input_directions=[direction] * len(seqs),
                   scan_output_directions=[direction] * n_results or None)
    return outputs if isinstance(outputs, list) else [outputs]


defop("scan", _scan_infer, _scan_vjp, onnx=_scan_onnx)


# ---------------------------------------------------------------- convolution, pooling, indexing
# Images are NCHW. Spatial attributes are (height, width) pairs; `pads` is (top, left, bottom,
# right), ONNX's order. A symbolic height or width gives a derived size such as `H-2` or
# `(H+1)//2+1`. Each op whose gradient is another op comes with that op, and the set is closed
# under differentiation (conv2d and its two adjoints; a pool and its gradient; slice and
# slice_grad; gather and scatter_add), so a gradient graph can be differentiated again.

def dim_add(d: Dim, k: int) -> Dim:
    """d + k for a size that may be symbolic: `H` + 2 is `H+2`, and `H+2` - 2 is `H` again."""
    import re
    if isinstance(d, int):
        return d + k
    m = re.fullmatch(r"(.+?)([+-]\d+)", d)
    base, offset = (m.group(1), int(m.group(2))) if m else (d, 0)
    offset += k
    return base if offset == 0 else f"{base}{offset:+d}"


def _ceil_div_dim(d: Dim, k: int) -> Dim:
    """ceil(d / k) for a positive step k."""
    if isinstance(d, int):
        return -(-d // k)
    return d if k == 1 else f"({dim_add(d, k - 1)})//{k}"


def _pair(attrs: dict, key: str, default: int, n: int = 2) -> tuple[int, ...]:
    value = attrs.get(key, default)
    value = (value,) * n if isinstance(value, int) else tuple(value)
    _check(len(value) == n and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
           f"`{key}` must be {n} integers, got {value}")
    return value


def _window_geometry(attrs: dict, opname: str, dilated: bool):
    stride, pads = _pair(attrs, "stride", 1), _pair(attrs, "pads", 0, 4)
    dilation = _pair(attrs, "dilation", 1) if dilated else (1, 1)
    _check(min(stride) >= 1, f"`{opname}` needs strides of at least 1, got {stride}")
    _check(min(dilation) >= 1, f"`{opname}` needs dilations of at least 1, got {dilation}")
    _check(min(pads) >= 0, f"`{opname}` needs paddings of at least 0, got {pads}")
    return stride, pads, dilation


def _window_out(size: Dim, extent: int, stride: int, before: int, after: int, what: str, opname: str) -> Dim:
    """How many windows of `extent` (the dilated kernel size) fit along an axis."""
    if isinstance(size, int):
        _check(size + before + after >= extent,
               f"`{opname}`: the input's {what} {size}" + (f" (padded to {size + before + after})" if before + after else "")
               + f" is smaller than the window's {extent}")
        return (size + before + after - extent) // stride + 1
    if stride == 1:
        return dim_add(size, before + after - extent + 1)
    return f"({dim_add(size, before + after - extent)})//{stride}+1"


def _image_rank(t: TensorType, opname: str, what: str = "an input") -> None:
    _check(t.rank == 4, f"`{opname}` needs {what} of shape [N, C, H, W], got {fmt_shape(t.shape)}")


def conv2d_shape(x: tuple, w: tuple, attrs: dict, opname: str = "conv2d") -> tuple:
    """The output shape of conv2d for input shape `x` and filter shape `w`."""
    stride, pads, dilation = _window_geometry(attrs, opname, dilated=True)
    groups = attrs.get("groups", 1)
    _check(isinstance(groups, int) and groups >= 1, f"`{opname}` needs groups >= 1, got {groups}")
    out_c, in_c, kh, kw = w
    _check(all(isinstance(d, int) for d in w),
           f"`{opname}` needs filters of a shape known at compile time, got {fmt_shape(w)}")
    _check(out_c % groups == 0, f"`{opname}` with {groups} groups needs a number of filters divisible by "
                                f"{groups}, got {out_c} (filters {fmt_shape(w)})")
    _check(not isinstance(x[1], int) or x[1] == in_c * groups,
           f"`{opname}` filters {fmt_shape(w)} read {in_c} channel{'s' if in_c != 1 else ''} per group "
           f"({groups} group{'s' if groups != 1 else ''}, {in_c * groups} in all), but the input {fmt_shape(x)} "
           f"has {x[1]}")
    height = _window_out(x[2], dilation[0] * (kh - 1) + 1, stride[0], pads[0], pads[2], "height", opname)
    width = _window_out(x[3], dilation[1] * (kw - 1) + 1, stride[1], pads[1], pads[3], "width", opname)
    return (x[0], out_c, height, width)


def _conv2d_infer(types, attrs):
    x, w = types
    _float_only(x, "conv2d")
    _same_dtype(types, "conv2d")
    _image_rank(x, "conv2d")
    _check(w.rank == 4, f"`conv2d` needs filters of shape [out_channels, in_channels / groups, kh, kw], "
                        f"got {fmt_shape(w.shape)}")
    return [x.with_shape(conv2d_shape(x.shape, w.shape, attrs))]


def _check_grad_shape(g: TensorType, want: tuple, opname: str) -> None:
    _check(tuple(g.shape) == tuple(want),
           f"`{opname}` needs a gradient of shape {fmt_shape(want)}, got {fmt_shape(g.shape)}")


def _conv2d_input_grad_infer(types, attrs):
    g, w, x = types
    _float_only(g, "conv2d_input_grad")
    _same_dtype([g, w], "conv2d_input_grad")
    _image_rank(x, "conv2d_input_grad", "a reference")
    _check(w.rank == 4, f"`conv2d_input_grad` needs 4-d filters, got {fmt_shape(w.shape)}")
    _check_grad_shape(g, conv2d_shape(x.shape, w.shape, attrs, "conv2d_input_grad"), "conv2d_input_grad")
    return [x.with_dtype(g.dtype)]


def _conv2d_weight_grad_infer(types, attrs):
    x, g, w = types
    _float_only(x, "conv2d_weight_grad")
    _same_dtype([x, g], "conv2d_weight_grad")
    _image_rank(x, "conv2d_weight_grad")
    _check(w.rank == 4, f"`conv2d_weight_grad` needs 4-d filters, got {fmt_shape(w.shape)}")
    _check_grad_shape(g, conv2d_shape(x.shape, w.shape, attrs, "conv2d_weight_grad"), "conv2d_weight_grad")
    return [w.with_dtype(g.dtype)]


_CONV_ATTRS = ("stride", "pads", "dilation", "groups")


def _conv_attrs(node) -> dict:
    return {k: node.attrs[k] for k in _CONV_ATTRS if k in node.attrs}


# conv2d(x, w), I(g, w; x) = conv2d_input_grad and W(x, g; w) = conv2d_weight_grad are the three
# partial gradients of the trilinear <g, conv2d(x, w)>, so each one's VJP is made of the others.
def _conv2d_vjp(e, n, gs, w):
    x, f = n.inputs
    a = _conv_attrs(n)
    return [e("conv2d_input_grad", gs[0], f, x, **a) if w[0] else None,
            e("conv2d_weight_grad", x, gs[0], f, **a) if w[1] else None]


def _conv2d_input_grad_vjp(e, n, gs, w):      # <h, I(g, f)> = <g, conv2d(h, f)>
    g, f, _ = n.inputs
    a = _conv_attrs(n)
    return [e("conv2d", gs[0], f, **a) if w[0] else None,
            e("conv2d_weight_grad", gs[0], g, f, **a) if w[1] else None, None]


def _conv2d_weight_grad_vjp(e, n, gs, w):     # <h, W(x, g)> = <g, conv2d(x, h)>
    x, g, f = n.inputs
    a = _conv_attrs(n)
    return [e("conv2d_input_grad", g, gs[0], x, **a) if w[0] else None,
            e("conv2d", x, gs[0], **a) if w[1] else None, None]


# ---- pooling: `kernel` (kh, kw), `stride`, `pads`; a window never lies wholly in the padding.
# max pads with -inf; avg divides by the whole window, padding included (count_include_pad).
def pool2d_shape(x: tuple, attrs: dict, opname: str) -> tuple:
    kernel = _pair(attrs, "kernel", 1)
    stride, pads, _ = _window_geometry(attrs, opname, dilated=False)
    _check(min(kernel) >= 1, f"`{opname}` needs a kernel of at least 1, got {kernel}")
    _check(all(p < k for p, k in zip(pads, kernel * 2)),
           f"`{opname}` needs each padding smaller than the kernel, got padding {pads} for kernel {kernel}")
    return (x[0], x[1], _window_out(x[2], kernel[0], stride[0], pads[0], pads[2], "height", opname),
            _window_out(x[3], kernel[1], stride[1], pads[1], pads[3], "width", opname))


def _pool_infer(opname):
    def infer(types, attrs):
        x = types[0]
        _float_only(x, opname)
        _image_rank(x, opname)
        return [x.with_shape(pool2d_shape(x.shape, attrs, opname))]
    return infer


def _pool_attrs(node) -> dict:
    return {k: node.attrs[k] for k in ("kernel", "stride", "pads") if k in node.attrs}


def _max_pool2d_grad_infer(types, attrs):       # (x, g) -> like x
    x, g = types
    _float_only(x, "max_pool2d_grad")
    _same_dtype(types, "max_pool2d_grad")
    _image_rank(x, "max_pool2d_grad")
    _check_grad_shape(g, pool2d_shape(x.shape, attrs, "max_pool2d_grad"), "max_pool2d_grad")
    return [x]


def _max_pool2d_select_infer(types, attrs):     # (x, h) -> like max_pool2d(x)
    x, h = types
    _float_only(x, "max_pool2d_select")
    _same_dtype(types, "max_pool2d_select")
    _image_rank(x, "max_pool2d_select")
    _check_grad_shape(h, x.shape, "max_pool2d_select")
    return [x.with_shape(pool2d_shape(x.shape, attrs, "max_pool2d_select"))]


def _avg_pool2d_grad_infer(types, attrs):       # (g, x_ref) -> like x_ref
    g, x = types
    _float_only(g, "avg_pool2d_grad")
    _image_rank(x, "avg_pool2d_grad", "a reference")
    _check_grad_shape(g, pool2d_shape(x.shape, attrs, "avg_pool2d_grad"), "avg_pool2d_grad")
    return [x.with_dtype(g.dtype)]


# max_pool2d's gradient routes g to the first maximum of each window (max_pool2d_grad, linear in
# g); the adjoint of that routing reads h at those maxima (max_pool2d_select). Both are piecewise
# constant in x, so no gradient flows to x through them.
def _max_pool2d_vjp(e, n, gs, w):
    return [e("max_pool2d_grad", n.inputs[0], gs[0], **_pool_attrs(n))]


def _max_pool2d_grad_vjp(e, n, gs, w):
    return [None, e("max_pool2d_select", n.inputs[0], gs[0], **_pool_attrs(n)) if w[1] else None]


def _max_pool2d_select_vjp(e, n, gs, w):
    return [None, e("max_pool2d_grad", n.inputs[0], gs[0], **_pool_attrs(n)) if w[1] else None]


def _avg_pool2d_vjp(e, n, gs, w):
    return [e("avg_pool2d_grad", gs[0], n.inputs[0], **_pool_attrs(n))]


def _avg_pool2d_grad_vjp(e, n, gs, w):
    return [e("avg_pool2d", gs[0], **_pool_attrs(n)) if w[0] else None, None]


# ---- slicing: `axes`, `starts`, `ends`, `steps` as in Python (negative indices count from the
# end, a step may be negative, None is the whole way); out-of-range bounds clamp. A symbolic axis
# can be sliced when the result's size does not depend on it in a nonlinear way.
def _slice_spec(attrs: dict, rank: int):
    axes = tuple(attrs["axes"])
    n = len(axes)
    starts = tuple(attrs.get("starts") or (None,) * n)
    ends = tuple(attrs.get("ends") or (None,) * n)
    steps = tuple(attrs.get("steps") or (1,) * n)
    _check(len(starts) == len(ends) == len(steps) == n, "a slice needs one start, end and step per axis")
    norm = [norm_axis(a, rank) for a in axes]
    _check(len(set(norm)) == n, f"a slice names an axis twice: {axes}")
    _check(all(s != 0 for s in steps), "a slice step cannot be zero")
    return list(zip(norm, starts, ends, steps))


def slice_length(dim: Dim, start, end, step: int) -> Dim:
    if isinstance(dim, int):
        return len(range(*slice(start, end, step).indices(dim)))
    # each bound is (from the beginning?, offset); None runs to the end in the step's direction
    if step > 0:
        lo = (True, 0) if start is None else (start >= 0, start)
        hi = (False, 0) if end is None else (end >= 0, end)
    else:
        lo = (True, -1) if end is None else (end >= 0, end)
        hi = (False, -1) if start is None else (start >= 0, start)
    k = abs(step)
    if lo[0] == hi[0]:                                  # both from the same side: a fixed count
        return max(0, -(-(hi[1] - lo[1]) // k))
    _check(lo[0] and not hi[0],
           f"slicing an axis of symbolic size {dim} with start {start}, end {end} and step {step} gives a "
           f"size that depends on {dim}: count both bounds from the same end, or from either end of the axis")
    return _ceil_div_dim(dim_add(dim, hi[1] - lo[1]), k)


def slice_shape(shape: tuple, attrs: dict) -> tuple:
    out = list(shape)
    for axis, start, end, step in _slice_spec(attrs, len(shape)):
        out[axis] = size = slice_length(shape[axis], start, end, step)
        _check(size != 0, f"the slice {_slice_text(start, end, step)} of axis {axis} (size {shape[axis]}) "
                          "selects nothing")
    return tuple(out)


def _slice_text(start, end, step) -> str:
    def part(v):
        return "" if v is None else str(v)
    return f"{part(start)}:{part(end)}" + (f":{step}" if step != 1 else "")


def _slice_infer(types, attrs):
    return [types[0].with_shape(slice_shape(types[0].shape, attrs))]


def _slice_grad_infer(types, attrs):            # (g, x_ref) -> like x_ref, zeros off the slice
    g, x = types
    _check_grad_shape(g, slice_shape(x.shape, attrs), "slice_grad")
    _numeric_only([g], "slice_grad")
    return [x.with_dtype(g.dtype)]


def _slice_attrs(node) -> dict:
    return {k: node.attrs[k] for k in ("axes", "starts", "ends", "steps") if k in node.attrs}


def _slice_vjp(e, n, gs, w):
    return [e("slice_grad", gs[0], n.inputs[0], **_slice_attrs(n))]


def _slice_grad_vjp(e, n, gs, w):
    return [e("slice", gs[0], **_slice_attrs(n)) if w[0] else None, None]


# ---- pad: `pads` as ONNX lists them, every axis's start then every axis's end; constant `value`
def _pad_pairs(attrs: dict, rank: int) -> list[tuple[int, int]]:
    pads = tuple(attrs["pads"])
    _check(len(pads) == 2 * rank, f"`pad` needs {2 * rank} paddings for a tensor of rank {rank} (every axis's "
                                  f"start, then every axis's end), got {len(pads)}")
    _check(all(isinstance(p, int) and p >= 0 for p in pads), f"`pad` needs paddings of at least 0, got {pads}")
    return list(zip(pads[:rank], pads[rank:]))


def _pad_infer(types, attrs):
    t = types[0]
    _numeric_only(types, "pad")
    return [t.with_shape(dim_add(d, b + a) for d, (b, a) in zip(t.shape, _pad_pairs(attrs, t.rank)))]


def _pad_vjp(e, n, gs, w):
    pairs = [(axis, b, a) for axis, (b, a) in enumerate(_pad_pairs(n.attrs, n.inputs[0].type.rank)) if b or a]
    if not pairs:
        return [gs[0]]
    return [e("slice", gs[0], axes=tuple(p[0] for p in pairs), starts=tuple(p[1] for p in pairs),
              ends=tuple(-p[2] if p[2] else None for p in pairs), steps=(1,) * len(pairs))]


# ---- concat along `axis`; at most one input may have a symbolic size along it (its gradient
# is then the slice between the others)
def _concat_infer(types, attrs):
    _check(len(types) >= 1, "`concat` needs at least one tensor")
    dtype = _same_dtype(types, "concat")
    rank = types[0].rank
    _check(rank >= 1 and all(t.rank == rank for t in types),
           "`concat` needs tensors of one rank (at least 1), got " + " and ".join(fmt_shape(t.shape) for t in types))
    axis = norm_axis(attrs.get("axis", 0), rank)
    for t in types[1:]:
        _check(all(a == b for i, (a, b) in enumerate(zip(t.shape, types[0].shape)) if i != axis),
               f"`concat` along axis {axis} needs the other axes to agree, got "
               + " and ".join(fmt_shape(t.shape) for t in types))
    sizes = [t.shape[axis] for t in types]
    symbolic = [d for d in sizes if not isinstance(d, int)]
    _check(len(symbolic) <= 1, f"`concat` along axis {axis} can join at most one tensor of symbolic size there, "
                               f"got sizes {', '.join(map(str, sizes))}")
    total = sum(d for d in sizes if isinstance(d, int))
    size = dim_add(symbolic[0], total) if symbolic else total
    return [TensorType(dtype, tuple(size if i == axis else d for i, d in enumerate(types[0].shape)))]


def _concat_vjp(e, n, gs, w):
    """Each input's gradient is its slice of g; behind the one symbolic size, counted from the end."""
    axis = norm_axis(n.attrs.get("axis", 0), n.out.type.rank)
    sizes = [v.shape[axis] for v in n.inputs]
    symbolic = next((i for i, s in enumerate(sizes) if not isinstance(s, int)), len(sizes))
    grads = []
    for i, (size, want) in enumerate(zip(sizes, w)):
        if not want:
            grads.append(None)
            continue
        if i < symbolic:
            start, end = sum(sizes[:i]), sum(sizes[:i]) + size
        else:
            after = sum(sizes[i + 1:])
            start = sum(sizes[:i]) if i == symbolic else -(after + size)
            end = -after if after else None
        grads.append(e("slice", gs[0], axes=(axis,), starts=(start,), ends=(end,), steps=(1,)))
    return grads


# ---- gather along `axis` (ONNX Gather: table[..., indices, ...], negative indices count from the
# end); its gradient adds into zeros at the gathered rows, so repeated indices accumulate
INT_INDEX_DTYPES = ("int32", "int64")


def _gather_shape(table: TensorType, indices: TensorType, attrs: dict, opname: str) -> tuple:
    _check(indices.dtype in INT_INDEX_DTYPES, f"`{opname}` needs integer indices, got {indices.dtype}")
    _check(table.rank >= 1, f"`{opname}` needs a table of rank 1 or more, got a scalar")
    axis = norm_axis(attrs.get("axis", 0), table.rank)
    return table.shape[:axis] + indices.shape + table.shape[axis + 1:]


def _gather_infer(types, attrs):
    table, indices = types
    return [table.with_shape(_gather_shape(table, indices, attrs, "gather"))]


def _scatter_add_infer(types, attrs):           # (g, indices, table_ref) -> like table_ref
    g, indices, table = types
    _numeric_only([g], "scatter_add")
    _check_grad_shape(g, _gather_shape(table, indices, attrs, "scatter_add"), "scatter_add")
    return [table.with_dtype(g.dtype)]


def _gather_vjp(e, n, gs, w):
    return [e("scatter_add", gs[0], n.inputs[1], n.inputs[0], axis=n.attrs.get("axis", 0)) if w[0] else None,
            None]


def _scatter_add_vjp(e, n, gs, w):
    return [e("gather", gs[0], n.inputs[1], axis=n.attrs.get("axis", 0)) if w[0] else None, None, None]


# ---- ONNX lowerings of the ops above (opset 18). `b` is nngraph.onnx_export.Builder.
def _onnx_shape(b, value: Value, name: str, axes=None) -> str:
    """The sizes of some axes of `value` (default all) as an int64 vector: a constant where they
    are known at compile time, else read with Shape."""
    axes = list(range(value.type.rank)) if axes is None else list(axes)
    dims = [value.shape[a] for a in axes]
    if all(isinstance(d, int) for d in dims):
        return b.ints(dims)
    whole = b.op("Shape", name)
    if axes == list(range(value.type.rank)):
        return whole
    return b.op("Gather", whole, b.ints(axes), axis=0)


def _onnx_dims(b, parts) -> str:
    """An int64 vector from ints and (value, name, axis) triples (a size read at run time)."""
    if all(isinstance(p, int) or isinstance(p[0].shape[p[2]], int) for p in parts):
        return b.ints([p if isinstance(p, int) else p[0].shape[p[2]] for p in parts])
    pieces = [b.ints([p]) if isinstance(p, int) else b.op("Shape", p[1], start=p[2], end=p[2] + 1) for p in parts]
    return b.op("Concat", *pieces, axis=0)


def _onnx_zeros(b, shape: str, dtype: str) -> str:
    from onnx import numpy_helper
    return b.op("ConstantOfShape", shape, value=numpy_helper.from_array(np.zeros(1, dtype=dtype)))


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
    return b.op("Slice", full, b.ints([0, 0]), _onnx_shape(b, x, x_name, (2, 3)), b.ints([2, 3]))


def _transposed_window(b, g: str, weight: str, g_value: Value, x: Value, x_name: str,
                       kernel, stride, pads, dilation, groups) -> str:
    """The adjoint of a windowed op from a transposed convolution, cut to the input's size."""
    full = b.op("ConvTranspose", g, weight, strides=list(stride), dilations=list(dilation), group=groups,
                pads=[pads[0], pads[1], 0, 0])
    covered = tuple(s * (o - 1) + d * (k - 1) + 1 - p if isinstance(o, int) else None
                    for s, o, d, k, p in zip(stride, g_value.shape[2:], dilation, kernel, pads[:2]))
    return _onnx_cover(b, full, x, x_name, covered, (stride[0] - 1, stride[1] - 1))


def _conv2d_onnx(b, n, ins):
    stride, pads, dilation = _window_geometry(n.attrs, "conv2d", dilated=True)
    return [b.op("Conv", ins[0], ins[1], strides=list(stride), pads=list(pads), dilations=list(dilation),
                 group=n.attrs.get("groups", 1))]


def _conv2d_input_grad_onnx(b, n, ins):
    stride, pads, dilation = _window_geometry(n.attrs, "conv2d_input_grad", dilated=True)
    g, w, x = n.inputs
    return [_transposed_window(b, ins[0], ins[1], g, x, ins[2], w.shape[2:], stride, pads, dilation,
                               n.attrs.get("groups", 1))]


def _conv2d_weight_grad_onnx(b, n, ins):
    """dw[o, c, i, j] = sum over n, p, q of g[n, o, p, q] x[n, c, p*s + i*d, q*s + j*d]: a
    convolution of x (channels and batch swapped) with g as the filter, stride and dilation
    swapped; each group of filters sees the batch of its own channel group."""
    stride, pads, dilation = _window_geometry(n.attrs, "conv2d_weight_grad", dilated=True)
    x, g, w = n.inputs
    groups = n.attrs.get("groups", 1)
    _, in_c, kh, kw = w.shape
    if groups == 1:
        xt = b.op("Transpose", ins[0], perm=[1, 0, 2, 3])                    # [C, N, H, W]
    else:
        split = b.op("Reshape", ins[0], _onnx_dims(b, [(x, ins[0], 0), groups, in_c, (x, ins[0], 2), (x, ins[0], 3)]))
        moved = b.op("Transpose", split, perm=[2, 1, 0, 3, 4])               # [C/G, G, N, H, W]
        xt = b.op("Reshape", moved, _onnx_dims(b, [in_c, -1, (x, ins[0], 2), (x, ins[0], 3)]))
    gt = b.op("Transpose", ins[1], perm=[1, 0, 2, 3])                        # [O, N, Ho, Wo]
    full = b.op("Conv", xt, gt, strides=list(dilation), dilations=list(stride), pads=list(pads), group=groups)
    cut = b.op("Slice", full, b.ints([0, 0]), b.ints([kh, kw]), b.ints([2, 3]))
    return [b.op("Transpose", cut, perm=[1, 0, 2, 3])]


def _pool_onnx_attrs(n, opname):
    kernel = _pair(n.attrs, "kernel", 1)
    stride, pads, _ = _window_geometry(n.attrs, opname, dilated=False)
    return dict(kernel_shape=list(kernel), strides=list(stride), pads=list(pads))


def _max_pool2d_onnx(b, n, ins):
    return [b.op("MaxPool", ins[0], **_pool_onnx_attrs(n, "max_pool2d"))]


def _max_pool_indices(b, n, x: str) -> str:
    """MaxPool's Indices: each window's maximum as a position in the flattened input."""
    return b.op("MaxPool", x, n_outputs=2, **_pool_onnx_attrs(n, n.op))[1]


def _max_pool2d_grad_onnx(b, n, ins):
    x, _ = n.inputs
    flat = b.ints([-1])
    zeros = b.op("Reshape", _onnx_zeros(b, _onnx_shape(b, x, ins[0]), x.dtype), flat)
    where = b.op("Reshape", _max_pool_indices(b, n, ins[0]), flat)
    added = b.op("ScatterElements", zeros, where, b.op("Reshape", ins[1], flat), axis=0, reduction="add")
    return [b.op("Reshape", added, _onnx_shape(b, x, ins[0]))]


def _max_pool2d_select_onnx(b, n, ins):
    return [b.op("Gather", b.op("Reshape", ins[1], b.ints([-1])), _max_pool_indices(b, n, ins[0]), axis=0)]


def _avg_pool2d_onnx(b, n, ins):
    return [b.op("AveragePool", ins[0], count_include_pad=1, **_pool_onnx_attrs(n, "avg_pool2d"))]


def _avg_pool2d_grad_onnx(b, n, ins):
    """Every channel on its own ([N*C, 1, Ho, Wo]) through a transposed convolution with a
    constant 1/(kh*kw) kernel."""
    g, x = n.inputs
    kernel = _pair(n.attrs, "kernel", 1)
    stride, pads, _ = _window_geometry(n.attrs, "avg_pool2d_grad", dilated=False)
    planes = b.op("Reshape", ins[0], _onnx_dims(b, [-1, 1, (g, ins[0], 2), (g, ins[0], 3)]))
    weight = b.const(np.full((1, 1) + kernel, 1.0 / (kernel[0] * kernel[1])), g.dtype)
    one = g.type.with_shape((1, 1) + tuple(g.shape[2:]))
    spread = _transposed_window(b, planes, weight, Value("planes", one), x, ins[1], kernel, stride, pads,
                                (1, 1), 1)
    return [b.op("Reshape", spread, _onnx_shape(b, x, ins[1]))]


_INT64_MAX, _INT64_MIN = 2 ** 63 - 1, -2 ** 63


def _onnx_bounds(spec):
    starts = [(0 if st > 0 else _INT64_MAX) if s is None else s for _, s, _, st in spec]
    ends = [(_INT64_MAX if st > 0 else _INT64_MIN) if e is None else e for _, _, e, st in spec]
    return starts, ends


def _slice_onnx(b, n, ins):
    spec = _slice_spec(n.attrs, n.inputs[0].type.rank)
    starts, ends = _onnx_bounds(spec)
    return [b.op("Slice", ins[0], b.ints(starts), b.ints(ends), b.ints([s[0] for s in spec]),
                 b.ints([s[3] for s in spec]))]


def _slice_grad_onnx(b, n, ins):
    """Zeros with g written into the sliced positions: Pad for unit steps over known sizes, else
    one ScatterElements per sliced axis, each growing that axis from the slice to the whole."""
    g, x = n.inputs
    spec = _slice_spec(n.attrs, x.type.rank)
    if all(isinstance(x.shape[a], int) and step == 1 for a, _, _, step in spec):
        pads = [0] * (2 * x.type.rank)
        for axis, start, end, step in spec:
            first, last, _ = slice(start, end, step).indices(x.shape[axis])
            pads[axis], pads[x.type.rank + axis] = first, x.shape[axis] - last
        return [b.op("Pad", ins[0], b.ints(pads))]
    current, shape = ins[0], list(g.shape)
    starts, ends = _onnx_bounds(spec)
    for (axis, start, end, step), lo, hi in zip(spec, starts, ends):
        size = x.shape[axis]
        if isinstance(size, int):
            where = b.ints(list(range(size))[slice(start, end, step)])
        else:
            whole = b.op("Range", b.const(0, "int64"),
                         b.op("Squeeze", b.op("Shape", ins[1], start=axis, end=axis + 1), b.ints([0])),
                         b.const(1, "int64"))
            where = b.op("Slice", whole, b.ints([lo]), b.ints([hi]), b.ints([0]), b.ints([step]))
        lined = b.op("Reshape", where, b.ints([-1 if i == axis else 1 for i in range(x.type.rank)]))
        now = Value("now", g.type.with_shape(shape))      # stands in for `current`: its sizes
        spread = b.op("Expand", lined, _onnx_shape(b, now, current))
        shape[axis] = size
        parts = [(x, ins[1], i) if i == axis else (now, current, i) for i in range(x.type.rank)]
        zeros = _onnx_zeros(b, _onnx_dims(b, parts), g.dtype)
        current = b.op("ScatterElements", zeros, spread, current, axis=axis)
    return [current]


def _pad_onnx(b, n, ins):
    x = n.inputs[0]
    pads = [p for pair in zip(*_pad_pairs(n.attrs, x.type.rank)) for p in pair]
    return [b.op("Pad", ins[0], b.ints(pads), b.const(n.attrs.get("value", 0), x.dtype), mode="constant")]


def _concat_onnx(b, n, ins):
    return [b.op("Concat", *ins, axis=norm_axis(n.attrs.get("axis", 0), n.out.type.rank))]


def _gather_onnx(b, n, ins):
    return [b.op("Gather", ins[0], ins[1], axis=norm_axis(n.attrs.get("axis", 0), n.inputs[0].type.rank))]


def _scatter_add_onnx(b, n, ins):
    """ScatterND adds g's rows into zeros at the (non-negative) indices; the gathered axis is moved
    to the front for it and back after."""
    g, indices, table = n.inputs
    axis = norm_axis(n.attrs.get("axis", 0), table.type.rank)
    idx = ins[1] if indices.dtype == "int64" else b.op("Cast", ins[1], to=b.dtype("int64"))
    size = table.shape[axis]
    size = b.const(size, "int64") if isinstance(size, int) else \
        b.op("Shape", ins[2], start=axis, end=axis + 1)
    idx = b.op("Where", b.op("Less", idx, b.const(0, "int64")), b.op("Add", idx, size), idx)
    idx = b.op("Unsqueeze", idx, b.ints([-1]))
    updates, ri = ins[0], indices.type.rank
    front = [axis] + [i for i in range(table.type.rank) if i != axis]
    if axis:
        updates = b.op("Transpose", updates, perm=list(range(axis, axis + ri)) + list(range(axis))
                       + list(range(axis + ri, g.type.rank)))
    zeros = _onnx_zeros(b, _onnx_shape(b, table, ins[2], front), g.dtype)
    added = b.op("ScatterND", zeros, idx, updates, reduction="add")
    if axis:
        added = b.op("Transpose", added, perm=[int(i) for i in np.argsort(front)])
    return [added]


for _name, _infer, _vjp, _arity, _lower in [
    ("conv2d", _conv2d_infer, _conv2d_vjp, 2, _conv2d_onnx),
    ("conv2d_input_grad", _conv2d_input_grad_infer, _conv2d_input_grad_vjp, 3, _conv2d_input_grad_onnx),
    ("conv2d_weight_grad", _conv2d_weight_grad_infer, _conv2d_weight_grad_vjp, 3, _conv2d_weight_grad_onnx),
    ("max_pool2d", _pool_infer("max_pool2d"), _max_pool2d_vjp, 1, _max_pool2d_onnx),
    ("max_pool2d_grad", _max_pool2d_grad_infer, _max_pool2d_grad_vjp, 2, _max_pool2d_grad_onnx),
    ("max_pool2d_select", _max_pool2d_select_infer, _max_pool2d_select_vjp, 2, _max_pool2d_select_onnx),
    ("avg_pool2d", _pool_infer("avg_pool2d"), _avg_pool2d_vjp, 1, _avg_pool2d_onnx),
    ("avg_pool2d_grad", _avg_pool2d_grad_infer, _avg_pool2d_grad_vjp, 2, _avg_pool2d_grad_onnx),
    ("slice", _slice_infer, _slice_vjp, 1, _slice_onnx),
    ("slice_grad", _slice_grad_infer, _slice_grad_vjp, 2, _slice_grad_onnx),
    ("pad", _pad_infer, _pad_vjp, 1, _pad_onnx),
    ("concat", _concat_infer, _concat_vjp, None, _concat_onnx),
    ("gather", _gather_infer, _gather_vjp, 2, _gather_onnx),
    ("scatter_add", _scatter_add_infer, _scatter_add_vjp, 3, _scatter_add_onnx),
]:
    defop(_name, _infer, _vjp, arity=_arity).onnx = _lower


# ---------------------------------------------------------------- attention helpers
# What attention layers and positional encodings need beyond the ops above (dsl/stdlib/attention.nn):
# sine and cosine for sinusoidal positions, and `positions(x, axis)`, the indices 0, 1, ... of one
# axis of x (its size may be symbolic, read at run time), from which causal masks and learned
# position tables are built with comparisons and `gather`.
defop("sin", unary("sin"), arity=1,                   # sin' = cos
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("cos", n.inputs[0]))], onnx=onnx_same("Sin"))
defop("cos", unary("cos"), arity=1,                   # cos' = -sin
      vjp=lambda e, n, gs, w: [e("neg", e("mul", gs[0], e("sin", n.inputs[0])))], onnx=onnx_same("Cos"))


def _positions_infer(types, attrs):
    t = types[0]
    _check(t.rank >= 1, "`positions` needs a tensor with at least one axis, got a scalar")
    axis = norm_axis(attrs.get("axis", 0), t.rank)
    return [TensorType("int64", (t.shape[axis],))]


def _positions_onnx(b, node, inputs):
    x = node.inputs[0]
    axis = norm_axis(node.attrs.get("axis", 0), x.type.rank)
    size = x.shape[axis]
    if isinstance(size, int):
        return [b.const(np.arange(size, dtype=np.int64))]
    count = b.op("Squeeze", b.op("Shape", inputs[0], start=axis, end=axis + 1), b.ints([0]))
    return [b.op("Range", b.const(0, "int64"), count, b.const(1, "int64"))]


defop("positions", _positions_infer, arity=1, onnx=_positions_onnx)   # 0, 1, ..., size - 1 of one axis: int64


# ---------------------------------------------------------------- fused ops
# Made only by the fusion passes (nngraph/passes/fusion.py), never written in .nn files: each is
# one kernel call at run time and keeps a symbolic gradient, so a fused graph can still be
# differentiated, printed and exported.

def _gemm_infer(types, attrs):
    a, b, c = types
    product, = _matmul_infer([a, b], attrs)
    _same_dtype([product, c], "gemm")
    return [product.with_shape(broadcast_shapes(product.shape, c.shape))]


def _gemm_vjp(e, n, gs, w):
    a, b, c = n.inputs
    return [e.sum_to(e("matmul", gs[0], _swap_last(e, b)), a) if w[0] else None,
            e.sum_to(e("matmul", _swap_last(e, a), gs[0]), b) if w[1] else None,
            e.sum_to(gs[0], c) if w[2] else None]


def _gemm_onnx(b, node, inputs):
    a, w, c = node.inputs
    product_shape = _matmul_infer([a.type, w.type], {})[0].shape
    if a.type.rank == w.type.rank == 2 and broadcast_shapes(product_shape, c.shape) == product_shape:
        return [b.op("Gemm", *inputs)]          # ONNX Gemm: C broadcasts to A @ B
    return [b.op("Add", b.op("MatMul", inputs[0], inputs[1]), inputs[2])]


defop("gemm", _gemm_infer, _gemm_vjp, arity=3).onnx = _gemm_onnx    # a @ b + c


def _softmax_cross_entropy_infer(types, attrs):
    logits, target = types
    _float_only(logits, "softmax_cross_entropy")
    _same_dtype(types, "softmax_cross_entropy")
    _check(logits.shape == target.shape, f"`softmax_cross_entropy` needs logits and target of one shape, got "
                                         f"{fmt_shape(logits.shape)} and {fmt_shape(target.shape)}")
    axis = norm_axis(attrs.get("axis", -1), logits.rank)
    return [logits.with_shape(d for i, d in enumerate(logits.shape) if i != axis), logits]


def _is_zero(value: Value) -> bool:
    node = value.node
    return node is not None and node.op == "constant" and not np.any(node.attrs["value"])


def _softmax_cross_entropy_vjp(e, n, gs, w):
    """Outputs: loss = -sum(t * log_softmax(z)) and p = softmax(z), which the gradient reuses.
    dz = g * (p * sum(t) - t) and dt = -g * log_softmax(z); for a distribution t (sum 1) dz is
    the familiar p - t, with no division anywhere."""
    z, t = n.inputs
    probs = n.outputs[1]
    axis = n.attrs.get("axis", -1)
    g = e("expand_dims", gs[0], axes=(norm_axis(axis, z.type.rank),))
    dz = dt = None
    if w[0]:
        mass = e("sum", t, axes=(axis,), keepdims=True)
        dz = e("mul", g, e("sub", e("mul", probs, mass), t))
        if not _is_zero(gs[1]):        # the probabilities are read too: add softmax's own VJP
            dot = e("sum", e("mul", gs[1], probs), axes=(axis,), keepdims=True)
            dz = e("add", dz, e("mul", probs, e("sub", gs[1], dot)))
    if w[1]:
        dt = e("mul", e("neg", g), e("log_softmax", z, axis=axis))
    return [dz, dt]


def _softmax_cross_entropy_onnx(b, node, inputs):
    # ONNX's SoftmaxCrossEntropyLoss takes class indices only; this op takes distributions
    axis = node.attrs.get("axis", -1)
    log_probs = b.op("LogSoftmax", inputs[0], axis=axis)
    loss = b.op("Neg", b.op("ReduceSum", b.op("Mul", inputs[1], log_probs), b.ints([axis]), keepdims=0))
    return [loss, b.op("Exp", log_probs)]


defop("softmax_cross_entropy", _softmax_cross_entropy_infer, _softmax_cross_entropy_vjp,
      arity=2).onnx = _softmax_cross_entropy_onnx

# The ops an elementwise fusion may combine: same-position inputs to output, with broadcasting.
ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "sign", "relu", "sigmoid", "tanh",
    "softplus", "less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "where", "cast"})


@dataclass(frozen=True)
class Expr:
    """The body of a `fused` node: a tree of elementwise ops whose leaves are input indices.
    It prints as the formula it computes, e.g. ``mul($0, sigmoid($1))``."""
    op: str
    args: tuple                  # Expr | int (the index of one of the fused node's inputs)
    attrs: tuple = ()            # sorted (name, value) pairs

    def __repr__(self) -> str:
        parts = [f"${a}" if isinstance(a, int) else repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.attrs]
        return f"{self.op}({', '.join(parts)})"

    def infer(self, types: list[TensorType]) -> TensorType:
        arg_types = [types[a] if isinstance(a, int) else a.infer(types) for a in self.args]
        return OPS[self.op].infer(arg_types, dict(self.attrs))[0]

    def emit(self, e: Emitter, inputs: list[Value], made: list | None = None) -> Value:
        """Build the tree as ordinary nodes (`made` collects them, innermost first)."""
        args = [inputs[a] if isinstance(a, int) else a.emit(e, inputs, made) for a in self.args]
        out = e(self.op, *args, **dict(self.attrs))
        if made is not None:
            made.append(out.node)
        return out


def _fused_vjp(e, n, gs, w):
    """Rebuild the fused tree from primitive ops and run each one's own VJP backwards through it."""
    made: list = []
    out = n.attrs["expr"].emit(e, n.inputs, made)
    grads = {out.uid: gs[0]}
    needed = {v.uid for v, want in zip(n.inputs, w) if want} | {m.out.uid for m in made}
    for node in reversed(made):
        g = grads.get(node.out.uid)
        if g is None or OPS[node.op].vjp is None:
            continue
        wants = [v.uid in needed for v in node.inputs]
        for value, contribution in zip(node.inputs, OPS[node.op].vjp(e, node, [g], wants)):
            if contribution is not None:
                earlier = grads.get(value.uid)
                grads[value.uid] = contribution if earlier is None else e("add", earlier, contribution)
    return [grads.get(v.uid) if want else None for v, want in zip(n.inputs, w)]


def _fused_onnx(b, node, inputs):
    """The formula's ops one by one, each with its own lowering, under the fused node's name."""
    def lower(expr: Expr) -> tuple[str, Value]:
        args = [(inputs[a], node.inputs[a]) if isinstance(a, int) else lower(a) for a in expr.args]
        part = Node(expr.op, [v for _, v in args], dict(expr.attrs), span=node.span, scope=node.scope,
                    role=node.role)
        out_type = OPS[expr.op].infer([v.type for _, v in args], dict(expr.attrs))[0]
        part.outputs = [Value(f"{node.out.name}.part", out_type, part)]
        return b.lower(part, [name for name, _ in args])[0], part.outputs[0]
    return [lower(node.attrs["expr"])[0]]


defop("fused", lambda types, attrs: [attrs["expr"].infer(types)], _fused_vjp).onnx = _fused_onnx


def differentiable(opname: str) -> bool:
    return OPS[opname].vjp is not None
