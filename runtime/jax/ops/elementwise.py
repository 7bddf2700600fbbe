"""Elementwise ops: arithmetic, activations, sine, cosine, comparisons, selection, casts.
Formulas follow the NumPy kernels (runtime/numpy/kernels/elementwise.py) so results agree to
rounding, e.g. the sigmoid that never exponentiates a positive number."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special

from nngraph.runtime.jax.ops.registry import impl, simple_impls

simple_impls({
    "add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": jnp.divide, "pow": jnp.power,
    "neg": jnp.negative, "exp": jnp.exp, "log": jnp.log, "sqrt": jnp.sqrt, "abs": jnp.abs, "sign": jnp.sign,
    "less": jnp.less, "less_equal": jnp.less_equal, "greater": jnp.greater,
    "greater_equal": jnp.greater_equal, "equal": jnp.equal, "not_equal": jnp.not_equal,
    "where": jnp.where, "tanh": jnp.tanh, "sin": jnp.sin, "cos": jnp.cos, "erf": jax.scipy.special.erf,
})


@impl("mod")
def mod(a, b, fmod=False):
    return jnp.fmod(a, b) if fmod else jnp.remainder(a, b)


@impl("relu")
def relu(x):
    return jnp.maximum(x, jnp.zeros((), x.dtype))


@impl("sigmoid")
def sigmoid(x):
    # exp of a non-positive number only: no overflow for large |x| (as the NumPy kernel)
    z = jnp.exp(-jnp.abs(x))
    return jnp.where(x >= 0, 1 / (1 + z), z / (1 + z))


@impl("softplus")
def softplus(x):
    return jnp.logaddexp(x, jnp.zeros((), x.dtype))


@impl("cast")
def cast(x, dtype):
    return x.astype(dtype)
