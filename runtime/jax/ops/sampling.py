"""Categorical sampling with the NumPy kernel's formulas (runtime/numpy/kernels/sampling.py), in
float64 (the backend turns on JAX's 64-bit mode) so it picks what NumPy picks."""
from __future__ import annotations

import jax.numpy as jnp

from nngraph.ops.sampling import MIN_TEMPERATURE
from nngraph.runtime.jax.ops.registry import impl


@impl("sample_categorical")
def sample_categorical(logits, uniform, temperature, top_k, top_p):
    scores = logits.astype(jnp.float64)
    scaled = scores / jnp.maximum(temperature.astype(jnp.float64), MIN_TEMPERATURE)
    weights = jnp.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs = weights / weights.sum(axis=-1, keepdims=True)
    index = jnp.arange(scores.shape[-1])
    a, b = scaled[..., :, None], scaled[..., None, :]
    ahead = ((a > b) | ((a == b) & (index[:, None] < index[None, :]))).astype(jnp.float64)
    rank = ahead.sum(axis=-2)
    before = (probs[..., :, None] * ahead).sum(axis=-2)
    keep = ((rank < top_k) | (top_k <= 0)) & ((before < top_p.astype(jnp.float64)) | (rank == 0))
    kept = jnp.where(keep, probs, 0.0)
    start = (kept[..., :, None] * ahead).sum(axis=-2)
    threshold = uniform.astype(jnp.float64)[..., None] * kept.sum(axis=-1, keepdims=True)
    reached = (start <= threshold) & (kept > 0)
    chosen = jnp.argmax(jnp.where(reached, rank, -1.0), axis=-1)
    return jnp.where(temperature > 0, chosen, jnp.argmax(scores, axis=-1)).astype(jnp.int64)
