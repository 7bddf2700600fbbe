"""Symbolic dimensions in normal form (nngraph/ir/dims.py): derived sizes cancel and collect, so
equal sizes compare equal in .nn files and on ONNX import, and the normal form keeps the value."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from nngraph.ir import TensorType, dims
from nngraph.onnx.importer import import_onnx
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import concrete_dim, load_source


@pytest.mark.parametrize("written,normal", [
    ("(4*4*N)/(16)", "N"), ("H+2-2", "H"), ("T*N", "N*T"), ("2*N+N", "3*N"), ("N-N", 0),
    ("(6*N)/(4)", "(3*N)/(2)"), ("(N*T*4)/(T*2)", "2*N"), ("(2*N+3)//2", "N+1"), ("H-3+1", "H-2"),
    ("(H-1)//2+1", "(H-1)//2+1"), ("(H+1)//2*2", "2*((H+1)//2)"), ("-((H+1)//2)", "-((H+1)//2)"),
    ("a+b*(c-d)", "b*c+a-b*d"), ("N-T", "N-T"), ("T-N", "T-N"), ("((H+1)//2+1)//1", "(H+1)//2+1"),
])
def test_normal_form(written, normal):
    assert dims.normalize(written) == normal
    assert dims.normalize(normal) == normal          # idempotent


def test_arithmetic_cancels_and_collects():
    assert dims.mul("(3*N)/(2)", 2) == "3*N" and dims.mul("N", 4, "T") == "4*N*T" and dims.mul(2, 3) == 6
    assert dims.divide(dims.mul("4*N", 4), 16) == "N" and dims.divide("N*T", "T") == "N"
    assert dims.add("H+2", -2) == "H" and dims.floordiv("2*H+4", 2) == "H+2"


def test_types_hold_the_normal_form():
    assert TensorType("float32", ("(4*4*N)/(16)", "T+1-1")).shape == ("N", "T")
    assert TensorType("float32", ("N", "2*N+N")) == TensorType("float32", ("N", "3*N"))


_SYMBOLS = ("N", "T", "H")


def _expressions():
    leaf = st.one_of(st.sampled_from(_SYMBOLS), st.integers(0, 6).map(str))

    def grow(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from("+-*"), inner).map(lambda t: f"({t[0]}){t[1]}({t[2]})"),
            st.tuples(inner, st.integers(1, 4)).map(lambda t: f"({t[0]})//{t[1]}"),
            st.tuples(inner, st.integers(1, 4)).map(lambda t: f"(({t[0]})*{t[1]})/({t[1]})"))
    return st.recursive(leaf, grow, max_leaves=8)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_expressions(), st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)))
def test_the_normal_form_keeps_the_value(expr, sizes):
    bindings = dict(zip(_SYMBOLS, sizes))
    normal = dims.normalize(expr)
    assert np.isclose(concrete_dim(normal, bindings), concrete_dim(expr, bindings))
    assert dims.normalize(normal) == normal


RESHAPES = """
model m {
    input x: [N, 16]
    a = reshape(x, [-1, 4])
    output y = reshape(a, [-1, 16])
    output z = y + x
}
"""


def test_reshape_back_types_as_the_original_in_a_nn_file(tmp_path):
    model = load_source(tmp_path, RESHAPES)
    assert str(model.graph.outputs["y"].type) == "float32[N, 16]"
    x = np.arange(48, dtype=np.float32).reshape(3, 16)
    out = model.run(model.init(0), {"x": x})
    np.testing.assert_array_equal(out["z"], 2 * x)


def test_reshape_back_types_as_the_original_on_import():
    nodes = [helper.make_node("Reshape", ["x", "s4"], ["a"]), helper.make_node("Reshape", ["a", "s16"], ["y"]),
             helper.make_node("Add", ["y", "x"], ["z"])]
    inits = [helper.make_tensor("s4", TensorProto.INT64, [2], [-1, 4]),
             helper.make_tensor("s16", TensorProto.INT64, [2], [-1, 16])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 16])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    g, _ = import_onnx(model)
    assert str(g.outputs["z"].type) == "float32[N, 16]"
    x = np.ones((2, 16), np.float32)
    np.testing.assert_array_equal(Plan(g).run({"x": x}, {})["z"], 2 * x)


SIGNATURE = """
layer pair(x: [n, 4]) -> [2 * n, 2] {
    return reshape(x, [-1, 2])
}

model m {
    input x: [N, 4]
    output y = pair(x)
}
"""


def test_a_layer_signature_computes_with_symbolic_sizes(tmp_path):
    model = load_source(tmp_path, SIGNATURE)
    assert str(model.graph.outputs["y"].type) == "float32[2*N, 2]"


def test_a_layer_signature_with_the_wrong_symbolic_size_is_an_error(tmp_path):
    from nngraph.diagnostics import NNError
    with pytest.raises(NNError, match=r"the result of layer `pair` must have shape \[3 \* n, 2\] with n = N, "
                                      r"got float32\[2\*N, 2\]"):
        load_source(tmp_path, SIGNATURE.replace("[2 * n, 2]", "[3 * n, 2]"))
