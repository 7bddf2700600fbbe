"""The import error lists every unsupported use, those downstream of another problem included: a
node that fails leaves a placeholder typed by ONNX shape inference, so the nodes after it import
and report their own problems, while errors its guessed type would cause are not reported."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from nngraph.onnx.context import UnsupportedONNX
from nngraph.onnx.importer import import_onnx


def make_model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def test_problems_downstream_of_another_problem_are_listed():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    nodes = [helper.make_node("LpNormalization", ["x"], ["a"], name="first", p=3),     # an unsupported op
             helper.make_node("Relu", ["a"], ["r"], name="fine"),                     # imports on the placeholder
             helper.make_node("Cast", ["r"], ["h"], name="half", to=TensorProto.FLOAT16),
             helper.make_node("Softmax", ["r"], ["s"], name="odd", flavour=3),
             helper.make_node("Reshape", ["r", "shape"], ["z"], name="zero", allowzero=1),
             helper.make_node("Add", ["r", "x"], ["sum"], name="add")]
    shape = numpy_helper.from_array(np.array([0, 4], np.int64), "shape")
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("s", "z", "sum")]
    outs.append(helper.make_tensor_value_info("h", TensorProto.FLOAT16, None))
    with pytest.raises(UnsupportedONNX) as info:
        import_onnx(make_model(nodes, [x], outs, [shape]))
    problems = {(p.op, p.reason, p.node) for p in info.value.problems}
    assert problems == {("LpNormalization", "not supported", "first"), ("Cast", "dtype float16", "half"),
                        ("Softmax", "attribute flavour", "odd"),
                        ("Reshape", "allowzero=1 with a 0 in the shape", "zero")}
    assert "4 unsupported uses of 4 ONNX ops" in info.value.message


def test_a_placeholder_of_unknown_type_stops_the_chain_quietly():
    """Without a type from shape inference (a custom domain), the readers are skipped, not misreported."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    nodes = [helper.make_node("Mystery", ["x"], ["a"], name="custom", domain="example.org"),
             helper.make_node("Reshape", ["a", "shape"], ["z"], name="after")]
    shape = numpy_helper.from_array(np.array([-1], np.int64), "shape")
    model = make_model(nodes, [x], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [shape])
    model.opset_import.append(helper.make_opsetid("example.org", 1))
    with pytest.raises(UnsupportedONNX) as info:
        import_onnx(model)
    assert [(p.op, p.reason) for p in info.value.problems] == [("example.org.Mystery", "not supported")]


def test_a_shape_computed_from_a_placeholder_is_not_blamed():
    """Reshape to a shape that a failed node computed: the failure is the one problem listed."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("BitShift", ["s", "s"], ["t"], name="shift", direction="LEFT"),
             helper.make_node("Reshape", ["x", "t"], ["z"], name="reshape")]
    model = make_model(nodes, [x], [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    with pytest.raises(UnsupportedONNX) as info:
        import_onnx(model)
    assert [p.node for p in info.value.problems] == ["shift"] and not info.value.static_inputs
