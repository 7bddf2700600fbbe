"""Elementwise ONNX ops: arithmetic, activations (built from nngraph's primitives where it has
no such op), logic and comparison, Where, and types (Cast, CastLike, Identity, Dropout)."""
from __future__ import annotations

from nngraph.ir import Value, dims
from nngraph.onnx.context import Ctx, Reject
from nngraph.onnx.handlers.common import (
    clamp,
    entries_equal,
    entries_where,
    float_input,
    legacy_broadcast,
    need_float,
    same_dtype,
    target_dtype,
    track_arithmetic,
)
from nngraph.onnx.handlers.registry import HANDLERS, handles


# ---------------------------------------------------------------- elementwise arithmetic
def _binary(nn_op: str):
    def handler(cx: Ctx) -> Value:
        legacy_broadcast(cx)
        a, b = cx.x(0), cx.x(1)
        same_dtype(cx, a, b)
        if a.dtype == "bool":
            raise Reject("dtype bool")
        return track_arithmetic(cx, cx.op(nn_op, a, b), _SIZE_ARITHMETIC[nn_op])
    return handler


def _sizes(combine):
    """Arithmetic on two shape entries (ints, symbolic dims); None for a negative literal (-1 in a
    reshape's shape is not a size)."""
    return lambda x, y: None if any(isinstance(d, int) and d < 0 for d in (x, y)) else combine(x, y)


_SIZE_ARITHMETIC = {"add": _sizes(dims.add), "sub": _sizes(lambda x, y: dims.add(x, dims.mul(-1, y))),
                    "mul": _sizes(dims.mul),
                    "div": _sizes(lambda x, y: dims.floordiv(x, y) if isinstance(y, int) and y > 0 else None)}
HANDLERS["Add"], HANDLERS["Sub"], HANDLERS["Mul"] = _binary("add"), _binary("sub"), _binary("mul")


@handles("Div")
def _div(cx: Ctx) -> Value:
    legacy_broadcast(cx)
    a, b = cx.x(0), cx.x(1)
    same_dtype(cx, a, b)
    if a.type.is_float:
        return cx.op("div", a, b)
    if a.dtype == "bool":
        raise Reject("dtype bool")
    # integer division truncates toward zero; float64 holds int32 exactly, int64 up to 2**53,
    # and casting back to int truncates toward zero too
    q = cx.op("div", cx.op("cast", a, dtype="float64"), cx.op("cast", b, dtype="float64"))
    return track_arithmetic(cx, cx.op("cast", q, dtype=a.dtype), _SIZE_ARITHMETIC["div"])


@handles("Mod")
def _mod(cx: Ctx) -> Value:
    a, b = cx.x(0), cx.x(1)
    same_dtype(cx, a, b)
    if a.dtype == "bool":
        raise Reject("dtype bool")
    return cx.op("mod", a, b, fmod=bool(cx.attr("fmod", 0)))


@handles("Pow")
def _pow(cx: Ctx) -> Value:
    legacy_broadcast(cx)
    base, exponent = cx.x(0), cx.x(1)
    if "bool" in (base.dtype, exponent.dtype):
        raise Reject("dtype bool")
    if base.type.is_float:    # the exponent may be of another type (opset 12+): the result has base's
        if exponent.dtype != base.dtype:
            exponent = cx.op("cast", exponent, dtype=base.dtype)
        return cx.op("pow", base, exponent)
    # integer base: compute in float64 (exact for results below 2**53) and truncate back
    out = cx.op("pow", cx.op("cast", base, dtype="float64"), cx.op("cast", exponent, dtype="float64"))
    return cx.op("cast", out, dtype=base.dtype)


def _unary(nn_op: str, float_only: bool):
    def handler(cx: Ctx) -> Value:
        cx.ignore("consumed_inputs")
        x = cx.x(0)
        if float_only:
            need_float(cx, x)
        elif x.dtype == "bool":
            raise Reject("dtype bool")
        return cx.op(nn_op, x)
    return handler


for _onnx, _nn, _float in [("Neg", "neg", False), ("Abs", "abs", False), ("Sign", "sign", False),
                           ("Exp", "exp", True), ("Log", "log", True), ("Sqrt", "sqrt", True),
                           ("Sigmoid", "sigmoid", True), ("Tanh", "tanh", True), ("Softplus", "softplus", True),
                           ("Sin", "sin", True), ("Cos", "cos", True), ("Erf", "erf", True)]:
    HANDLERS[_onnx] = _unary(_nn, _float)


@handles("Relu")
def _relu(cx: Ctx) -> Value:
    cx.ignore("consumed_inputs")
    x = cx.x(0)
    if x.type.is_float:
        return cx.op("relu", x)
    if x.dtype == "bool":
        raise Reject("dtype bool")
    return cx.op("where", cx.op("greater", x, cx.like(0, x)), x, cx.like(0, x))   # integer relu (opset 14)


@handles("Reciprocal")
def _reciprocal(cx: Ctx) -> Value:
    cx.ignore("consumed_inputs")
    x = cx.x(0)
    need_float(cx, x)
    return cx.op("div", cx.like(1, x), x)


# ---------------------------------------------------------------- activations built from primitives
@handles("LeakyRelu")
def _leaky_relu(cx: Ctx) -> Value:
    x = float_input(cx)
    alpha = cx.attr("alpha", 0.01)
    return cx.op("where", cx.op("less", x, cx.like(0, x)), cx.op("mul", x, cx.like(alpha, x)), x)


@handles("Elu")
def _elu(cx: Ctx) -> Value:
    x = float_input(cx)
    alpha = cx.attr("alpha", 1.0)
    negative = cx.op("mul", cx.like(alpha, x), cx.op("sub", cx.op("exp", x), cx.like(1, x)))
    return cx.op("where", cx.op("less", x, cx.like(0, x)), negative, x)


@handles("Selu")
def _selu(cx: Ctx) -> Value:
    x = float_input(cx)
    alpha, gamma = cx.attr("alpha", 1.67326319217681884765625), cx.attr("gamma", 1.05070102214813232421875)
    negative = cx.op("sub", cx.op("mul", cx.like(alpha, x), cx.op("exp", x)), cx.like(alpha, x))
    inner = cx.op("where", cx.op("less_equal", x, cx.like(0, x)), negative, x)
    return cx.op("mul", cx.like(gamma, x), inner)


@handles("Celu")
def _celu(cx: Ctx) -> Value:
    x = float_input(cx)
    alpha = cx.attr("alpha", 1.0)
    negative = cx.op("mul", cx.like(alpha, x),
                     cx.op("sub", cx.op("exp", cx.op("div", x, cx.like(alpha, x))), cx.like(1, x)))
    return cx.op("where", cx.op("greater", x, cx.like(0, x)), x, negative)


@handles("ThresholdedRelu")
def _thresholded_relu(cx: Ctx) -> Value:
    x = float_input(cx)
    return cx.op("where", cx.op("greater", x, cx.like(cx.attr("alpha", 1.0), x)), x, cx.like(0, x))


def _hard_sigmoid(cx: Ctx, x: Value, alpha: float, beta: float) -> Value:
    y = cx.op("add", cx.op("mul", x, cx.like(alpha, x)), cx.like(beta, x))
    return clamp(cx, y, cx.like(0, x), cx.like(1, x))


@handles("HardSigmoid")
def _hard_sigmoid_op(cx: Ctx) -> Value:
    x = float_input(cx)
    return _hard_sigmoid(cx, x, cx.attr("alpha", 0.2), cx.attr("beta", 0.5))


@handles("HardSwish")
def _hard_swish(cx: Ctx) -> Value:
    x = float_input(cx)
    return cx.op("mul", x, _hard_sigmoid(cx, x, 1 / 6, 0.5))


@handles("Softsign")
def _softsign(cx: Ctx) -> Value:
    x = float_input(cx)
    return cx.op("div", x, cx.op("add", cx.like(1, x), cx.op("abs", x)))


@handles("Mish")
def _mish(cx: Ctx) -> Value:
    x = float_input(cx)
    return cx.op("mul", x, cx.op("tanh", cx.op("softplus", x)))


@handles("Swish")
def _swish(cx: Ctx) -> Value:
    x = float_input(cx)
    alpha = cx.attr("alpha", 1.0)
    scaled = x if alpha == 1.0 else cx.op("mul", x, cx.like(alpha, x))
    return cx.op("mul", x, cx.op("sigmoid", scaled))


@handles("Gelu")
def _gelu(cx: Ctx) -> Value:
    x = float_input(cx)
    approximate = cx.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise Reject(f"Gelu approximate={approximate!r}")
    return cx.op("gelu", x, approximate=approximate)


@handles("PRelu")
def _prelu(cx: Ctx) -> Value:
    x, slope = float_input(cx), cx.x(1)
    same_dtype(cx, x, slope)
    return cx.op("where", cx.op("less", x, cx.like(0, x)), cx.op("mul", x, slope), x)


@handles("Shrink")
def _shrink(cx: Ctx) -> Value:
    x = float_input(cx)
    bias, lambd = cx.attr("bias", 0.0), cx.attr("lambd", 0.5)
    high = cx.op("where", cx.op("greater", x, cx.like(lambd, x)), cx.op("sub", x, cx.like(bias, x)), cx.like(0, x))
    return cx.op("where", cx.op("less", x, cx.like(-lambd, x)), cx.op("add", x, cx.like(bias, x)), high)


@handles("Clip")
def _clip(cx: Ctx) -> Value:
    x = cx.x(0)
    if x.dtype == "bool":
        raise Reject("dtype bool")
    if cx.opset < 11:      # bounds were attributes, defaulting to the float range
        low = cx.attr("min", None)
        high = cx.attr("max", None)
        return clamp(cx, x, None if low is None else cx.like(low, x), None if high is None else cx.like(high, x))
    low, high = (cx.x(1) if cx.has(1) else None), (cx.x(2) if cx.has(2) else None)
    for bound in (low, high):
        if bound is not None:
            same_dtype(cx, x, bound)
    return clamp(cx, x, low, high)


@handles("Max", "Min")
def _max_min(cx: Ctx) -> Value:
    """Variadic elementwise max/min with broadcasting, as a chain of where."""
    cx.ignore("consumed_inputs")
    values = cx.inputs()
    if not values:
        raise Reject("no inputs")
    compare = "greater" if cx.node.op_type == "Max" else "less"
    out = values[0]
    for v in values[1:]:
        same_dtype(cx, out, v)
        if v.dtype == "bool":
            raise Reject("dtype bool")
        out = cx.op("where", cx.op(compare, v, out), v, out)
    return out


@handles("Sum", "Mean")
def _sum_mean(cx: Ctx) -> Value:
    cx.ignore("consumed_inputs")
    values = cx.inputs()
    out = values[0]
    for v in values[1:]:
        same_dtype(cx, out, v)
        out = cx.op("add", out, v)
    if cx.node.op_type == "Mean":
        need_float(cx, out)
        out = cx.op("div", out, cx.like(len(values), out))
    return out


# ---------------------------------------------------------------- logic and comparison
def _comparison(nn_op: str):
    def handler(cx: Ctx) -> Value:
        legacy_broadcast(cx)
        a, b = cx.x(0), cx.x(1)
        same_dtype(cx, a, b)
        known = entries_equal(cx) if nn_op == "equal" else None
        return cx.const(known, "bool") if known is not None else cx.op(nn_op, a, b)
    return handler


for _onnx, _nn in [("Less", "less"), ("LessOrEqual", "less_equal"), ("Greater", "greater"),
                   ("GreaterOrEqual", "greater_equal"), ("Equal", "equal")]:
    HANDLERS[_onnx] = _comparison(_nn)


def _bools(cx: Ctx) -> list[Value]:
    legacy_broadcast(cx)
    values = cx.inputs()
    if any(v.dtype != "bool" for v in values):
        raise Reject(f"dtype {next(v.dtype for v in values if v.dtype != 'bool')}")
    return values


@handles("Not")
def _not(cx: Ctx) -> Value:
    x, = _bools(cx)
    return cx.op("equal", x, cx.like(False, x))


@handles("And")
def _and(cx: Ctx) -> Value:
    a, b = _bools(cx)
    return cx.op("where", a, b, cx.like(False, a))


@handles("Or")
def _or(cx: Ctx) -> Value:
    a, b = _bools(cx)
    return cx.op("where", a, cx.like(True, a), b)


@handles("Xor")
def _xor(cx: Ctx) -> Value:
    a, b = _bools(cx)
    return cx.op("not_equal", a, b)


@handles("Where")
def _where(cx: Ctx) -> Value:
    cond, a, b = cx.x(0), cx.x(1), cx.x(2)
    same_dtype(cx, a, b)
    return entries_where(cx) or cx.op("where", cond, a, b)


# ---------------------------------------------------------------- types
@handles("Cast")
def _cast(cx: Ctx) -> Value:
    cx.ignore("saturate", "round_mode")     # both concern float8/float4 targets only, rejected below
    dtype = target_dtype(cx.attr("to"))
    x = cx.x(0)
    return x if x.dtype == dtype else cx.carry_dims(x, cx.op("cast", x, dtype=dtype))


@handles("CastLike")
def _cast_like(cx: Ctx) -> Value:
    cx.ignore("saturate", "round_mode")
    x, like = cx.x(0), cx.x(1)
    return x if x.dtype == like.dtype else cx.op("cast", x, dtype=like.dtype)


@handles("Identity")
def _identity(cx: Ctx) -> Value:
    return cx.x(0)


@handles("Dropout")
def _dropout(cx: Ctx) -> list[Value]:
    """Inference: the identity (and an all-true mask). Training-mode dropout is random: rejected."""
    x = cx.x(0)
    cx.ignore("seed", "consumed_inputs")
    if cx.opset < 7 and cx.attr("is_test", 0) == 0:
        raise Reject("training-mode dropout")
    cx.ignore("ratio")       # opset < 12: only matters in training mode
    training = bool(cx.static(2, "training_mode").reshape(-1)[0]) if cx.has(2) else False
    ratio = float(cx.static(1, "ratio").reshape(-1)[0]) if training and cx.has(1) else 0.5
    if training and ratio != 0:
        raise Reject("training-mode dropout")
    mask = cx.op("broadcast_like", cx.const(True, "bool"), x)
    return [x, mask] if len([o for o in cx.node.output if o]) > 1 else [x]
