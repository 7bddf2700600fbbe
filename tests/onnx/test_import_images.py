"""ONNX images beyond 2-d: a UNet-style upsampling block (Resize in the modes exporters write,
with a batch of any size), and 1-d and 3-d convolution and pooling with dilations, imported and
run by the NumPy runtime against onnxruntime; the imported block's gradient graph runs too."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, checker, helper, numpy_helper

from nngraph.autodiff import grad
from nngraph.onnx.importer import import_onnx
from nngraph.runtime.numpy.executor import Plan


def _model(nodes, x_shape, y_shape, weights, opset=18):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.normal(size=shape) * 0.5).astype(np.float32), name)
             for name, shape in weights.items()]
    graph = helper.make_graph(nodes, "images", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    checker.check_model(model, full_check=True)
    return model


def _matches_onnxruntime(model, batch_sizes, spatial):
    graph, weights = import_onnx(model)
    plan = Plan(graph)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for n in batch_sizes:
        x = rng.normal(size=(n,) + spatial).astype(np.float32)
        ours, theirs = plan.run({"x": x}, weights)["y"], session.run(["y"], {"x": x})[0]
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    return graph, weights


def up_block(mode: str, coordinates: str):
    """x [N, 2, 8, 8] -> conv 3x3 -> relu -> max pool 2 -> resize x2 -> concat with x -> conv 3x3."""
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    nodes = [
        helper.make_node("Constant", [], ["scales"], value=scales),
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["low"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Resize", ["low", "", "scales"], ["up"], mode=mode, coordinate_transformation_mode=coordinates,
                         nearest_mode="floor"),
        helper.make_node("Concat", ["x", "up"], ["joined"], axis=1),
        helper.make_node("Conv", ["joined", "w2"], ["y"], pads=[1, 1, 1, 1]),
    ]
    return _model(nodes, ["N", 2, 8, 8], ["N", 2, 8, 8], {"w1": (4, 2, 3, 3), "b1": (4,), "w2": (2, 6, 3, 3)})


@pytest.mark.parametrize("mode,coordinates", [("linear", "half_pixel"), ("linear", "pytorch_half_pixel"),
                                              ("linear", "align_corners"), ("nearest", "asymmetric")])
def test_unet_upsampling_block_imports_and_differentiates(mode, coordinates):
    graph, weights = _matches_onnxruntime(up_block(mode, coordinates), [1, 3], (2, 8, 8))
    assert any(n.op == "resize" for n in graph.nodes)
    # d(sum(y * r))/d(w1) reaches the first convolution through resize's gradient: against a
    # central difference along a random direction (float32: a loose tolerance)
    rng = np.random.default_rng(2)
    x, r = rng.normal(size=(2, 2, 8, 8)).astype(np.float32), rng.normal(size=(2, 2, 8, 8)).astype(np.float32)
    r_value = graph.add_input("r", graph.outputs["y"].type.with_shape(("N", 2, 8, 8)))
    weighted, = graph.apply("mul", [graph.outputs["y"], r_value], {})
    graph.outputs["loss"], = graph.apply("sum", [weighted], {})
    plan = Plan(grad(graph, "loss", ["w1"]))
    dw1 = plan.run({"x": x, "r": r}, weights)["grad:w1"]
    direction, step = rng.normal(size=dw1.shape).astype(np.float32), 1e-3

    def loss(w1):
        return float(plan.run({"x": x, "r": r}, dict(weights, w1=w1))["loss"])
    numeric = (loss(weights["w1"] + step * direction) - loss(weights["w1"] - step * direction)) / (2 * step)
    np.testing.assert_allclose(np.sum(dw1 * direction), numeric, rtol=2e-2)


def test_1d_convolution_and_dilated_pooling_import():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[2, 1], strides=[1], dilations=[2]),
        helper.make_node("MaxPool", ["c"], ["m"], kernel_shape=[3], strides=[2], dilations=[2], pads=[1, 1]),
        helper.make_node("AveragePool", ["m"], ["y"], kernel_shape=[2], pads=[1, 0], count_include_pad=0),
    ]
    _matches_onnxruntime(_model(nodes, ["N", 3, 16], ["N", 4, None], {"w": (4, 3, 3)}), [2], (3, 16))


def test_3d_convolution_and_pooling_import():
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 0, 1, 1, 0, 1], strides=[1, 2, 1]),
        helper.make_node("MaxPool", ["c"], ["m"], kernel_shape=[2, 2, 2], dilations=[1, 1, 2], ceil_mode=1),
        helper.make_node("AveragePool", ["m"], ["y"], kernel_shape=[2, 1, 2], strides=[1, 1, 2], count_include_pad=1,
                         pads=[0, 0, 1, 1, 0, 0]),
    ]
    _matches_onnxruntime(_model(nodes, ["N", 2, 5, 7, 6], ["N", 3, None, None, None], {"w": (3, 2, 3, 3, 2), "b": (3,)}),
                         [1, 2], (2, 5, 7, 6))
