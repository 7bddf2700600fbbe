"""Kernel of categorical sampling (meaning: nngraph/ops/sampling.py), in float64 and without a
sort: the ranks and the cumulative sums come from the matrix of which category is ranked before
which, the formula that every backend and the ONNX lowering compute the same way."""
from __future__ import annotations

import numpy as np

from nngraph.ops.sampling import MIN_TEMPERATURE
from nngraph.runtime.numpy.kernels.registry import kernel


@kernel("sample_categorical")
def sample_categorical(logits, uniform, temperature, top_k, top_p):
    if np.ndim(temperature) == 0 and not temperature > 0:
        # greedy: the answer below is the argmax too, without ranking every pair of categories (O(V^2))
        return np.argmax(logits, axis=-1).astype(np.int64)
    scores = np.asarray(logits, np.float64)
    scaled = scores / np.maximum(np.float64(temperature), MIN_TEMPERATURE)
    weights = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs = weights / weights.sum(axis=-1, keepdims=True)
    index = np.arange(scores.shape[-1])
    a, b = scaled[..., :, None], scaled[..., None, :]
    ahead = ((a > b) | ((a == b) & (index[:, None] < index[None, :]))).astype(np.float64)   # [..., j, i]: j before i
    rank = ahead.sum(axis=-2)
    before = (probs[..., :, None] * ahead).sum(axis=-2)           # probability ranked before each category
    keep = ((rank < top_k) | (top_k <= 0)) & ((before < np.float64(top_p)) | (rank == 0))
    kept = np.where(keep, probs, 0.0)
    start = (kept[..., :, None] * ahead).sum(axis=-2)             # where each kept category's interval starts
    threshold = np.asarray(uniform, np.float64)[..., None] * kept.sum(axis=-1, keepdims=True)
    reached = (start <= threshold) & (kept > 0)
    chosen = np.argmax(np.where(reached, rank, -1.0), axis=-1)    # the last interval starting at or below it
    return np.where(np.float64(temperature) > 0, chosen, np.argmax(scores, axis=-1)).astype(np.int64)
