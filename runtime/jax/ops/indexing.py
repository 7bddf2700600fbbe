"""Slicing, padding, concatenation, gather and scatter-add, one-hot.

Slices are static (Python slices on traced arrays lower to lax.slice / lax.rev); a slice's
gradient and scatter-add write into zeros with `.at[...]`, which accumulates repeated indices as
NumPy's `np.add.at` does. Out-of-range gather indices cannot raise inside a compiled program as
NumPy's `take` does: they are clamped (negative indices count from the end, as in NumPy)."""
from __future__ import annotations

import jax.numpy as jnp

from nngraph.ops.indexing import slice_index
from nngraph.runtime.jax.ops.registry import impl


@impl("one_hot")
def one_hot(indices, depth, dtype="float32"):
    return (indices[..., None] == jnp.arange(depth, dtype=indices.dtype)).astype(dtype)


@impl("slice")
def slice_(x, axes, starts=None, ends=None, steps=None):
    return x[slice_index(x.ndim, axes, starts, ends, steps)]


@impl("slice_grad")
def slice_grad(g, x_ref, axes, starts=None, ends=None, steps=None):
    return jnp.zeros(x_ref.shape, g.dtype).at[slice_index(x_ref.ndim, axes, starts, ends, steps)].set(g)


@impl("pad")
def pad(x, pads, value=0.0):
    rank = x.ndim
    return jnp.pad(x, list(zip(pads[:rank], pads[rank:])), constant_values=jnp.asarray(value, x.dtype))


@impl("concat")
def concat(*xs, axis=0):
    return jnp.concatenate(xs, axis=axis)


def _wrapped(indices, size):
    return jnp.where(indices < 0, indices + size, indices)


@impl("gather")
def gather(table, indices, axis=0):
    axis = axis % table.ndim
    return jnp.take(table, _wrapped(indices, table.shape[axis]), axis=axis, mode="clip")


@impl("scatter_add")
def scatter_add(g, indices, table_ref, axis=0):
    axis = axis % table_ref.ndim
    where = (slice(None),) * axis + (_wrapped(indices, table_ref.shape[axis]),)
    return jnp.zeros(table_ref.shape, g.dtype).at[where].add(g)       # repeated indices accumulate


@impl("index_add")
def index_add(base, *pairs, axis=0):
    axis = axis % base.ndim
    # XLA's scatter-add writes into the table in place; repeated rows are added in turn, so a row
    # updated k times rounds k times at the table's scale (within float32 tolerance of NumPy's sum
    # first, then one add)
    for indices, updates in zip(pairs[::2], pairs[1::2]):
        base = base.at[(slice(None),) * axis + (_wrapped(indices, base.shape[axis]),)].add(updates)
    return base
