"""The NumPy kernels' fast paths give what the general path gives: an outer product as a broadcast
multiply, short rows summed by BLAS, greedy sampling without the ranking."""
from __future__ import annotations

import numpy as np
import pytest

from nngraph.runtime.numpy.kernels.registry import KERNELS


@pytest.mark.parametrize("a_shape,b_shape", [((288, 1), (1, 4, 1, 16)), ((2, 3, 1), (2, 1, 5)), ((3, 2, 1), (1, 5)),
                                             ((4, 1), (1, 6))])
def test_a_product_over_one_term_is_matmul_exactly(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=a_shape).astype("float32"), rng.normal(size=b_shape).astype("float32")
    out = KERNELS["matmul"](a, b)
    assert out.shape == np.matmul(a, b).shape
    np.testing.assert_array_equal(out, np.matmul(a, b))


@pytest.mark.parametrize("shape,axes,keepdims", [((512, 100), (-1,), False), ((3, 5, 7), (2,), True),
                                                 ((3, 5, 7), (1,), False), ((6,), (0,), False)])
def test_summing_the_last_axis(shape, axes, keepdims):
    x = np.random.default_rng(1).normal(size=shape)
    got = KERNELS["sum"](x, axes=axes, keepdims=keepdims)
    want = np.sum(x, axis=axes, keepdims=keepdims)
    assert got.shape == want.shape and got.dtype == x.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_greedy_sampling_is_the_argmax():
    logits = np.random.default_rng(2).normal(size=(5, 96)).astype("float32")
    uniform = np.full(5, 0.3, "float32")
    for temperature in (0.0, -1.0):
        got = KERNELS["sample_categorical"](logits, uniform, np.float32(temperature), np.int64(0), np.float32(1))
        np.testing.assert_array_equal(got, logits.argmax(-1))
        assert got.dtype == np.int64
    hot = KERNELS["sample_categorical"](logits, uniform, np.float32(1e-6), np.int64(0), np.float32(1))
    np.testing.assert_array_equal(hot, logits.argmax(-1))     # the general path, nearly greedy
