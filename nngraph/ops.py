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

from nngraph.ir import Dim, Graph, TensorType, Value


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


def defop(name: str, infer, vjp=None, arity: int | None = None) -> OpDef:
    assert name not in OPS, f"op {name} defined twice"
    OPS[name] = opdef = OpDef(name, infer, vjp, arity=arity)
    return opdef


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
      vjp=lambda e, n, gs, w: [e.sum_to(gs[0], x) if want else None for x, want in zip(n.inputs, w)])

defop("sub", elementwise("sub", float_only=False), arity=2,
      vjp=lambda e, n, gs, w: [e.sum_to(gs[0], n.inputs[0]) if w[0] else None,
                               e.sum_to(e("neg", gs[0]), n.inputs[1]) if w[1] else None])


def _mul_vjp(e, n, gs, w):
    a, b = n.inputs
    return [e.sum_to(e("mul", gs[0], b), a) if w[0] else None,
            e.sum_to(e("mul", gs[0], a), b) if w[1] else None]


defop("mul", elementwise("mul", float_only=False), _mul_vjp, arity=2)


def _div_vjp(e, n, gs, w):
    a, b = n.inputs
    da = e.sum_to(e("div", gs[0], b), a) if w[0] else None
    db = e.sum_to(e("neg", e("div", e("mul", gs[0], n.out), b)), b) if w[1] else None
    return [da, db]


defop("div", elementwise("div"), _div_vjp, arity=2)


def _pow_vjp(e, n, gs, w):
    a, b = n.inputs
    da = db = None
    if w[0]:   # b * a ** (b - 1)
        da = e.sum_to(e("mul", gs[0], e("mul", b, e("pow", a, e("sub", b, e.const(1, b))))), a)
    if w[1]:   # a ** b * log(a)
        db = e.sum_to(e("mul", gs[0], e("mul", n.out, e("log", a))), b)
    return [da, db]


defop("pow", elementwise("pow"), _pow_vjp, arity=2)

defop("neg", unary("neg", float_only=False), arity=1, vjp=lambda e, n, gs, w: [e("neg", gs[0])])
defop("exp", unary("exp"), arity=1, vjp=lambda e, n, gs, w: [e("mul", gs[0], n.out)])
defop("log", unary("log"), arity=1, vjp=lambda e, n, gs, w: [e("div", gs[0], n.inputs[0])])
defop("sqrt", unary("sqrt"), arity=1,
      vjp=lambda e, n, gs, w: [e("div", gs[0], e("mul", e.const(2, n.out), n.out))])
defop("abs", unary("abs", float_only=False), arity=1,
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sign", n.inputs[0]))])
defop("sign", unary("sign", float_only=False), arity=1)

# ---------------------------------------------------------------- activations
defop("relu", unary("relu"), arity=1,
      vjp=lambda e, n, gs, w: [e("where", e("greater", n.inputs[0], e.const(0, n.inputs[0])),
                                 gs[0], e.const(0, gs[0]))])
defop("sigmoid", unary("sigmoid"), arity=1,   # s' = s (1 - s)
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("mul", n.out, e("sub", e.const(1, n.out), n.out)))])
defop("tanh", unary("tanh"), arity=1,         # tanh' = 1 - tanh^2
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sub", e.const(1, n.out), e("mul", n.out, n.out)))])
defop("softplus", unary("softplus"), arity=1,  # softplus' = sigmoid
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sigmoid", n.inputs[0]))])


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


defop("softmax", _axis_rule("softmax"), _softmax_vjp, arity=1)
defop("log_softmax", _axis_rule("log_softmax"), _log_softmax_vjp, arity=1)

# ---------------------------------------------------------------- comparisons and selection
for _name in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal"):
    defop(_name, comparison(_name), arity=2)


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


defop("where", _where_infer, _where_vjp, arity=3)


def _cast_infer(types, attrs):
    return [types[0].with_dtype(attrs["dtype"])]


defop("cast", _cast_infer, arity=1,
      vjp=lambda e, n, gs, w: [e("cast", gs[0], dtype=n.inputs[0].dtype) if n.inputs[0].type.is_float else None])


def _argmax_infer(types, attrs):
    t = types[0]
    axis = norm_axis(attrs.get("axis", -1), t.rank)
    shape = [1 if i == axis else d for i, d in enumerate(t.shape)] if attrs.get("keepdims", False) else \
            [d for i, d in enumerate(t.shape) if i != axis]
    return [TensorType("int64", tuple(shape))]


defop("argmax", _argmax_infer, arity=1)


def _one_hot_infer(types, attrs):
    t = types[0]
    _check(t.dtype in ("int32", "int64"), f"`one_hot` needs integer class indices, got {t.dtype}")
    return [TensorType(attrs.get("dtype", "float32"), t.shape + (attrs["depth"],))]


defop("one_hot", _one_hot_infer, arity=1)


def _fill_infer(types, attrs):
    """`dims` holds ints and (input index, axis) pairs: a size read from an input at run time,
    which is how a symbolic size such as the batch reaches a tensor of zeros."""
    shape = [d if isinstance(d, int) else types[d[0]].shape[d[1]] for d in attrs["dims"]]
    return [TensorType(attrs.get("dtype", "float32"), tuple(shape))]


defop("fill", _fill_infer)      # a tensor of one value whose shape may take sizes from its inputs


def _constant_infer(types, attrs):
    value = attrs["value"]
    return [TensorType(str(value.dtype), tuple(value.shape))]


defop("constant", _constant_infer, arity=0)

# ---------------------------------------------------------------- reductions
defop("sum", reduction("sum"), arity=1, vjp=lambda e, n, gs, w: [restore_reduced(e, gs[0], n)])


def _mean_vjp(e, n, gs, w):
    count = e("dim_size", n.inputs[0], axes=keepdims_axes(n), dtype=gs[0].dtype)
    return [restore_reduced(e, e("div", gs[0], count), n)]


defop("mean", reduction("mean"), _mean_vjp, arity=1)


def _max_vjp(e, n, gs, w):
    """The gradient goes to the maxima, shared equally between ties."""
    x = n.inputs[0]
    peak = restore_reduced(e, n.out, n)
    hits = e("cast", e("equal", x, peak), dtype=x.dtype)
    share = e("div", hits, e("sum", hits, axes=keepdims_axes(n), keepdims=True))
    return [e("mul", share, restore_reduced(e, gs[0], n))]


defop("max", reduction("max"), _max_vjp, arity=1)


def _dim_size_infer(types, attrs):
    return [TensorType(attrs.get("dtype", "float32"), ())]


defop("dim_size", _dim_size_infer, arity=1)   # product of the sizes of some axes, as a scalar

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


defop("matmul", _matmul_infer, _matmul_vjp, arity=2)


def _transpose_infer(types, attrs):
    t = types[0]
    perm = attrs.get("perm") or tuple(reversed(range(t.rank)))
    _check(sorted(perm) == list(range(t.rank)), f"{tuple(perm)} is not a permutation of the {t.rank} axes")
    return [t.with_shape(tuple(t.shape[p] for p in perm))]


def _transpose_vjp(e, n, gs, w):
    perm = n.attrs.get("perm") or tuple(reversed(range(n.inputs[0].type.rank)))
    return [e("transpose", gs[0], perm=tuple(int(i) for i in np.argsort(perm)))]


defop("transpose", _transpose_infer, _transpose_vjp, arity=1)


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


defop("reshape", _reshape_infer, arity=1, vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0])])
defop("reshape_like", lambda types, attrs: [types[0].with_shape(types[1].shape)], arity=2,
      vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0]) if w[0] else None, None])
defop("broadcast_like", lambda types, attrs: [types[0].with_shape(broadcast_shapes(types[0].shape, types[1].shape))],
      arity=2, vjp=lambda e, n, gs, w: [e.sum_to(gs[0], n.inputs[0]) if w[0] else None, None])


def _expand_dims_infer(types, attrs):
    t = types[0]
    rank = t.rank + len(attrs["axes"])
    axes = norm_axes(attrs["axes"], rank)
    it = iter(t.shape)
    return [t.with_shape([1 if i in axes else next(it) for i in range(rank)])]


defop("expand_dims", _expand_dims_infer, arity=1,
      vjp=lambda e, n, gs, w: [e("reshape_like", gs[0], n.inputs[0])])


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


defop("scan", _scan_infer, _scan_vjp)


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


defop("gemm", _gemm_infer, _gemm_vjp, arity=3)    # a @ b + c


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


defop("softmax_cross_entropy", _softmax_cross_entropy_infer, _softmax_cross_entropy_vjp, arity=2)

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


defop("fused", lambda types, attrs: [attrs["expr"].infer(types)], _fused_vjp)


def differentiable(opname: str) -> bool:
    return OPS[opname].vjp is not None
