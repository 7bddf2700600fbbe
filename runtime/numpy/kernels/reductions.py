"""Kernels of the reductions and the softmax family."""
from __future__ import annotations

import numpy as np

from nngraph.runtime.numpy.kernels.registry import kernel


@kernel("softmax")
def softmax(x, axis=-1):
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


@kernel("log_softmax")
def log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@kernel("argmax")
def argmax(x, axis=-1, keepdims=False):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int64)


def _axes(axes):
    return None if axes is None else tuple(axes) if not isinstance(axes, int) else axes


@kernel("sum")
def reduce_sum(x, axes=None, keepdims=False):
    if _last_axis(x, axes) and x.shape[-1] <= 4096 and x.dtype.kind == "f" and x.flags.c_contiguous:
        # short rows summed as one BLAS product with ones: np.sum loops row by row (3-4x slower for
        # rows of ~100, as an embedding dot product has); BLAS keeps several partial sums per row,
        # as accurate as np.sum's pairwise sum at these lengths
        out = np.matmul(x, np.ones(x.shape[-1], x.dtype))
        return out[..., None] if keepdims else out
    return np.sum(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype)


def _last_axis(x, axes) -> bool:
    if x.ndim < 2 or axes is None:
        return False
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    return len(axes) == 1 and axes[0] % x.ndim == x.ndim - 1


@kernel("mean")
def reduce_mean(x, axes=None, keepdims=False):
    return np.mean(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype)


@kernel("max")
def reduce_max(x, axes=None, keepdims=False):
    return np.max(x, axis=_axes(axes), keepdims=keepdims)
