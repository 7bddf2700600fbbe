"""The convolution, pooling and scatter kernels against a direct (loop-over-everything) reference
of their definition (1, 2 and 3 spatial axes, dilated pools), and the adjoint identities of
conv2d's two gradient kernels."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from nngraph.runtime.numpy.kernels.registry import KERNELS
from tests.helpers import assert_close


def reference_conv(x, w, stride, pads, dilation, groups):
    """The definition, one output element at a time."""
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    ho = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for b, f, p, q in itertools.product(range(n), range(o), range(ho), range(wo)):
        group = f // og
        for ch, i, j in itertools.product(range(cg), range(kh), range(kw)):
            out[b, f, p, q] += w[f, ch, i, j] * xp[b, group * cg + ch, p * stride[0] + i * dilation[0],
                                                    q * stride[1] + j * dilation[1]]
    return out


CONV_SETTINGS = [
    ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ((1, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 0, 2, 1), (1, 2), 2),
    ((2, 3, 5, 5), (3, 1, 2, 2), (2, 2), (0, 0, 0, 0), (2, 2), 3),
    ((1, 2, 4, 4), (2, 2, 1, 1), (3, 3), (1, 1, 1, 1), (1, 1), 1),
    ((2, 4, 4, 4), (12, 2, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 2),     # more filters per group than positions
]


@pytest.mark.parametrize("xs,ws,stride,pads,dilation,groups", CONV_SETTINGS)
def test_conv2d_kernel_matches_the_definition(xs, ws, stride, pads, dilation, groups):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=xs), rng.normal(size=ws)
    attrs = dict(stride=stride, pads=pads, dilation=dilation, groups=groups)
    out = KERNELS["conv2d"](x, w, **attrs)
    assert_close(out, reference_conv(x, w, stride, pads, dilation, groups), rtol=1e-12, atol=1e-12)
    # the adjoints: <g, conv(x, w)> = <input_grad(g, w), x> = <weight_grad(x, g), w>
    g = rng.normal(size=out.shape)
    total = np.sum(g * out)
    np.testing.assert_allclose(np.sum(KERNELS["conv2d_input_grad"](g, w, x, **attrs) * x), total, rtol=1e-12)
    np.testing.assert_allclose(np.sum(KERNELS["conv2d_weight_grad"](x, g, w, **attrs) * w), total, rtol=1e-12)


def test_pool_kernels_match_the_definition():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 7, 6))
    kernel, stride, pads = (3, 2), (2, 1), (1, 0, 2, 1)
    xp_max = np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)), constant_values=-np.inf)
    xp_avg = np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)))
    ho, wo = (7 + 3 - 3) // 2 + 1, (6 + 1 - 2) // 1 + 1
    want_max, want_avg = np.zeros((2, 3, ho, wo)), np.zeros((2, 3, ho, wo))
    for p, q in itertools.product(range(ho), range(wo)):
        window = (slice(None), slice(None), slice(p * 2, p * 2 + 3), slice(q, q + 2))
        want_max[:, :, p, q] = xp_max[window].max(axis=(2, 3))
        want_avg[:, :, p, q] = xp_avg[window].mean(axis=(2, 3))       # padding counts as zeros
    attrs = dict(kernel=kernel, stride=stride, pads=pads)
    assert_close(KERNELS["max_pool2d"](x, **attrs), want_max, rtol=0, atol=0)
    assert_close(KERNELS["avg_pool2d"](x, **attrs), want_avg, rtol=1e-12, atol=1e-12)


def test_max_pool_gradient_goes_to_the_first_maximum_only():
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])          # a tie between two 3s in one window
    g = np.array([[[[5.0]]]])
    dx = KERNELS["max_pool2d_grad"](x, g, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0))
    np.testing.assert_array_equal(dx, [[[[0, 5], [0, 0]]]])


def reference_nd_conv(x, w, stride, pads, dilation):
    """The definition over any number of spatial axes, one output element at a time."""
    n = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[a], pads[n + a]) for a in range(n)])
    out_sizes = [(xp.shape[2 + a] - dilation[a] * (w.shape[2 + a] - 1) - 1) // stride[a] + 1 for a in range(n)]
    out = np.zeros((x.shape[0], w.shape[0], *out_sizes))
    for b, f, *p in itertools.product(range(x.shape[0]), range(w.shape[0]), *map(range, out_sizes)):
        for ch, *k in itertools.product(range(w.shape[1]), *map(range, w.shape[2:])):
            at = tuple(pi * s + ki * d for pi, ki, s, d in zip(p, k, stride, dilation))
            out[(b, f, *p)] += w[(f, ch, *k)] * xp[(b, ch) + at]
    return out


@pytest.mark.parametrize("xs,ws,stride,pads,dilation", [
    ((2, 3, 9), (4, 3, 3), (2,), (1, 2), (2,)),
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), (2, 1, 1), (1, 0, 1, 0, 1, 0), (1, 1, 2)),
])
def test_1d_and_3d_convolutions_match_the_definition(xs, ws, stride, pads, dilation):
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=xs), rng.normal(size=ws)
    attrs = dict(stride=stride, pads=pads, dilation=dilation, groups=1)
    out = KERNELS["conv2d"](x, w, **attrs)
    assert_close(out, reference_nd_conv(x, w, stride, pads, dilation), rtol=1e-12, atol=1e-12)
    g = rng.normal(size=out.shape)
    total = np.sum(g * out)
    np.testing.assert_allclose(np.sum(KERNELS["conv2d_input_grad"](g, w, x, **attrs) * x), total, rtol=1e-12)
    np.testing.assert_allclose(np.sum(KERNELS["conv2d_weight_grad"](x, g, w, **attrs) * w), total, rtol=1e-12)


def _reference_pool(x, kernel, stride, pads, dilation, reduce, fill):
    n = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[a], pads[n + a]) for a in range(n)], constant_values=fill)
    out_sizes = [(xp.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1 for a in range(n)]
    out = np.zeros(x.shape[:2] + tuple(out_sizes))
    for p in itertools.product(*map(range, out_sizes)):
        window = (slice(None), slice(None)) + tuple(
            slice(pi * s, pi * s + d * (k - 1) + 1, d) for pi, s, d, k in zip(p, stride, dilation, kernel))
        out[(slice(None), slice(None)) + p] = reduce(xp[window].reshape(x.shape[:2] + (-1,)), axis=-1)
    return out


@pytest.mark.parametrize("shape,kernel,stride,pads,dilation", [
    ((2, 3, 11), (3,), (2,), (2, 1), (2,)),
    ((1, 2, 7, 6), (2, 3), (1, 2), (1, 0, 0, 2), (3, 1)),
    ((1, 2, 5, 4, 6), (2, 2, 3), (2, 1, 2), (0, 1, 1, 1, 0, 0), (1, 2, 1)),
])
def test_dilated_nd_pools_and_the_max_pool_gradient(shape, kernel, stride, pads, dilation):
    rng = np.random.default_rng(4)
    x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape)     # no ties
    attrs = dict(kernel=kernel, stride=stride, pads=pads, dilation=dilation)
    want_max = _reference_pool(x, kernel, stride, pads, dilation, np.max, -np.inf)
    assert_close(KERNELS["max_pool2d"](x, **attrs), want_max, rtol=0, atol=0)
    assert_close(KERNELS["avg_pool2d"](x, **attrs), _reference_pool(x, kernel, stride, pads, dilation, np.mean, 0.0),
                 rtol=1e-12, atol=1e-12)
    # the gradient sends g to the element holding each window's maximum, summed where windows share it
    g = rng.normal(size=want_max.shape)
    want = np.zeros(x.size)
    for value, weight in zip(want_max.ravel(), g.ravel()):
        want[int(np.flatnonzero(x.ravel() == value)[0])] += weight
    assert_close(KERNELS["max_pool2d_grad"](x, g, **attrs), want.reshape(shape), rtol=1e-12, atol=1e-12)
    h = rng.normal(size=shape)
    assert_close(KERNELS["max_pool2d_select"](x, h, **attrs),
                 h.ravel()[[int(np.flatnonzero(x.ravel() == v)[0]) for v in want_max.ravel()]].reshape(want_max.shape),
                 rtol=0, atol=0)


def test_max_pool_gradient_of_a_window_holding_nan_goes_to_its_first_element():
    x = np.array([[[[1.0, np.nan], [3.0, 2.0]]]])
    dx = KERNELS["max_pool2d_grad"](x, np.array([[[[5.0]]]]), kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0))
    np.testing.assert_array_equal(dx, [[[[5, 0], [0, 0]]]])


def test_scatter_add_accumulates_repeated_indices():
    g = np.arange(8.0).reshape(4, 2)
    out = KERNELS["scatter_add"](g, np.array([1, 0, 1, 1]), np.zeros((3, 2)))
    np.testing.assert_array_equal(out, [[2, 3], [0 + 4 + 6, 1 + 5 + 7], [0, 0]])
