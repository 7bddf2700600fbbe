"""The fused layers (layer norm, attention, GELU, erf) compute what their unfused formulas compute,
in values and in gradients, as the standard library uses them; their misuse is a diagnostic; the
NumPy kernels' fast paths (the bit-mask `where`, the float32 erf) are exact or within their bound.
The per-op gradient and parity checks are the shared case table's (tests/ops/cases.py)."""
import math

import numpy as np
import pytest

import nngraph
from nngraph.onnx.export import to_onnx
from nngraph.runtime.numpy.kernels import elementwise as elementwise_kernels
from nngraph.runtime.numpy.kernels.elementwise import erf
from nngraph.runtime.numpy.kernels.elementwise import where as select

# Each model computes a fused layer (`fused`) and the same formula written out (`formula`); the
# loss weights both by the fed `r`, so the gradient of each parameter is checked as well.
LAYER_NORM = """
layer by_formula[eps: float = 1e-5](x: [..., d]) -> [..., d] {
    param gain: [d] = 1
    param bias: [d] = 0
    centred = x - mean(x, axis = -1, keepdims = true)
    variance = mean(centred * centred, axis = -1, keepdims = true)
    return centred / sqrt(variance + eps) * gain + bias
}
model m {
    input x: [N, 5, 6]
    input r: [N, 5, 6]
    norm = layer_norm[0.01]
    plain = by_formula[0.01]
    output fused = norm(x)
    output formula = plain(x)
    loss = sum((fused + formula) * r)
}
"""

ATTENTION = """
layer by_formula(q: [..., tq, dk], k: [..., tk, dk], v: [..., tk, dv], mask) {
    return softmax((q @ swap_axes(k)) * dk ** -0.5 + mask, axis = -1) @ v
}
model m {
    input q: [N, 2, 5, 4]
    input k: [N, 2, 5, 4]
    input v: [N, 2, 5, 3]
    input ids: [N, 5] int
    input r: [N, 2, 5, 3]
    mask = causal_mask(reshape(q[:, 0], [0, 5, 4])) + padding_mask(ids)     # [N, 1, 5, 5]
    output fused = attention(q, k, v, mask)
    output formula = by_formula(q, k, v, mask)
    output unmasked = attention(q, k, v, 0)
    output unmasked_formula = by_formula(q, k, v, 0)
    loss = sum((fused + formula + unmasked + unmasked_formula) * r)
}
"""

GELU = """
model m {
    input x: [N, 7]
    input r: [N, 7]
    output exact = gelu(x)
    output exact_formula = 0.5 * x * (1 + erf(x / sqrt(2.0)))
    output approx = gelu_tanh(x)
    output tanh_formula = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    loss = sum((exact + exact_formula + approx + tanh_formula) * r)
}
"""


def _load(tmp_path, source: str, dtype: str = "float64"):
    path = tmp_path / "m.nn"
    path.write_text(source)
    return nngraph.load(str(path), dtype=dtype)


def _feeds(model, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in model.graph.inputs:
        shape = [3 if not isinstance(d, int) else d for d in v.type.shape]
        if v.type.is_float:
            feeds[v.name] = rng.standard_normal(shape).astype(v.dtype)
        else:
            ids = rng.integers(0, 3, shape)
            ids[:, 0] = 1               # every query sees at least its first key: no all-masked row
            feeds[v.name] = ids
    return feeds


@pytest.mark.parametrize("source,pairs", [
    (LAYER_NORM, [("fused", "formula")]),
    (ATTENTION, [("fused", "formula"), ("unmasked", "unmasked_formula")]),
    (GELU, [("exact", "exact_formula"), ("approx", "tanh_formula")]),
], ids=["layer_norm", "attention", "gelu"])
def test_fused_layer_computes_its_formula(tmp_path, source, pairs):
    model = _load(tmp_path, source)
    params = model.init(0)
    feeds = _feeds(model)
    out = model.run(params, {k: v for k, v in feeds.items() if k != "r"})
    for fused, formula in pairs:
        np.testing.assert_allclose(out[fused], out[formula], rtol=1e-10, atol=1e-12)
    fused_ops = {n.op for n in model.compile(opt_level=1).nodes}
    assert fused_ops & {"layer_norm", "attention", "gelu"}, fused_ops


def test_layer_norm_parameter_gradients_match_the_formula(tmp_path):
    model = _load(tmp_path, LAYER_NORM)
    params = {k: np.random.default_rng(1).standard_normal(v.shape) for k, v in model.init(0).items()}
    params["plain.gain"], params["plain.bias"] = params["norm.gain"], params["norm.bias"]
    graph = model.compile(grad=True, opt_level=2)
    out = nngraph.runtime.get("numpy").compile(graph)(_feeds(model), params)
    grads = {k: v for k, v in out.items() if k != "loss"}
    by_param = {name: [v for k, v in grads.items() if name in k] for name in ("norm.gain", "plain.gain",
                                                                                 "norm.bias", "plain.bias")}
    assert all(len(v) == 1 for v in by_param.values()), list(grads)
    np.testing.assert_allclose(by_param["norm.gain"][0], by_param["plain.gain"][0], rtol=1e-9)
    np.testing.assert_allclose(by_param["norm.bias"][0], by_param["plain.bias"][0], rtol=1e-9)


def test_attention_with_a_head_size_known_only_at_run_time(tmp_path):
    """q's last axis is a symbol: 1/sqrt(dk) is read at run time (the builtin emits the formula)."""
    model = _load(tmp_path, """
model m {
    input q: [N, 4, D]
    input k: [N, 4, D]
    input v: [N, 4, 2]
    output y = attention(q, k, v, 0)
    output want = softmax((q @ swap_axes(k)) * 0.5, axis = -1) @ v
}
""")
    assert "attention" not in {n.op for n in model.graph.nodes}
    rng = np.random.default_rng(0)
    feeds = {"q": rng.standard_normal((2, 4, 4)), "k": rng.standard_normal((2, 4, 4)), "v": rng.standard_normal((2, 4, 2))}
    out = model.run(model.init(0), feeds)           # D = 4: the scale is 1/2
    np.testing.assert_allclose(out["y"], out["want"], rtol=1e-12)


@pytest.mark.parametrize("call,column,message", [
    ('gelu(x, approximate = "fast")', 38, 'argument `approximate` of `gelu` is "none" or "tanh", got'),
    ("dot_product_attention(x, x, x, scale = x)", 55, "argument `scale` of `dot_product_attention` must be a number"),
    ("dot_product_attention(x, x, y)", 16, "`attention` needs as many keys as values"),
    ("layer_normalize(x, y, y)", 16, "`layer_norm`'s gain is [d] = [4]"),
    ("layer_normalize(x, z, z, eps = 2)", 47, "argument `eps` of `layer_normalize` must be a number in [0, 1)"),
])
def test_misuse_is_a_diagnostic(tmp_path, call, column, message):
    source = f"model m {{\n    input x: [N, 3, 4]\n    input y: [N, 2, 3]\n    input z: [4]\n    output o = {call}\n}}\n"
    path = tmp_path / "bad.nn"
    path.write_text(source)
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(path))
    assert message in info.value.message
    assert info.value.span.line == 5
    assert info.value.span.column == column


def test_float32_models_export_layer_norm_as_one_onnx_op_and_gelu_through_erf(tmp_path):
    model = _load(tmp_path, LAYER_NORM, dtype="float32")
    ops = [n.op_type for n in to_onnx(model.compile(opt_level=1), model.init(0)).graph.node]
    assert "LayerNormalization" in ops
    gelu = _load(tmp_path, GELU, dtype="float32")
    assert "Erf" in [n.op_type for n in to_onnx(gelu.compile(opt_level=1), {}).graph.node]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_mask_where_is_exactly_numpys_where(dtype, monkeypatch):
    monkeypatch.setattr(elementwise_kernels, "BIT_MASK_FROM", 1)     # the bit masks even on small arrays
    rng = np.random.default_rng(0)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -3.5], dtype)
    for c_shape, a_shape, b_shape in [((7,), (7,), ()), ((3, 1), (1, 7), (3, 7)), ((2, 7), (7,), (2, 1))]:
        c = rng.random(c_shape) > 0.5
        a = np.broadcast_to(special, a_shape[:-1] + (7,)) if a_shape[-1:] == (7,) else rng.standard_normal(a_shape)
        a = np.ascontiguousarray(a, dtype)
        b = rng.standard_normal(b_shape).astype(dtype)
        for b_value in (b, np.zeros((), dtype), np.array(-0.0, dtype)):
            want, got = np.where(c, a, b_value), select(c, a, b_value)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got.view(f"i{got.itemsize}"), want.view(f"i{want.itemsize}"))


def test_float32_erf_is_within_its_bound_and_float64_is_exact():
    x = np.linspace(-7, 7, 20001)
    exact = np.array([math.erf(v) for v in x])
    assert np.abs(erf(x.astype(np.float32)) - exact).max() < 5e-7
    assert erf(x.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(erf(x), exact, rtol=1e-15, atol=1e-16)
