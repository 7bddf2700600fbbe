"""Reductions along axes and the softmax family, with the NumPy kernels' formulas
(runtime/numpy/kernels/reductions.py): the maximum is subtracted before exponentiating."""
from __future__ import annotations

import jax.numpy as jnp

from nngraph.runtime.jax.ops.registry import impl


@impl("softmax")
def softmax(x, axis=-1):
    z = jnp.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


@impl("log_softmax")
def log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - jnp.log(jnp.exp(shifted).sum(axis=axis, keepdims=True))


@impl("argmax")
def argmax(x, axis=-1, keepdims=False):
    # the first maximum on ties, as NumPy's
    return jnp.argmax(x, axis=axis, keepdims=keepdims).astype(jnp.int64)


def _axes(axes):
    return None if axes is None else tuple(axes) if not isinstance(axes, int) else axes


@impl("sum")
def reduce_sum(x, axes=None, keepdims=False):
    return jnp.sum(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype)


@impl("mean")
def reduce_mean(x, axes=None, keepdims=False):
    if jnp.issubdtype(x.dtype, jnp.integer):
        # NumPy's integer mean divides in floating point and truncates towards zero
        return jnp.trunc(jnp.mean(x, axis=_axes(axes), keepdims=keepdims, dtype=jnp.float64)).astype(x.dtype)
    return jnp.mean(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype)


@impl("max")
def reduce_max(x, axes=None, keepdims=False):
    return jnp.max(x, axis=_axes(axes), keepdims=keepdims)
