"""Elementwise ops: arithmetic, activations, sine and cosine, comparisons, selection and casts."""
from __future__ import annotations

from nngraph.ir.registry import defop
from nngraph.ir.types import TensorType
from nngraph.ops.rules import broadcast_shapes, comparison, elementwise, require, same_dtype, unary

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


def _mod_vjp(e, n, gs, w):
    """mod(a, b) = a - b * q with q = floor(a / b) (or trunc, fmod=1), piecewise constant: the
    derivative in a is 1 and in b is -q, written (mod(a, b) - a) / b so no rounding op is needed."""
    a, b = n.inputs
    da = e.sum_to(gs[0], a) if w[0] else None
    db = e.sum_to(e("mul", gs[0], e("div", e("sub", n.out, a), b)), b) if w[1] else None
    return [da, db]


# mod(a, b; fmod): ONNX Mod. fmod=False takes the sign of the divisor (Python's %), fmod=True the
# sign of the dividend (C's fmod); ints and floats alike.
defop("mod", elementwise("mod", float_only=False), _mod_vjp, arity=2)

defop("neg", unary("neg", float_only=False), arity=1, vjp=lambda e, n, gs, w: [e("neg", gs[0])])
defop("exp", unary("exp"), arity=1, vjp=lambda e, n, gs, w: [e("mul", gs[0], n.out)])
defop("log", unary("log"), arity=1, vjp=lambda e, n, gs, w: [e("div", gs[0], n.inputs[0])])
defop("sqrt", unary("sqrt"), arity=1,
      vjp=lambda e, n, gs, w: [e("div", gs[0], e("mul", e.const(2, n.out), n.out))])
defop("abs", unary("abs", float_only=False), arity=1,
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sign", n.inputs[0]))])
defop("sign", unary("sign", float_only=False), arity=1)

# ---------------------------------------------------------------- activations
# relu's gradient reads its output (relu(x) > 0 exactly where x > 0), which the next layer keeps
# anyway, so the pre-activation dies at the relu (a training step's memory: PyTorch does the same)
defop("relu", unary("relu"), arity=1,
      vjp=lambda e, n, gs, w: [e("where", e("greater", n.out, e.const(0, n.out)), gs[0], e.const(0, gs[0]))])
defop("sigmoid", unary("sigmoid"), arity=1,   # s' = s (1 - s)
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("mul", n.out, e("sub", e.const(1, n.out), n.out)))])
defop("tanh", unary("tanh"), arity=1,         # tanh' = 1 - tanh^2
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sub", e.const(1, n.out), e("mul", n.out, n.out)))])
defop("softplus", unary("softplus"), arity=1,  # softplus' = sigmoid
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("sigmoid", n.inputs[0]))])

# ---------------------------------------------------------------- comparisons and selection
for _name in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal"):
    defop(_name, comparison(_name), arity=2)


def _where_infer(types, attrs):
    cond, a, b = types
    require(cond.dtype == "bool", f"the condition of `where` must be bool, got {cond.dtype}")
    dtype = same_dtype([a, b], "where")
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


# ---------------------------------------------------------------- attention helpers
# What attention layers and positional encodings need beyond the ops above (dsl/stdlib/attention.nn):
# sine and cosine for sinusoidal positions, and `positions(x, axis)`, the indices 0, 1, ... of one
# axis of x (its size may be symbolic, read at run time), from which causal masks and learned
# position tables are built with comparisons and `gather`.
defop("sin", unary("sin"), arity=1,                   # sin' = cos
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("cos", n.inputs[0]))])
defop("cos", unary("cos"), arity=1,                   # cos' = -sin
      vjp=lambda e, n, gs, w: [e("neg", e("mul", gs[0], e("sin", n.inputs[0])))])


# The error function, for the exact GELU (nngraph/ops/fused.py) and ONNX `Erf`: erf' = 2/sqrt(pi) exp(-x^2).
defop("erf", unary("erf"), arity=1,
      vjp=lambda e, n, gs, w: [e("mul", gs[0], e("mul", e.const(1.1283791670955126, n.inputs[0]),
                                                   e("exp", e("neg", e("mul", n.inputs[0], n.inputs[0])))))])
