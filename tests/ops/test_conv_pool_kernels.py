"""The convolution, pooling and scatter kernels against a direct (loop-over-everything) reference
of their definition, and the adjoint identities of conv2d's two gradient kernels."""
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


def test_scatter_add_accumulates_repeated_indices():
    g = np.arange(8.0).reshape(4, 2)
    out = KERNELS["scatter_add"](g, np.array([1, 0, 1, 1]), np.zeros((3, 2)))
    np.testing.assert_array_equal(out, [[2, 3], [0 + 4 + 6, 1 + 5 + 7], [0, 0]])
