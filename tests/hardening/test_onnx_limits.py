"""Hostile ONNX files: sizes declared in the file are checked before anything is allocated."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import nngraph
from nngraph.onnx import importer


def model_of(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def import_error(tmp_path, model) -> str:
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(path))
    return str(info.value.render())


def x_to_y(op="Identity"):
    return ([helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


def test_initializer_dims_disagree_with_its_data(tmp_path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    w.dims[0] = 2**40
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of([helper.make_node("Add", ["x", "w"], ["y"])], ins, outs, [w]))
    assert "initializer: dims [1099511627776] need 1099511627776 values but it holds 2" in text


def test_raw_initializer_shorter_than_its_dims(tmp_path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], np.ones(4, np.float32).tobytes(), raw=True)
    w.raw_data = w.raw_data[:6]
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of([helper.make_node("Add", ["x", "w"], ["y"])], ins, outs, [w]))
    assert "dims [4] need 16 bytes but it holds 6" in text


def test_constant_of_shape_asking_for_terabytes(tmp_path):
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [2**20, 2**20])
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of([helper.make_node("ConstantOfShape", ["s"], ["y"])], ins, outs, [shape]))
    assert "ConstantOfShape: a ConstantOfShape of 1.09951e+12 elements, over the limit of 1e+08" in text


def range_of(start, limit, delta):
    """A Range whose bounds are Constant nodes (float initializers would be weights, not known)."""
    consts = [helper.make_node("Constant", [], [n], value=helper.make_tensor(n + "v", TensorProto.FLOAT, [], [v]))
              for n, v in (("a", start), ("b", limit), ("d", delta))]
    return consts + [helper.make_node("Range", ["a", "b", "d"], ["y"])]


def test_range_asking_for_terabytes(tmp_path):
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of(range_of(0.0, 1e12, 1.0), ins, outs))
    assert "Range: a Range of 1e+12 elements, over the limit of 1e+08" in text


def test_range_with_nan_bounds(tmp_path):
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of(range_of(0.0, float("nan"), 1.0), ins, outs))
    assert "Range: bounds that are not finite numbers" in text


def test_concat_of_twenty_thousand_inputs(tmp_path):
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of([helper.make_node("Concat", ["x"] * 20_000, ["y"], axis=0)], ins, outs))
    assert f"node `Concat` (Concat) has 20,000 inputs, more than nngraph imports ({importer.MAX_NODE_INPUTS:,})" in text


def test_empty_required_input_name(tmp_path):
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of([helper.make_node("Add", ["x", ""], ["y"])], ins, outs))
    assert "Add: its required input 1 (B) has an empty name" in text


def test_missing_required_attribute(tmp_path):
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of([helper.make_node("Concat", ["x", "x"], ["y"])], ins, outs))
    assert "Concat: no `axis` attribute, which Concat requires" in text


def test_too_many_inputs_for_the_op(tmp_path):
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of([helper.make_node("Relu", ["x", "x"], ["y"])], ins, outs))
    assert "Relu: 2 inputs, but Relu takes 1 to 1" in text


def test_too_many_nodes(tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "MAX_NODES", 3)
    ins, outs = x_to_y()
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Relu", ["b"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    text = import_error(tmp_path, model_of(nodes, ins, outs))
    assert "m.onnx has 4 nodes, more than nngraph imports (3)" in text


def test_initializer_whose_type_has_no_data(tmp_path):
    """Found by the fuzzer (bench/fuzz.py, onnx seed 100870): the data type changed, the values stayed
    in another field."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    w.data_type = TensorProto.INT64
    ins, outs = x_to_y()
    text = import_error(tmp_path, model_of([helper.make_node("Add", ["x", "w"], ["y"])], ins, outs, [w]))
    assert "initializer: dims [1] need 1 values but it holds 0" in text
