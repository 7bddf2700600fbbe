"""Images, slicing and lookup in the language: NumPy indexing semantics for `x[...]` (and its
gradient), split/concat/pad and the pooling builtins, "same" padding, and the conv2d and embedding
layers of the standard library."""
from __future__ import annotations

import numpy as np
import pytest

from nngraph.autodiff import grad
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import assert_close, central_difference, load_source

INDEXING = """
model m {
    input x: [N, T, 4]
    output a = x[:, -1]
    output b = x[1:3]
    output c = x[::-1]
    output d = x[..., 0]
    output e = x[0]
    output f = x[-1, ..., ::-2]
    output g = x[:, 1:, 1:3]
    output h = x[-2:, :-1, -1]
    output i = x[..., 1::2]
    output j = x[2, -2, 3]
}
"""
EXPECTED = {
    "a": lambda x: x[:, -1], "b": lambda x: x[1:3], "c": lambda x: x[::-1], "d": lambda x: x[..., 0],
    "e": lambda x: x[0], "f": lambda x: x[-1, ..., ::-2], "g": lambda x: x[:, 1:, 1:3],
    "h": lambda x: x[-2:, :-1, -1], "i": lambda x: x[..., 1::2], "j": lambda x: x[2, -2, 3],
}


def test_indexing_follows_numpy(tmp_path):
    model = load_source(tmp_path, INDEXING)
    types = {name: str(v.type) for name, v in model.graph.outputs.items()}
    assert types["a"] == "float32[N, 4]" and types["b"] == "float32[2, T, 4]" and types["c"] == "float32[N, T, 4]"
    assert types["d"] == "float32[N, T]" and types["e"] == "float32[T, 4]" and types["f"] == "float32[T, 2]"
    assert types["g"] == "float32[N, T-1, 2]" and types["h"] == "float32[2, T-1]" and types["j"] == "float32[]"
    x = np.arange(4 * 3 * 4, dtype=np.float32).reshape(4, 3, 4)
    out = model.run({}, {"x": x})
    for name, fn in EXPECTED.items():
        np.testing.assert_array_equal(out[name], fn(x), err_msg=name)


def test_dropping_an_axis_before_two_symbolic_sizes(tmp_path):
    """x[1] of [B, N, T]: no single reshape can name both N and T, so the axis moves to the end
    first (a transpose), then a reshape with 0s drops it."""
    model = load_source(tmp_path, "model m {\n    input x: [B, N, T]\n    output y = x[1]\n    output z = x[:, -1]\n}\n")
    assert [n.op for n in model.graph.nodes] == ["slice", "transpose", "reshape", "slice", "reshape"]
    assert str(model.graph.outputs["y"].type) == "float32[N, T]" and str(model.graph.outputs["z"].type) == "float32[B, T]"
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    out = model.run({}, {"x": x})
    np.testing.assert_array_equal(out["y"], x[1])
    np.testing.assert_array_equal(out["z"], x[:, -1])


def test_indexing_gradient_scatters_back(tmp_path):
    model = load_source(tmp_path, """
model m {
    input x: [N, 5]
    output y = x[:, ::-2] * x[:, 1:2] + x[..., -1:]
    loss = sum(y * y) + sum(x[:, 1] * x[:, 0])
}
""")
    G = grad(model.graph, wrt=["x"])
    x = np.random.default_rng(0).normal(size=(3, 5))
    dx = Plan(G).run({"x": x})["grad:x"]
    forward = Plan(model.graph)
    assert_close(dx, central_difference(lambda a: forward.run(a)["loss"], {"x": x}, "x", eps=1e-3),
                 rtol=1e-3, atol=1e-3)


def test_split_concat_pad_and_pooling_builtins(tmp_path):
    model = load_source(tmp_path, """
model m {
    input x: [N, 6]
    input img: [N, 2, 5, 5]
    a, b, c = split(x, 3, axis = -1)
    p, q = split(x, [1, 5], axis = 1)
    output joined = concat([c, a, b], axis = 1)
    output widths = concat([q, p], axis = -1)
    output padded = pad(x, [[1, 0], [2, 3]], value = -1)
    output padded_onnx_order = pad(x, [0, 1, 0, 2])
    output pooled = max_pool2d(img, 2)
    output pooled_pad = avg_pool2d(img, 3, stride = 2, padding = 1)
    output global = global_avg_pool(img)
    output flat = flatten(img)
}
""")
    types = {name: str(v.type) for name, v in model.graph.outputs.items()}
    assert types == {"joined": "float32[N, 6]", "widths": "float32[N, 6]", "padded": "float32[N+1, 11]",
                     "padded_onnx_order": "float32[N, 9]", "pooled": "float32[N, 2, 2, 2]",
                     "pooled_pad": "float32[N, 2, 3, 3]", "global": "float32[N, 2]", "flat": "float32[N, 50]"}
    rng = np.random.default_rng(0)
    x, img = rng.normal(size=(3, 6)).astype(np.float32), rng.normal(size=(3, 2, 5, 5)).astype(np.float32)
    out = model.run({}, {"x": x, "img": img})
    np.testing.assert_array_equal(out["joined"], np.concatenate([x[:, 4:], x[:, :2], x[:, 2:4]], axis=1))
    np.testing.assert_array_equal(out["widths"], np.concatenate([x[:, 1:], x[:, :1]], axis=1))
    np.testing.assert_array_equal(out["padded"], np.pad(x, ((1, 0), (2, 3)), constant_values=-1))
    np.testing.assert_array_equal(out["padded_onnx_order"], np.pad(x, ((0, 0), (1, 2))))
    np.testing.assert_allclose(out["global"], img.mean(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_array_equal(out["flat"], img.reshape(3, -1))
    np.testing.assert_array_equal(out["pooled"], img[:, :, :4, :4].reshape(3, 2, 2, 2, 2, 2).max(axis=(3, 5)))


@pytest.mark.parametrize("stride,size", [(1, 7), (1, 8), (2, 7), (2, 8), (3, 8)])
def test_same_padding(tmp_path, stride, size):
    model = load_source(tmp_path, f"""
model m {{
    input img: [N, 1, {size}, {size}]
    param w: [2, 1, 3, 3] ~ he
    output y = conv(img, w, stride = {stride}, padding = "same")
    output z = conv(img, w, dilation = 2, padding = "same")
}}
""")
    assert model.graph.outputs["y"].shape[2:] == (-(-size // stride),) * 2
    assert model.graph.outputs["z"].shape[2:] == (size, size)


def test_conv2d_and_embedding_layers(tmp_path):
    model = load_source(tmp_path, """
model m {
    input img: [N, 3, 8, 8]
    input ids: [N, 4] int
    h = conv2d[5, 3, padding = "same", act = relu](img)
    output features = conv2d[6, 3, stride = 2](h)
    output vectors = embedding[10, 7](ids)
}
""")
    assert {p.name: str(p.type) for p in model.graph.params} == {
        "h.w": "float32[5, 3, 3, 3]", "h.b": "float32[5]", "features.w": "float32[6, 5, 3, 3]",
        "features.b": "float32[6]", "vectors.table": "float32[10, 7]"}
    assert str(model.graph.outputs["features"].type) == "float32[N, 6, 3, 3]"
    assert str(model.graph.outputs["vectors"].type) == "float32[N, 4, 7]"
    values = model.init(0)
    assert 0.7 < values["features.w"].std() / np.sqrt(2 / 45) < 1.3      # He: std sqrt(2 / fan_in)
    ids = np.array([[0, 1, 9, 1]] * 2)
    out = model.run(values, {"img": np.zeros((2, 3, 8, 8), np.float32), "ids": ids})
    np.testing.assert_array_equal(out["vectors"], values["vectors.table"][ids])
