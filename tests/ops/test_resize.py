"""The resize kernel against onnx's reference implementation of Resize (onnx/reference/ops/
op_resize.py) over every mode, coordinate transformation and nearest rounding, and the adjoint
identity of its gradient kernel."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx.reference.ops.op_resize import Resize

from nngraph.ir.registry import ShapeError
from nngraph.ops.images import resize_shape
from nngraph.runtime.numpy.kernels.registry import KERNELS

COORDINATES = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]
CONFIGS = [(mode, coordinates, nearest, exclude, antialias)
           for mode, coordinates, nearest, exclude, antialias in itertools.product(
               ["nearest", "linear", "cubic"], COORDINATES,
               ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"], [0, 1], [0, 1])
           if (mode == "nearest" or nearest == "round_prefer_floor") and not (mode == "nearest" and antialias)]
SHAPES = [((1, 2, 4, 5), (1, 2, 8, 3)), ((2, 1, 3, 3), (2, 1, 7, 2)), ((1, 1, 5), (1, 1, 1)),
          ((1, 1, 2, 3, 4), (1, 1, 3, 2, 6))]


def reference(x, out_shape, scales=None, **attrs):
    sizes = None if scales is not None else np.array(out_shape)
    return Resize._run(None, x, None, scales, sizes, antialias=attrs.get("antialias", 0),
                       coordinate_transformation_mode=attrs["coordinates"], cubic_coeff_a=-0.75,
                       exclude_outside=attrs.get("exclude", 0), extrapolation_value=attrs.get("extrapolation", 0.0),
                       keep_aspect_ratio_policy="stretch", mode=attrs["mode"], nearest_mode=attrs["nearest"])[0]


def ours(x, out_shape, scales=None, **attrs):
    axes = tuple(range(2, x.ndim))
    scales = tuple(float(s) for s in scales[2:]) if scales is not None else tuple(out_shape[a] / x.shape[a] for a in axes)
    return KERNELS["resize"](x, axes=axes, sizes=tuple(out_shape[a] for a in axes), scales=scales,
                             mode=attrs["mode"], coordinates=attrs["coordinates"], nearest=attrs["nearest"],
                             exclude_outside=bool(attrs.get("exclude")), antialias=bool(attrs.get("antialias")),
                             roi=attrs.get("roi"), extrapolation=attrs.get("extrapolation", 0.0))


@pytest.mark.parametrize("mode,coordinates,nearest,exclude,antialias", CONFIGS)
def test_resize_matches_the_onnx_reference(mode, coordinates, nearest, exclude, antialias):
    rng = np.random.default_rng(0)
    for shape, out_shape in SHAPES:
        x = rng.normal(size=shape)
        attrs = dict(mode=mode, coordinates=coordinates, nearest=nearest, exclude=exclude, antialias=antialias)
        np.testing.assert_allclose(ours(x, out_shape, **attrs), reference(x, out_shape, **attrs), atol=1e-12,
                                   err_msg=f"{shape} -> {out_shape}")


def test_resize_by_scales_samples_where_the_scale_says():
    """A scale of 2.5 on 3 elements gives 7 outputs sampled at (o + 0.5) / 2.5 - 0.5, not at 7 / 3."""
    x = np.random.default_rng(1).normal(size=(1, 2, 3, 4))
    scales = np.array([1.0, 1.0, 2.5, 0.6])
    attrs = dict(mode="linear", coordinates="half_pixel", nearest="round_prefer_floor")
    np.testing.assert_allclose(ours(x, (1, 2, 7, 2), scales, **attrs), reference(x, None, scales, **attrs), atol=1e-12)


def test_tf_crop_and_resize_extrapolates_outside_the_region():
    x = np.random.default_rng(2).normal(size=(1, 1, 4, 5))
    roi = (0.0, 0.0, 0.4, 0.6, 1.0, 1.0, 1.2, 0.9)      # starts of every axis, then ends
    attrs = dict(mode="linear", coordinates="tf_crop_and_resize", nearest="round_prefer_floor", extrapolation=7.0)
    want = Resize._run(None, x, np.array(roi), None, np.array([1, 1, 3, 3]), antialias=0,
                       coordinate_transformation_mode="tf_crop_and_resize", cubic_coeff_a=-0.75, exclude_outside=0,
                       extrapolation_value=7.0, keep_aspect_ratio_policy="stretch", mode="linear",
                       nearest_mode="round_prefer_floor")[0]
    got = ours(x, (1, 1, 3, 3), roi=(0.4, 0.6, 1.2, 0.9), **attrs)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert (got == 7.0).any()


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_grad_is_the_adjoint(mode):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4, 5))
    attrs = dict(axes=(2, 3), sizes=(7, 3), scales=(7 / 4, 3 / 5), mode=mode, coordinates="half_pixel")
    y = KERNELS["resize"](x, **attrs)
    g = rng.normal(size=y.shape)
    np.testing.assert_allclose(np.sum(KERNELS["resize_grad"](g, x, **attrs) * x), np.sum(g * y), rtol=1e-12)


def test_resize_shape_rule_wants_known_sizes_on_resized_axes():
    assert resize_shape(("N", 3, 4, 4), dict(axes=(2, 3), sizes=(8, 8), scales=(2.0, 2.0)), "resize") == ("N", 3, 8, 8)
    with pytest.raises(ShapeError, match="known at compile time"):
        resize_shape(("N", 3, "H", 4), dict(axes=(2, 3), sizes=(8, 8), scales=(2.0, 2.0)), "resize")
    with pytest.raises(ShapeError, match="mode must be one of"):
        resize_shape((1, 3, 4, 4), dict(axes=(2,), sizes=(8,), scales=(2.0,), mode="bicubic"), "resize")
