"""Elementwise kernels: arithmetic, activations (finite for logits of +-1e4), sine, cosine, comparisons, casts."""
from __future__ import annotations

import math

import numpy as np

from nngraph.runtime.numpy.kernels.registry import kernel, simple_kernels

simple_kernels({
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "less": np.less, "less_equal": np.less_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "equal": np.equal, "not_equal": np.not_equal,
})


BIT_MASK_FROM = 16384     # elements: where `where` selects by bit masks (measured crossover: 4k-16k)


@kernel("where")
def where(condition, a, b):
    """np.where, for float operands of one dtype as bit masks: np.where branches per element and
    runs ~15x slower on a random condition (a ReLU's gradient); the bits of a (or of b) pass
    through unchanged, so the result is exactly np.where's."""
    condition, a, b = np.asarray(condition), np.asarray(a), np.asarray(b)
    shape = np.broadcast_shapes(condition.shape, a.shape, b.shape)
    # small arrays (and 0-d results, where NumPy's ufuncs return scalars): np.where's ~1 us beats the
    # bit-mask path's fixed ~6 us of calls; it turns slow only on large random conditions
    if a.dtype != b.dtype or a.dtype.kind != "f" or condition.dtype != np.bool_ or math.prod(shape) < BIT_MASK_FROM:
        return np.where(condition, a, b)
    ints = np.dtype(f"i{a.dtype.itemsize}")
    bits = np.negative(np.broadcast_to(condition, shape).view(np.int8), dtype=ints)     # all ones where true
    if b.size == 1 and not b.view(ints).any():          # where(c, a, 0): the ReLU-gradient case
        return np.bitwise_and(a.view(ints), bits, out=bits).view(a.dtype)
    kept = np.bitwise_and(a.view(ints), bits)
    np.invert(bits, out=bits)
    np.bitwise_and(b.view(ints), bits, out=bits)
    return np.bitwise_or(kept, bits, out=bits).view(a.dtype)


@kernel("mod")
def mod(a, b, fmod=False):
    with np.errstate(divide="ignore", invalid="ignore"):      # x mod 0 is undefined, as in ONNX
        return np.fmod(a, b) if fmod else np.mod(a, b)


@kernel("relu")
def relu(x):
    return np.maximum(x, 0).astype(x.dtype, copy=False)


@kernel("sigmoid")
def sigmoid(x):
    # 1 / (1 + exp(-x)) in four in-place passes (the where-of-two-branches form took ten times
    # tanh's time): relative precision holds in both tails, because exp(-x) is large, not
    # cancelled, where sigmoid is tiny (0.5 * tanh(x / 2) + 0.5 is as fast but loses every digit
    # below about -17). exp(-x) overflows to inf below about -88 (float32), giving the exact 0
    # the float rounds to: that overflow is expected, not reported.
    x = np.asarray(x)
    out = np.negative(x, out=np.empty_like(x))
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    np.add(out, 1, out=out)
    return np.reciprocal(out, out=out)


@kernel("tanh")
def tanh(x):
    return np.tanh(x)


@kernel("softplus")
def softplus(x):
    return np.logaddexp(x, 0).astype(x.dtype, copy=False)


@kernel("cast")
def cast(x, dtype):
    return x.astype(dtype)


@kernel("sin")
def sin(x):
    return np.sin(x)


@kernel("cos")
def cos(x):
    return np.cos(x)


# erf's rational approximation for float32 (Eigen's, XLA's too): x P(x^2) / Q(x^2) on [-4, 4], where
# erf has reached +-1 in float32; within 4.5e-7 of the exact value. scipy's float32 erf is ~60x slower.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


def _horner(coefficients, x2, dtype):
    out = np.full_like(x2, coefficients[0])
    for c in coefficients[1:]:
        np.multiply(out, x2, out=out)
        np.add(out, dtype.type(c), out=out)
    return out


_exact_erf = np.frompyfunc(math.erf, 1, 1)


@kernel("erf")
def erf(x):
    if x.dtype != np.float32:       # float64 needs every digit (the gradient checks): the C library's
        # erf per element (about 0.1 us each; float64 models are for checking, not for speed)
        return np.asarray(_exact_erf(x), dtype=x.dtype)
    clipped = np.clip(x, np.float32(-4), np.float32(4))
    x2 = clipped * clipped
    numerator = _horner(_ERF_P, x2, x.dtype)
    np.multiply(numerator, clipped, out=numerator)
    return np.divide(numerator, _horner(_ERF_Q, x2, x.dtype), out=numerator)
