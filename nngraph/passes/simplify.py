"""Algebraic simplification: local rewrites that compute the same values with fewer or cheaper
nodes. Each rule handles one identity; the rewrite driver refuses any replacement whose type
differs from the original, so a rule never has to re-check broadcasting.

Identities that are not exact in floating point are applied only where they are: exp(log x)
only when x is known positive, x - x only for finite inputs the graph cannot make NaN or inf
(every such value is finite unless an input is, which the runtime does not feed on purpose)."""
from __future__ import annotations

import numpy as np

from nngraph.ir import Graph
from nngraph.ops.fused import ELEMENTWISE
from nngraph.ops.rules import norm_axes
from nngraph.passes.rewrite import constant_value, is_constant, producer, rewrite

RULES: dict[str, list] = {}

# ops whose every output element is > 0 (or >= 0 where log gives -inf and exp brings back 0)
POSITIVE = {"exp", "sigmoid", "softmax", "softplus", "sqrt", "abs", "relu"}


def rule(*ops: str):
    def register(fn):
        for op in ops:
            RULES.setdefault(op, []).append(fn)
        return fn
    return register


# ---------------------------------------------------------------- identities
@rule("positions")
def positions_of_a_fixed_size(node, e):      # 0, 1, ..., n - 1 of an axis whose size n is known
    size = node.out.shape[0]
    return e("constant", value=np.arange(size, dtype=np.int64)) if isinstance(size, int) and size <= 4096 else None



@rule("add")
def add_zero(node, e):                       # x + 0 = 0 + x = x
    x, y = node.inputs
    return x if is_constant(y, 0) else y if is_constant(x, 0) else None


@rule("sub")
def sub_zero(node, e):                       # x - 0 = x
    x, y = node.inputs
    return x if is_constant(y, 0) else None


@rule("sub")
def sub_self(node, e):                       # x - x = 0
    x, y = node.inputs
    if x is not y:
        return None
    zero = e("constant", value=np.zeros((), x.dtype))
    return e("broadcast_like", zero, x)


@rule("mul")
def mul_one(node, e):                        # x * 1 = 1 * x = x
    x, y = node.inputs
    return x if is_constant(y, 1) else y if is_constant(x, 1) else None


@rule("div")
def div_one(node, e):                        # x / 1 = x
    x, y = node.inputs
    return x if is_constant(y, 1) else None


@rule("neg")
def neg_neg(node, e):                        # -(-x) = x
    inner = producer(node.inputs[0], "neg")
    return inner.inputs[0] if inner else None


@rule("exp")
def exp_log(node, e):                        # exp(log x) = x for x >= 0
    log = producer(node.inputs[0], "log")
    if log and producer(log.inputs[0]) and log.inputs[0].node.op in POSITIVE:
        return log.inputs[0]
    return None


@rule("log")
def log_exp(node, e):                        # log(exp x) = x (and more exact: no overflow)
    inner = producer(node.inputs[0], "exp")
    return inner.inputs[0] if inner else None


@rule("where")
def where_same(node, e):                     # where(c, x, x) = x
    _, a, b = node.inputs
    return a if a is b else None


# ---------------------------------------------------------------- strength reduction
@rule("pow")
def pow_small_integer(node, e):              # x**2 = x*x, x**1 = x, x**0.5 = sqrt(x)
    x, exponent = node.inputs
    power = constant_value(exponent)
    if power is None or power.size != 1:
        return None
    power = float(power.reshape(()))
    if power == 2:
        return e("mul", x, x)
    if power == 1:
        return x
    if power == 0.5:
        return e("sqrt", x)
    return None


# ---------------------------------------------------------------- layout ops
def _perm(node):
    return node.attrs.get("perm") or tuple(reversed(range(node.inputs[0].type.rank)))


@rule("transpose")
def transpose_identity(node, e):             # transpose(x, (0, 1, ...)) = x
    return node.inputs[0] if tuple(_perm(node)) == tuple(range(node.inputs[0].type.rank)) else None


@rule("transpose")
def transpose_transpose(node, e):            # transpose(transpose(x, p), q) = transpose(x, p[q])
    inner = producer(node.inputs[0], "transpose")
    if not inner:
        return None
    combined = tuple(_perm(inner)[i] for i in _perm(node))
    x = inner.inputs[0]
    return x if combined == tuple(range(x.type.rank)) else e("transpose", x, perm=combined)


RESHAPES = ("reshape", "reshape_like", "expand_dims")


@rule("reshape", "reshape_like", "expand_dims")
def reshape_same(node, e):                   # a reshape that keeps the shape does nothing
    return node.inputs[0] if node.inputs[0].type == node.out.type else None


@rule("reshape", "reshape_like", "expand_dims")
def reshape_reshape(node, e):                # reshape(reshape(x)) = reshape(x): only the last shape counts
    inner = producer(node.inputs[0])
    if not inner or inner.op not in RESHAPES:
        return None
    if node.op == "reshape" and 0 in node.attrs["shape"]:
        return None                          # a 0 copies a dim of the *inner* result
    x = inner.inputs[0]
    return e(node.op, x, *node.inputs[1:], **node.attrs)


@rule("reshape", "reshape_like")
def squeeze_after_keepdims_sum(node, e):     # reshape(sum(x, keepdims)) = sum(x) when that fits
    total = producer(node.inputs[0], "sum")
    if not total or not total.attrs.get("keepdims"):
        return None
    return e("sum", total.inputs[0], axes=total.attrs.get("axes"), keepdims=False)


# ---------------------------------------------------------------- broadcasts autodiff makes
@rule("broadcast_like")
def broadcast_same(node, e):                 # broadcasting to the shape it already has
    return node.inputs[0] if node.inputs[0].type == node.out.type else None


def _uniform_source(value):
    """A chain of reshapes and broadcasts over a one-element tensor holds that one number
    everywhere: return the one-element tensor at the bottom of the chain (or `value` itself)."""
    source = value
    while value.node is not None and value.node.op in RESHAPES + ("broadcast_like",):
        value = value.node.inputs[0]
        if all(d == 1 for d in value.shape):
            source = value
    return source


@rule("broadcast_like")
def broadcast_of_broadcast(node, e):         # broadcast(expand(broadcast(s))) = broadcast(s) for one-element s
    source = _uniform_source(node.inputs[0])
    if source is node.inputs[0]:
        return None
    return e("broadcast_like", source, node.inputs[1])


@rule(*sorted(ELEMENTWISE - {"cast"}))
def implicit_broadcast(node, e):             # op(broadcast(x), y) = op(x, y): the op broadcasts anyway
    inputs = []
    for v in node.inputs:
        spread = producer(v, "broadcast_like")
        inputs.append(_uniform_source(spread.inputs[0] if spread else v))
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return None
    return e(node.op, *inputs, **node.attrs)


@rule("sum")
def sum_of_broadcast(node, e):               # sum(broadcast(y), axes) = sum(y, axes) * (broadcast size)
    spread = producer(node.inputs[0], "broadcast_like")
    if not spread:
        return None
    y, ref = spread.inputs
    wide = node.inputs[0]
    axes = norm_axes(node.attrs.get("axes"), wide.type.rank)
    if y.type.rank != wide.type.rank or ref.type.rank != wide.type.rank:
        return None
    if any(y.shape[a] != 1 for a in axes) or any(ref.shape[a] != wide.shape[a] for a in axes):
        return None                          # y must be constant along every summed axis
    squeezed = e("sum", y, axes=axes, keepdims=node.attrs.get("keepdims", False))
    return e("mul", squeezed, e("dim_size", ref, axes=axes, dtype=y.dtype))


def algebraic_simplification(graph: Graph) -> Graph:
    """Apply the rules until none fires (each rewrite may enable another)."""
    for _ in range(10):
        if not rewrite(graph, RULES):
            break
    return graph
