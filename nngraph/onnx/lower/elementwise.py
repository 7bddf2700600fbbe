"""ONNX lowerings of the elementwise ops (nngraph/ops/elementwise.py)."""
from __future__ import annotations

from nngraph.onnx.lower.registry import LOWERINGS, same


def exp_minus_abs(b, x):
    """exp(-|x|) in (0, 1]: never overflows, the shared start of sigmoid and softplus."""
    return b.op("Exp", b.op("Neg", b.op("Abs", x)))


def _sigmoid_onnx(b, node, inputs):
    # Not ONNX Sigmoid: onnxruntime's is off by 2e-4 (relative) at x = -10 and returns 0 below
    # about -17. With e = exp(-|x|): 1 / (1 + e) for x >= 0 and e / (1 + e) below, exact like the
    # NumPy kernel in every runtime.
    x = inputs[0]
    e = exp_minus_abs(b, x)
    one = b.const(1, node.out.dtype)
    above = b.op("GreaterOrEqual", x, b.const(0, node.out.dtype))
    return [b.op("Div", b.op("Where", above, one, e), b.op("Add", one, e))]


def _softplus_onnx(b, node, inputs):
    # relu(x) + log1p(exp(-|x|)): finite for any x, where log(1 + exp(x)) overflows. ONNX has no
    # Log1p, and log(1 + u) is 0 once 1 + u rounds to 1 (u < 6e-8 in float32), losing softplus(x) ~
    # exp(x) for x below -17; log1p(u) = u * log(w) / (w - 1) with w = 1 + u is exact (Goldberg
    # 1991, Theorem 4), and u itself where w rounds to 1.
    x = inputs[0]
    u = exp_minus_abs(b, x)
    w = b.op("Add", b.const(1, node.out.dtype), u)
    w_minus_1 = b.op("Sub", w, b.const(1, node.out.dtype))
    rounded = b.op("Equal", w_minus_1, b.const(0, node.out.dtype))
    log1p = b.op("Where", rounded, u, b.op("Div", b.op("Mul", u, b.op("Log", w)), w_minus_1))
    return [b.op("Add", b.op("Relu", x), log1p)]


def _mod_onnx(b, node, inputs):
    """ONNX Mod with fmod=0 takes ints only: for floats, C's fmod shifted by the divisor where the
    remainder's sign differs from the divisor's, which is how NumPy computes np.mod."""
    fmod = bool(node.attrs.get("fmod", False))
    if fmod or not node.out.type.is_float:
        return [b.op("Mod", *inputs, fmod=int(fmod))]
    r = b.op("Mod", *inputs, fmod=1)
    zero = b.const(0, node.out.dtype)
    signs_differ = b.op("Xor", b.op("Less", r, zero), b.op("Less", inputs[1], zero))
    shift = b.op("And", b.op("Not", b.op("Equal", r, zero)), signs_differ)
    return [b.op("Where", shift, b.op("Add", r, inputs[1]), r)]


def _cast_onnx(b, node, inputs):
    return [b.op("Cast", inputs[0], to=b.dtype(node.attrs["dtype"]))]


LOWERINGS.update({
    "add": same("Add"),
    "sub": same("Sub"),
    "mul": same("Mul"),
    "div": same("Div"),
    "pow": same("Pow"),
    "mod": _mod_onnx,
    "neg": same("Neg"),
    "exp": same("Exp"),
    "log": same("Log"),
    "sqrt": same("Sqrt"),
    "abs": same("Abs"),
    "sign": same("Sign"),
    "relu": same("Relu"),
    "sigmoid": _sigmoid_onnx,
    "tanh": same("Tanh"),
    "softplus": _softplus_onnx,
    "where": same("Where"),
    "cast": _cast_onnx,
    "sin": same("Sin"),
    "cos": same("Cos"),
    "erf": same("Erf"),
    "less": same("Less"),
    "less_equal": same("LessOrEqual"),
    "greater": same("Greater"),
    "greater_equal": same("GreaterOrEqual"),
    "equal": same("Equal"),
    "not_equal": lambda b, node, inputs: [b.op("Not", b.op("Equal", *inputs))],
})
