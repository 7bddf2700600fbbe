"""Kernels of dropout's mask and batch normalization (nngraph/ops/normalization.py)."""
from __future__ import annotations

import numpy as np

from nngraph.ops.normalization import counter_hash, keep_threshold, stat_axes
from nngraph.runtime.numpy.kernels.registry import kernel


@kernel("dropout_mask")
def dropout_mask(like, step, rate=0.5, seed=0):
    index = np.arange(like.size, dtype=np.int64).reshape(like.shape)
    keep = counter_hash(index, np.int64(step), int(seed)) >= keep_threshold(rate)
    return np.where(keep, like.dtype.type(1 / (1 - rate)), like.dtype.type(0))


def _per_channel(v, rank):
    return np.expand_dims(v, stat_axes(rank))


@kernel("batch_norm")
def batch_norm(x, gamma, beta, eps=1e-5, running=()):
    axes = stat_axes(x.ndim)
    mean = np.mean(x, axis=axes, dtype=x.dtype)
    centred = x - _per_channel(mean, x.ndim)
    var = np.mean(centred * centred, axis=axes, dtype=x.dtype)
    return batch_norm_inference(x, gamma, beta, mean, var, eps), mean, var


@kernel("batch_norm_inference")
def batch_norm_inference(x, gamma, beta, mean, var, eps=1e-5):
    inv = 1 / np.sqrt(_per_channel(var, x.ndim) + x.dtype.type(eps))
    return ((x - _per_channel(mean, x.ndim)) * inv * _per_channel(gamma, x.ndim) + _per_channel(beta, x.ndim)).astype(x.dtype)


@kernel("layer_norm")
def layer_norm(x, gain, bias, eps=1e-5):
    # the means over the last axis as matrix-vector products: BLAS sums short rows several times faster
    average = np.full(x.shape[-1], 1 / max(x.shape[-1], 1), x.dtype)
    mean = np.matmul(x, average)[..., None]
    y = np.subtract(x, mean)
    inv = np.matmul(np.square(y), average)[..., None]       # the variance, then 1 / sqrt(var + eps) in place
    np.add(inv, x.dtype.type(eps), out=inv)
    np.sqrt(inv, out=inv)
    np.divide(x.dtype.type(1), inv, out=inv)
    np.multiply(y, inv, out=y)
    np.multiply(y, gain, out=y)
    return np.add(y, bias, out=y), mean, inv
