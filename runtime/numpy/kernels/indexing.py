"""Kernels of slicing, padding, concatenation, gather and scatter-add, one-hot."""
from __future__ import annotations

import numpy as np

from nngraph.ops.indexing import slice_index
from nngraph.runtime.numpy.kernels.registry import kernel


@kernel("one_hot")
def one_hot(indices, depth, dtype="float32"):
    return (indices[..., None] == np.arange(depth)).astype(dtype)


@kernel("slice")
def slice_(x, axes, starts=None, ends=None, steps=None):
    return x[slice_index(x.ndim, axes, starts, ends, steps)]


@kernel("slice_grad")
def slice_grad(g, x_ref, axes, starts=None, ends=None, steps=None):
    out = np.zeros(x_ref.shape, dtype=g.dtype)
    out[slice_index(out.ndim, axes, starts, ends, steps)] = g
    return out


@kernel("pad")
def pad(x, pads, value=0.0):
    rank = x.ndim
    out = np.full([d + b + a for d, b, a in zip(x.shape, pads[:rank], pads[rank:])], value, dtype=x.dtype)
    out[tuple(slice(b, b + d) for d, b in zip(x.shape, pads[:rank]))] = x
    return out


@kernel("concat")
def concat(*xs, axis=0):
    return np.concatenate(xs, axis=axis)


@kernel("gather")
def gather(table, indices, axis=0):
    return np.take(table, indices, axis=axis)


@kernel("scatter_add")
def scatter_add(g, indices, table_ref, axis=0):
    out = np.zeros(table_ref.shape, dtype=g.dtype)
    axis = axis % out.ndim
    np.add.at(out, (slice(None),) * axis + (indices,), g)      # repeated indices accumulate
    return out
