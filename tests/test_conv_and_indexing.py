"""Images, slicing and lookup from the language down: conv/pool kernels against a direct
(loop-over-everything) reference, NumPy indexing semantics for `x[...]`, split/concat/pad,
the conv2d and embedding layers of the standard library, a small CNN that trains, and every
one of these ops against onnxruntime (ONNX parity, op by op)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from conftest import assert_close, central_difference
import nngraph
from nngraph.autodiff import grad
from nngraph.ir import Graph, TensorType
from nngraph.runtime.data import Dataset
from nngraph.runtime.executor import Plan
from nngraph.runtime.kernels import KERNELS

def load_source(tmp_path, source: str, name: str = "m.nn"):
    path = tmp_path / name
    path.write_text(source)
    return nngraph.load(str(path))


# ================================================================ kernels against direct loops
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


# ================================================================ the language
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


CNN = """
model cnn {
    input img: [N, 1, 6, 6]
    target label: [N] int
    h = conv2d[4, 3, padding = 1, act = relu](img)
    h = max_pool2d(h, 2)
    h = conv2d[4, 3, padding = "same", act = relu](h)
    output logits = dense[2](flatten(h))
    loss = cross_entropy(logits, label)
}
train cnn {
    optimizer = adam(lr = 0.01)
}
"""


def _bars(n, seed=0):
    """Images with one bright bar, vertical (class 0) or horizontal (class 1), at a random place."""
    rng = np.random.default_rng(seed)
    img = rng.normal(scale=0.1, size=(n, 1, 6, 6)).astype(np.float32)
    label = rng.integers(0, 2, n)
    where = rng.integers(0, 6, n)
    for k in range(n):
        if label[k]:
            img[k, 0, where[k], :] += 1
        else:
            img[k, 0, :, where[k]] += 1
    return img, label


def test_a_small_cnn_trains(tmp_path):
    model = load_source(tmp_path, CNN)
    img, label = _bars(64)
    result = model.train(data=Dataset({"img": img, "label": label}), epochs=30, batch=16, seed=0, progress=False)
    test_img, test_label = _bars(200, seed=1)
    logits = model.run(result.params, {"img": test_img})["logits"]
    assert (logits.argmax(-1) == test_label).mean() >= 0.95


# ================================================================ ONNX (per-op parity: tests/test_onnx_export.py)
def test_gather_and_scatter_add_with_negative_indices_in_onnxruntime():
    """Negative indices count from the end, in the kernels and in the exported graph."""
    import onnxruntime as ort
    from nngraph.onnx_export import to_onnx
    g = Graph("lookup")
    table = g.add_input("table", TensorType("float32", (4, 3)))
    ids = g.add_input("ids", TensorType("int64", ("N", 2)))
    rows = g.add_input("rows", TensorType("float32", ("N", 2, 3)))
    g.outputs["picked"], = g.apply("gather", [table, ids], {"axis": 0})
    g.outputs["added"], = g.apply("scatter_add", [rows, ids, table], {"axis": 0})
    feeds = {"table": np.arange(12, dtype=np.float32).reshape(4, 3), "ids": np.array([[-1, 0], [3, -4]]),
             "rows": np.ones((2, 2, 3), np.float32)}
    ours = Plan(g).run(feeds)
    np.testing.assert_array_equal(ours["picked"], feeds["table"][feeds["ids"]])
    np.testing.assert_array_equal(ours["added"][:, 0], [2, 0, 0, 2])       # -4 is row 0, -1 and 3 are row 3
    session = ort.InferenceSession(to_onnx(g, {}).SerializeToString(), providers=["CPUExecutionProvider"])
    picked, added = session.run(["picked", "added"], feeds)
    np.testing.assert_array_equal(picked, ours["picked"])
    np.testing.assert_array_equal(added, ours["added"])
