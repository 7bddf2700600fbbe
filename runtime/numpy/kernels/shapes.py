"""Kernels of the shape ops."""
from __future__ import annotations

import numpy as np

from nngraph.runtime.numpy.kernels.registry import kernel


@kernel("fill")
def fill(*refs, dims, value=0.0, dtype="float32"):
    return np.full([d if isinstance(d, int) else refs[d[0]].shape[d[1]] for d in dims], value, dtype=dtype)


@kernel("constant")
def constant(value):
    return value


@kernel("dim_size")
def dim_size(x, axes=None, dtype="float32"):
    axes = range(x.ndim) if axes is None else axes
    return np.asarray(np.prod([x.shape[a] for a in axes]), dtype=dtype)


@kernel("transpose")
def transpose(x, perm=None):
    return np.transpose(x, perm)


@kernel("reshape")
def reshape(x, shape):
    return np.reshape(x, [x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


@kernel("reshape_like")
def reshape_like(x, ref):
    return np.reshape(x, ref.shape)


@kernel("broadcast_like")
def broadcast_like(x, ref):
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, ref.shape))


@kernel("expand_dims")
def expand_dims(x, axes):
    return np.expand_dims(x, tuple(axes))


@kernel("positions")
def positions(x, axis=0):
    return np.arange(x.shape[axis], dtype=np.int64)
