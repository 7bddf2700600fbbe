"""The NumPy sigmoid kernel against a float64 (long double) reference: relative precision in both
tails, exact 0 and 1 at the extremes, no warnings, the input's dtype and shape kept."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from nngraph.runtime.numpy.kernels.elementwise import sigmoid


def _reference(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.longdouble)))


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 4e-7), (np.float64, 1e-15)])
def test_sigmoid_keeps_relative_precision_from_tail_to_tail(dtype, rtol):
    x = np.linspace(-80, 40, 12001).astype(dtype)       # down to 1.8e-35: normal floats in both dtypes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = sigmoid(x)
    assert got.dtype == dtype and got.shape == x.shape
    want = _reference(x)
    assert np.max(np.abs(got - want) / want) < rtol


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_to_exact_zero_and_one_without_warnings(dtype):
    x = np.array([[-1e4, -800.0, 0.0], [-0.0, 800.0, 1e4]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = sigmoid(x)
    np.testing.assert_array_equal(got, np.array([[0, 0, 0.5], [0.5, 1, 1]], dtype))
    assert sigmoid(np.asarray(dtype(2.0))).shape == ()


def test_sigmoid_leaves_its_input_alone():
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    before = x.copy()
    sigmoid(x)
    np.testing.assert_array_equal(x, before)
