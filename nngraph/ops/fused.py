"""Fused ops: several primitive passes as one kernel with a closed-form gradient.

gemm, softmax_cross_entropy and `fused` (an elementwise formula) are made by the fusion passes
(nngraph/passes/fusion.py). gelu and attention are also written directly (dsl/builtins.py,
dsl/stdlib/attention.nn): a GELU is one op rather than a chain of ten, and attention's softmax
lives inside the op, so its backward pass reads the weights the forward pass kept.

gelu(x; approximate): x * Phi(x), Phi the standard normal CDF: exactly 0.5 x (1 + erf(x / sqrt 2))
("none"), or the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ("tanh").

attention(q, k, v, mask; scale) -> out, weights: weights = softmax(scale * q @ k^T + mask) over the
last axis, out = weights @ v. q [..., tq, dk], k [..., tk, dk], v [..., tk, dv]; the mask is added
to the scores [..., tq, tk] with broadcasting (0 where a query may look, a large negative number
where not; a scalar 0 masks nothing), as the unfused formula would.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Value
from nngraph.ir.registry import OPS, defop
from nngraph.ir.types import TensorType
from nngraph.ops.linalg import matmul_type, right_operand_grad, swap_last
from nngraph.ops.rules import broadcast_shapes, fmt_shape, norm_axis, require, require_float, same_dtype

# ---------------------------------------------------------------- fused ops
# Made only by the fusion passes (nngraph/passes/fusion.py), never written in .nn files: each is
# one kernel call at run time and keeps a symbolic gradient, so a fused graph can still be
# differentiated, printed and exported.

def _gemm_infer(types, attrs):
    a, b, c = types
    product, = matmul_type([a, b], attrs)
    same_dtype([product, c], "gemm")
    return [product.with_shape(broadcast_shapes(product.shape, c.shape))]


def _gemm_vjp(e, n, gs, w):
    a, b, c = n.inputs
    return [e.sum_to(e("matmul", gs[0], swap_last(e, b)), a) if w[0] else None,
            right_operand_grad(e, a, gs[0], b) if w[1] else None,
            e.sum_to(gs[0], c) if w[2] else None]


defop("gemm", _gemm_infer, _gemm_vjp, arity=3)# a @ b + c


def _softmax_cross_entropy_infer(types, attrs):
    logits, target = types
    require_float(logits, "softmax_cross_entropy")
    same_dtype(types, "softmax_cross_entropy")
    require(logits.shape == target.shape, f"`softmax_cross_entropy` needs logits and target of one shape, got "
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


defop("softmax_cross_entropy", _softmax_cross_entropy_infer, _softmax_cross_entropy_vjp,
      arity=2)

# ---------------------------------------------------------------- GELU
GELU_CUBIC = 0.044715
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
GELU_APPROXIMATIONS = ("none", "tanh")


def _gelu_infer(types, attrs):
    x, = types
    require_float(x, "gelu")
    approximate = attrs.get("approximate", "none")
    require(approximate in GELU_APPROXIMATIONS,
            f"`gelu`'s approximate is one of {', '.join(GELU_APPROXIMATIONS)}, got {approximate!r}")
    return [x]


def _gelu_vjp(e, n, gs, w):
    """exact: Phi(x) + x phi(x), phi the normal density exp(-x^2/2) / sqrt(2 pi);
    tanh: 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t the tanh of the inner sum."""
    x = n.inputs[0]

    def c(value):
        return e.const(value, x)
    square = e("mul", x, x)
    if n.attrs.get("approximate", "none") == "tanh":
        inner = e("mul", c(SQRT_2_OVER_PI), e("mul", x, e("add", c(1), e("mul", c(GELU_CUBIC), square))))
        t = e("tanh", inner)
        slope = e("mul", c(SQRT_2_OVER_PI), e("add", c(1), e("mul", c(3 * GELU_CUBIC), square)))
        half_x = e("mul", c(0.5), x)
        d = e("add", e("mul", c(0.5), e("add", c(1), t)), e("mul", half_x, e("mul", e("sub", c(1), e("mul", t, t)), slope)))
    else:
        cdf = e("mul", c(0.5), e("add", c(1), e("erf", e("mul", x, c(math.sqrt(0.5))))))
        density = e("mul", c(1 / math.sqrt(2 * math.pi)), e("exp", e("mul", c(-0.5), square)))
        d = e("add", cdf, e("mul", x, density))
    return [e("mul", gs[0], d)]


defop("gelu", _gelu_infer, _gelu_vjp, arity=1)


# ---------------------------------------------------------------- attention
def _attention_infer(types, attrs):
    q, k, v, mask = types
    require_float(q, "attention")
    same_dtype(types, "attention")
    require(k.rank >= 2 and v.rank >= 2, f"`attention` needs keys and values of rank 2 or more, got {k} and {v}")
    require(k.shape[-2] == v.shape[-2], f"`attention` needs as many keys as values: {fmt_shape(k.shape)} and "
                                        f"{fmt_shape(v.shape)}")
    scores, = matmul_type([q, k.with_shape(k.shape[:-2] + (k.shape[-1], k.shape[-2]))], {})
    weights = scores.with_shape(broadcast_shapes(scores.shape, mask.shape))     # a mask may add batch axes
    out, = matmul_type([weights, v], {})
    require(isinstance(attrs.get("scale"), (int, float)), "`attention` needs a numeric `scale`")
    return [out, weights]


def _attention_vjp(e, n, gs, w):
    """With P the weights and dP their gradient: dS = P * (dP - sum(dP * P, -1)) (softmax's VJP),
    dq = scale dS @ k, dk = scale dS^T @ q, dv = P^T @ dout, dmask = dS summed to the mask's shape."""
    q, k, v, mask = n.inputs
    weights = n.outputs[1]
    gout, gweights = gs
    out_read = not _is_zero(gout)       # (a gradient of the VJP itself may read only the weights)
    dv = e.sum_to(e("matmul", swap_last(e, weights), gout), v) if w[2] and out_read else None
    if not (w[0] or w[1] or w[3]):
        return [None, None, dv, None]
    dweights = e("matmul", gout, swap_last(e, v)) if out_read else None
    if not _is_zero(gweights):          # the weights are read too
        dweights = gweights if dweights is None else e("add", dweights, gweights)
    if dweights is None:
        return [None, None, dv, None]
    dot = e("sum", e("mul", dweights, weights), axes=(-1,), keepdims=True)
    dscores = e("mul", weights, e("sub", dweights, dot))
    scaled = e("mul", dscores, e.const(n.attrs["scale"], q))
    dq = e.sum_to(e("matmul", scaled, k), q) if w[0] else None
    dk = e.sum_to(e("matmul", swap_last(e, scaled), q), k) if w[1] else None
    return [dq, dk, dv, e.sum_to(dscores, mask) if w[3] else None]


defop("attention", _attention_infer, _attention_vjp, arity=4)


# The ops an elementwise fusion may combine: same-position inputs to output, with broadcasting.
ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "abs", "sign", "relu", "sigmoid", "tanh",
    "softplus", "less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "where", "cast", "erf",
    "gelu"})


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
