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
    return np.sum(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype)


@kernel("mean")
def reduce_mean(x, axes=None, keepdims=False):
    return np.mean(x, axis=_axes(axes), keepdims=keepdims, dtype=x.dtype)


@kernel("max")
def reduce_max(x, axes=None, keepdims=False):
    return np.max(x, axis=_axes(axes), keepdims=keepdims)
