"""The fused ops (GELU as jax.nn.gelu, attention as its formula). A `fused` node's formula (an
Expr tree of elementwise ops, nngraph/ops/fused.py) is evaluated with the elementwise
implementations while tracing; XLA fuses the result into one loop again, so nothing here needs the
NumPy kernel's temporary reuse."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from nngraph.runtime.jax.ops.reductions import log_softmax
from nngraph.runtime.jax.ops.registry import IMPLS, impl


@impl("gemm")
def gemm(a, b, c):
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST) + c


@impl("softmax_cross_entropy")
def softmax_cross_entropy(logits, target, axis=-1):
    log_probs = log_softmax(logits, axis)
    return -jnp.sum(target * log_probs, axis=axis), jnp.exp(log_probs)


@impl("gelu")
def gelu(x, approximate="none"):
    return jax.nn.gelu(x, approximate=approximate == "tanh")


@impl("attention")
def attention(q, k, v, mask, scale):
    scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2), precision=jax.lax.Precision.HIGHEST) * jnp.asarray(scale, q.dtype)
    weights = jax.nn.softmax(scores + mask, axis=-1)
    return jnp.matmul(weights, v, precision=jax.lax.Precision.HIGHEST), weights


@impl("fused")
def fused(*inputs, expr):
    return _evaluate(expr, inputs)


def _evaluate(expr, inputs):
    args = [inputs[a] if isinstance(a, int) else _evaluate(a, inputs) for a in expr.args]
    return IMPLS[expr.op](*args, **dict(expr.attrs))
