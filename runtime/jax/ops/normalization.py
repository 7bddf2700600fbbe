"""Dropout's mask, batch and layer normalization, with the NumPy kernels' formulas
(runtime/numpy/kernels/normalization.py): the same int64 hash, so the same masks."""
from __future__ import annotations

import jax.numpy as jnp

from nngraph.ops.normalization import counter_hash, keep_threshold, stat_axes
from nngraph.runtime.jax.ops.registry import impl


@impl("dropout_mask")
def dropout_mask(like, step, rate=0.5, seed=0):
    index = jnp.arange(like.size, dtype=jnp.int64).reshape(like.shape)
    keep = counter_hash(index, step.astype(jnp.int64), int(seed)) >= keep_threshold(rate)
    return jnp.where(keep, jnp.asarray(1 / (1 - rate), like.dtype), jnp.asarray(0, like.dtype))


def _per_channel(v, rank):
    return jnp.expand_dims(v, stat_axes(rank))


@impl("batch_norm")
def batch_norm(x, gamma, beta, eps=1e-5, running=()):
    axes = stat_axes(x.ndim)
    mean = jnp.mean(x, axis=axes, dtype=x.dtype)
    centred = x - _per_channel(mean, x.ndim)
    var = jnp.mean(centred * centred, axis=axes, dtype=x.dtype)
    return batch_norm_inference(x, gamma, beta, mean, var, eps), mean, var


@impl("batch_norm_inference")
def batch_norm_inference(x, gamma, beta, mean, var, eps=1e-5):
    inv = 1 / jnp.sqrt(_per_channel(var, x.ndim) + jnp.asarray(eps, x.dtype))
    return ((x - _per_channel(mean, x.ndim)) * inv * _per_channel(gamma, x.ndim) + _per_channel(beta, x.ndim)).astype(x.dtype)


@impl("layer_norm")
def layer_norm(x, gain, bias, eps=1e-5):
    mean = jnp.mean(x, axis=-1, keepdims=True, dtype=x.dtype)
    centred = x - mean
    inv = 1 / jnp.sqrt(jnp.mean(centred * centred, axis=-1, keepdims=True, dtype=x.dtype) + jnp.asarray(eps, x.dtype))
    return centred * inv * gain + bias, mean, inv
