"""ONNX ops imported as compositions of nngraph primitives: Trilu over a symbolic size (a causal
mask), LRN and InstanceNormalization (values against onnxruntime, gradients against float64
finite differences), ScatterElements on bool."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from nngraph.autodiff import grad
from nngraph.onnx.importer import import_onnx
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import assert_close, central_difference, run_ort


def one_node(op, inputs, out_dtype, inits=(), **attrs):
    node = helper.make_node(op, [name for name, *_ in inputs] + [i.name for i in inits], ["y"], **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info(n, d, s) for n, d, s in inputs],
                              [helper.make_tensor_value_info("y", out_dtype, None)], initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("upper,k", [(1, 0), (0, 0), (1, 1), (0, -1)])
def test_trilu_over_a_symbolic_size(upper, k):
    model = one_node("Trilu", [("x", TensorProto.FLOAT, ["B", "T", "T"])], TensorProto.FLOAT,
                     [numpy_helper.from_array(np.array(k, np.int64), "k")], upper=upper)
    graph, _ = import_onnx(model)
    assert str(graph.outputs["y"].type) == "float32[B, T, T]"
    for t in (1, 4):
        x = np.random.default_rng(t).normal(size=(2, t, t)).astype(np.float32)
        np.testing.assert_array_equal(Plan(graph).run({"x": x}, {})["y"], run_ort(model, {"x": x})["y"])


def _check_gradient(model, shape, reference=None):
    graph, weights = import_onnx(model)
    graph.outputs["loss"], = graph.apply("sum", [graph.outputs["y"]], {"axes": None})
    x = {"x": np.random.default_rng(0).normal(size=shape)}
    want = reference(x["x"]) if reference else run_ort(model, x)["y"]
    assert_close(Plan(graph).run(x, weights)["y"], want, rtol=1e-10, atol=1e-12, what="y")
    dx = Plan(grad(graph, of="loss", wrt=["x"])).run(x, weights)["grad:x"]
    numeric = central_difference(lambda f: Plan(graph).run(f, weights)["loss"], x, "x")
    assert_close(dx, numeric, rtol=1e-6, atol=1e-8, what="grad:x")


def test_lrn_runs_like_onnxruntime_and_differentiates():
    """onnxruntime has LRN in float32 only: the float64 values against ONNX's formula, written out."""
    model = one_node("LRN", [("x", TensorProto.DOUBLE, [2, 5, 3, 2])], TensorProto.DOUBLE,
                     size=3, alpha=0.5, beta=0.75, bias=2.0)

    def reference(x):
        window = np.stack([(x[:, max(0, c - 1):c + 2] ** 2).sum(axis=1) for c in range(x.shape[1])], axis=1)
        return x / (2.0 + 0.5 / 3 * window) ** 0.75
    _check_gradient(model, (2, 5, 3, 2), reference)
    model32 = one_node("LRN", [("x", TensorProto.FLOAT, [2, 5, 3, 2])], TensorProto.FLOAT, size=5)
    x = {"x": np.random.default_rng(2).normal(size=(2, 5, 3, 2)).astype(np.float32)}
    assert_close(Plan(import_onnx(model32)[0]).run(x, {})["y"], run_ort(model32, x)["y"], rtol=1e-6, atol=1e-7)


def test_instance_normalization_runs_like_onnxruntime_and_differentiates():
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=3), "scale"), numpy_helper.from_array(rng.normal(size=3), "B")]
    model = one_node("InstanceNormalization", [("x", TensorProto.DOUBLE, [2, 3, 4, 2])], TensorProto.DOUBLE, inits,
                     epsilon=1e-3)
    scale, bias = (numpy_helper.to_array(i).reshape(3, 1, 1) for i in inits)

    def reference(x):           # onnxruntime has it in float32 only
        mean, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
        return scale * (x - mean) / np.sqrt(var + float(np.float32(1e-3))) + bias   # a float32 attribute
    _check_gradient(model, (2, 3, 4, 2), reference)


def test_scatter_elements_on_bool():
    model = one_node("ScatterElements", [("data", TensorProto.BOOL, [3, 3]), ("i", TensorProto.INT64, [2, 3]),
                                          ("u", TensorProto.BOOL, [2, 3])], TensorProto.BOOL, axis=1)
    graph, _ = import_onnx(model)
    feeds = {"data": np.eye(3, dtype=bool), "i": np.array([[0, 2, 1], [1, 0, 2]]),
             "u": np.array([[True, False, True], [False, True, False]])}
    got = Plan(graph).run(feeds, {})["y"]
    assert got.dtype == bool
    np.testing.assert_array_equal(got, run_ort(model, feeds)["y"])
