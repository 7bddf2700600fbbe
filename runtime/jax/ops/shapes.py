"""The shape ops. Sizes read from an input (`fill`'s (input, axis) dims, `dim_size`, `positions`,
a reshape's 0) are the traced arrays' static shapes: jit traces once per input-shape signature,
so every symbolic dimension is a concrete int by then."""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from nngraph.runtime.jax.ops.registry import impl


@impl("fill")
def fill(*refs, dims, value=0.0, dtype="float32"):
    return jnp.full([d if isinstance(d, int) else refs[d[0]].shape[d[1]] for d in dims], value, dtype=dtype)


@impl("constant")
def constant(value):
    # a NumPy array of the graph, embedded in the compiled program
    return jnp.asarray(value)


@impl("dim_size")
def dim_size(x, axes=None, dtype="float32"):
    axes = range(x.ndim) if axes is None else axes
    return jnp.asarray(math.prod(x.shape[a] for a in axes), dtype=dtype)


@impl("transpose")
def transpose(x, perm=None):
    return jnp.transpose(x, perm)


@impl("reshape")
def reshape(x, shape):
    return jnp.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


@impl("reshape_like")
def reshape_like(x, ref):
    return jnp.reshape(x, ref.shape)


@impl("broadcast_like")
def broadcast_like(x, ref):
    return jnp.broadcast_to(x, np.broadcast_shapes(x.shape, ref.shape))


@impl("expand_dims")
def expand_dims(x, axes):
    return jnp.expand_dims(x, tuple(axes))


@impl("positions")
def positions(x, axis=0):
    return jnp.arange(x.shape[axis], dtype=jnp.int64)
