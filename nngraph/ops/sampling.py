"""Sampling: draw one category per row of scores, by inverse-CDF sampling of a fed uniform number.

    sample_categorical(logits [..., V], uniform [...], temperature [], top_k [] int, top_p []) -> [...] int64

The randomness is an input (a uniform number in [0, 1) per row, drawn from a seed by the caller),
so the op is a deterministic function and every backend picks the same category: the graph can
loop over a whole generation inside one onnxruntime call and still match NumPy token for token.

The meaning, in the order the kernels compute it (in float64, whatever the input dtype):
- temperature <= 0: the argmax (greedy; the first maximum on ties). No division by zero: the
  scores are divided by max(temperature, 1e-6), and that result is only used when temperature > 0;
- otherwise the scores / temperature, sorted from the most likely down (ties: lower index first),
  turned into probabilities by a softmax;
- top-k: only the `top_k` most likely are kept (top_k <= 0 keeps all);
- top-p (nucleus): a category is kept while the probability of the more likely ones before it is
  below `top_p` (the most likely is always kept; top_p >= 1 keeps all);
- the kept probabilities are renormalized and the category whose cumulative interval holds
  uniform * total is picked: the number of cumulative sums <= uniform * total, capped at the last
  kept one.
Not differentiable: its result is an index.
"""
from __future__ import annotations

from nngraph.ir.registry import defop
from nngraph.ir.types import TensorType
from nngraph.ops.rules import fmt_shape, require, require_float

# the smallest temperature the scores are divided by, so temperature 0 divides by no zero
MIN_TEMPERATURE = 1e-6


def _sample_categorical_infer(types, attrs):
    logits, uniform, temperature, top_k, top_p = types
    require_float(logits, "sample_categorical")
    require(logits.rank >= 1, "`sample_categorical` needs scores with a last axis of categories")
    require(uniform.shape == logits.shape[:-1],
            f"`sample_categorical` needs one uniform number per row of scores: scores {fmt_shape(logits.shape)} "
            f"want uniform {fmt_shape(logits.shape[:-1])}, got {fmt_shape(uniform.shape)}")
    for t, what in ((uniform, "uniform"), (temperature, "temperature"), (top_p, "top_p")):
        require_float(t, f"sample_categorical's {what}")
    for t, what in ((temperature, "temperature"), (top_k, "top_k"), (top_p, "top_p")):
        require(t.rank == 0, f"`sample_categorical` needs a scalar {what}, got shape {fmt_shape(t.shape)}")
    require(top_k.dtype in ("int32", "int64"), f"`sample_categorical` needs an integer top_k, got {top_k.dtype}")
    return [TensorType("int64", tuple(logits.shape[:-1]))]


defop("sample_categorical", _sample_categorical_infer, arity=5)
