"""Kernels of slicing, padding, concatenation, gather, scatter-add and index_add, one-hot."""
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


def segment_sum(indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct `indices` (sorted) and, for each, the sum of the `rows` at its positions, in
    their order. `np.add.at` on a table of rows goes element by element (10x slower); here the
    indices are sorted once, the first row of every index is taken in one vectorized step, then
    each later repeat is added in rounds, each round over distinct indices (rounds = the most times
    one index repeats, a handful for an embedding's batch)."""
    order = np.argsort(indices, kind="stable")
    ordered = indices[order]
    first = np.empty(len(ordered), bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    sums = np.take(rows, order[starts], axis=0)
    repeats = np.flatnonzero(~first)
    if len(repeats):
        group = np.cumsum(first)[repeats] - 1           # which distinct index each repeat adds to
        rank = repeats - starts[group]                  # 1 for an index's second row, 2 for its third...
        for r in range(1, int(rank.max()) + 1):
            now = rank == r
            at = group[now]
            sums[at] = np.add(sums[at], np.take(rows, order[repeats[now]], axis=0))
    return ordered[starts], sums


def _flat_rows(table, axis: int, pairs) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's indices flat and wrapped to >= 0, and its updates as one row per index (the
    indexed axis first), all pairs joined."""
    size, flats, rows = table.shape[axis], [], []
    for indices, updates in zip(pairs[::2], pairs[1::2]):
        flat = indices.reshape(-1)
        flats.append(np.where(flat < 0, flat + size, flat))
        lead = updates.shape[:axis]
        rows.append(np.moveaxis(updates.reshape(lead + (-1,) + updates.shape[axis + indices.ndim:]), axis, 0))
    if len(flats) == 1:
        return flats[0], rows[0]
    return np.concatenate(flats), np.concatenate(rows)


@kernel("scatter_add")
def scatter_add(g, indices, table_ref, axis=0):
    out = np.zeros(table_ref.shape, dtype=g.dtype)
    axis = axis % out.ndim
    if indices.size:
        where, sums = segment_sum(*_flat_rows(out, axis, (indices, g)))
        np.moveaxis(out, axis, 0)[where] = sums          # repeated indices accumulate
    return out


def index_add_into(base, *pairs, axis=0):
    """index_add writing into `base` itself: the executor calls it when `base` is dead after the node
    and no other array shares its memory (runtime/numpy/executor.py). Every update is summed per
    index first and added to the table once: an SGD step's tiny updates of a table of larger numbers
    round once per entry, as the dense step's do."""
    axis = axis % base.ndim
    if len(pairs) == 2 and pairs[0].ndim == 1 and pairs[0].size <= 64:
        indices, updates = pairs
        flat = np.where(indices < 0, indices + base.shape[axis], indices)
        if flat.size == 1 or len(np.unique(flat)) == flat.size:
            # a few distinct slots (a key/value cache write): one add at them, along the axis in place
            where = (slice(None),) * axis + (flat,)
            base[where] = np.add(base[where], updates)
            return base
    flat, rows = _flat_rows(base, axis, pairs)
    if flat.size:
        where, sums = segment_sum(flat, rows)
        front = np.moveaxis(base, axis, 0)
        front[where] = np.add(np.take(front, where, axis=0), sums)
    return base


@kernel("index_add")
def index_add(base, *pairs, axis=0):
    return index_add_into(base.copy(), *pairs, axis=axis)
