"""Shape subgraphs evaluated on import: Shape -> Gather -> Mul/Div -> Concat -> Reshape chains with a
dynamic batch (as PyTorch exports multi-head attention) type as symbolic sizes and run like
onnxruntime; dropout's Range over Size(x) is covered in test_import_training.py."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from nngraph.onnx.importer import import_onnx
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import run_ort


def ints(name, values):
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def heads_model():
    """x[N, 6, 8] -> split into 2 heads: [N*2, 6, 4] with the batch read at run time, then back."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Gather", ["s", "one"], ["t"], axis=0),
        helper.make_node("Gather", ["s", "two"], ["d"], axis=0),
        helper.make_node("Mul", ["n", "heads"], ["nh"]),
        helper.make_node("Div", ["d", "heads"], ["hd"]),
        helper.make_node("Unsqueeze", ["n", "axis0"], ["n1"]), helper.make_node("Unsqueeze", ["t", "axis0"], ["t1"]),
        helper.make_node("Unsqueeze", ["nh", "axis0"], ["nh1"]), helper.make_node("Unsqueeze", ["hd", "axis0"], ["hd1"]),
        helper.make_node("Concat", ["n1", "t1", "heads1", "hd1"], ["split_shape"], axis=0),
        helper.make_node("Reshape", ["x", "split_shape"], ["xs"]),
        helper.make_node("Transpose", ["xs"], ["xt"], perm=[0, 2, 1, 3]),
        helper.make_node("Concat", ["nh1", "t1", "hd1"], ["heads_shape"], axis=0),
        helper.make_node("Reshape", ["xt", "heads_shape"], ["per_head"]),
        helper.make_node("Mul", ["per_head", "per_head"], ["sq"]),
        helper.make_node("Concat", ["n1", "heads1", "t1", "hd1"], ["back_shape"], axis=0),
        helper.make_node("Reshape", ["sq", "back_shape"], ["back"]),
    ]
    inits = [helper.make_tensor("zero", TensorProto.INT64, [], [0]), helper.make_tensor("one", TensorProto.INT64, [], [1]),
             helper.make_tensor("two", TensorProto.INT64, [], [2]), helper.make_tensor("heads", TensorProto.INT64, [], [2]),
             ints("axis0", [0]), ints("heads1", [2])]
    graph = helper.make_graph(nodes, "heads", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6, 8])],
                              [helper.make_tensor_value_info("per_head", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("back", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("n", [1, 3])
def test_a_reshape_to_sizes_computed_from_the_batch_types_and_runs(n):
    graph, _ = import_onnx(heads_model())
    assert str(graph.outputs["per_head"].type) == "float32[2*N, 6, 4]"
    assert str(graph.outputs["back"].type) == "float32[N, 2, 6, 4]"
    x = np.random.default_rng(n).normal(size=(n, 6, 8)).astype(np.float32)
    got = Plan(graph).run({"x": x}, {})
    want = run_ort(heads_model(), {"x": x})
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_expand_and_constant_of_shape_to_a_size_computed_at_run_time():
    """[batch * 2, 3]: a `fill` over the batch axis, reshaped flat, stands for the size 2*N."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Mul", ["n", "two"], ["n2"]),
        helper.make_node("Unsqueeze", ["n2", "axis0"], ["n21"]),
        helper.make_node("Concat", ["n21", "three"], ["target"], axis=0),
        helper.make_node("Expand", ["row", "target"], ["expanded"]),
        helper.make_node("ConstantOfShape", ["target"], ["ones"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("Add", ["expanded", "ones"], ["y"]),
    ]
    inits = [helper.make_tensor("zero", TensorProto.INT64, [], [0]), helper.make_tensor("two", TensorProto.INT64, [], [2]),
             ints("axis0", [0]), ints("three", [3]), helper.make_tensor("row", TensorProto.FLOAT, [1, 3], [1.0, 2.0, 3.0])]
    graph = helper.make_graph(nodes, "expand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    g, weights = import_onnx(model)
    assert str(g.outputs["y"].type) == "float32[2*N, 3]"
    for n in (1, 3):
        x = np.zeros((n, 4), np.float32)
        np.testing.assert_array_equal(Plan(g).run({"x": x}, weights)["y"], run_ort(model, {"x": x})["y"])


def test_pytorch_expand_with_minus_ones_and_a_reshape_to_batch_times_two():
    """`tok.expand(x.shape[0], -1, -1)` as the TorchScript exporter writes it (Equal to -1, Where),
    then `reshape(x.shape[0] * 2, -1)`: the -1 sized from the symbolic sizes."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axis0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_ones"], ["wanted"], axis=0),
        helper.make_node("Shape", ["wanted"], ["wanted_shape"]),
        helper.make_node("ConstantOfShape", ["wanted_shape"], ["ones"],
                         value=helper.make_tensor("v", TensorProto.INT64, [1], [1])),
        helper.make_node("Mul", ["ones", "minus_one"], ["negatives"]),
        helper.make_node("Equal", ["wanted", "negatives"], ["is_minus_one"]),
        helper.make_node("Where", ["is_minus_one", "ones", "wanted"], ["target"]),
        helper.make_node("Expand", ["tok", "target"], ["tokens"]),
        helper.make_node("Concat", ["tokens", "x"], ["joined"], axis=1),
        helper.make_node("Mul", ["n", "two"], ["n2"]),
        helper.make_node("Unsqueeze", ["n2", "axis0"], ["n21"]),
        helper.make_node("Concat", ["n21", "minus_one"], ["flat"], axis=0),
        helper.make_node("Reshape", ["joined", "flat"], ["y"]),
    ]
    inits = [helper.make_tensor("zero", TensorProto.INT64, [], [0]), helper.make_tensor("two", TensorProto.INT64, [], [2]),
             ints("axis0", [0]), ints("minus_ones", [-1, -1]), ints("minus_one", [-1]),
             helper.make_tensor("tok", TensorProto.FLOAT, [1, 1, 4], [1.0, 2.0, 3.0, 4.0])]
    graph = helper.make_graph(nodes, "expand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    g, weights = import_onnx(model)
    assert str(g.outputs["y"].type) == "float32[2*N, 12]"
    for n in (1, 3):
        x = np.random.default_rng(n).normal(size=(n, 5, 4)).astype(np.float32)
        np.testing.assert_array_equal(Plan(g).run({"x": x}, weights)["y"], run_ort(model, {"x": x})["y"])
