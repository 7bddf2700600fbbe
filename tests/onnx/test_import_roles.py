"""Float initializers sorted by role on import (nngraph/onnx/roles.py): literals an exporter stored
as initializers (ReLU6's Clip bounds, an attention scale, a -inf mask) are constants, weights are
parameters, and `trainable=` / `--trainable` lists what is trained instead."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nngraph
from nngraph.cli import main
from nngraph.diagnostics import NNError
from nngraph.onnx.importer import import_onnx
from nngraph.onnx.roles import initializer_roles
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import assert_close, run_ort


def relu6_model():
    """x[N, 3] -> MatMul W -> Add b [1 unit: shape [1]] -> Clip(lo, hi) -> * scale -> + mask -> loss."""
    rng = np.random.default_rng(0)
    inits = {"W": rng.normal(size=(3, 1)) * 4, "b": np.array([0.5]), "lo": np.array(0.0), "hi": np.array(6.0),
             "scale": np.array(0.125), "mask": np.array([[0.0], [-np.inf], [0.0]])}
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["pre"]),
             helper.make_node("Clip", ["pre", "lo", "hi"], ["h"]), helper.make_node("Mul", ["h", "scale"], ["y"]),
             helper.make_node("Add", ["y", "mask"], ["masked"]), helper.make_node("Max", ["masked", "y"], ["kept"]),
             helper.make_node("Sub", ["kept", "t"], ["r"]), helper.make_node("Mul", ["r", "r"], ["r2"]),
             helper.make_node("ReduceSum", ["r2"], ["loss"], keepdims=0)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [3, 3]),
              helper.make_tensor_value_info("t", TensorProto.DOUBLE, [3, 1])]
    outputs = [helper.make_tensor_value_info("kept", TensorProto.DOUBLE, [3, 1]),
               helper.make_tensor_value_info("loss", TensorProto.DOUBLE, [])]
    graph = helper.make_graph(nodes, "relu6", inputs, outputs,
                              initializer=[numpy_helper.from_array(v.astype(np.float64), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def feeds():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 3))
    x[0] *= 10                  # one row above 6 and one below 0: both bounds are active
    x[1] *= -10
    return {"x": x, "t": rng.normal(size=(3, 1))}


def test_literals_are_constants_and_weights_are_parameters():
    roles = initializer_roles(relu6_model())
    assert roles == {"W": "weight", "b": "weight", "lo": "constant", "hi": "constant", "scale": "constant",
                     "mask": "constant"}
    graph, weights = import_onnx(relu6_model())
    assert sorted(weights) == ["W", "b"] and sorted(p.name for p in graph.params) == ["W", "b"]


def test_one_sgd_step_leaves_relu6_bounds_unchanged(tmp_path):
    path = str(tmp_path / "relu6.onnx")
    onnx.save(relu6_model(), path)
    model = nngraph.load(path)
    params, f = model.init(), feeds()
    grads = Plan(model.grad_graph(of="loss")).run(f, params)
    assert set(grads) >= {"grad:W", "grad:b"} and not {"grad:lo", "grad:hi"} & set(grads)
    stepped = {k: v - 0.1 * grads[f"grad:{k}"] for k, v in params.items()}
    got = model.run(stepped, f)
    # onnxruntime on the file with the stepped weights written in and its own bounds 0 and 6
    reference = relu6_model()
    for init in reference.graph.initializer:
        if init.name in stepped:
            init.CopyFrom(numpy_helper.from_array(stepped[init.name], init.name))
    want = run_ort(reference, f)
    for key in ("kept", "loss"):
        assert_close(got[key], want[key], rtol=1e-12, atol=1e-12, what=key)
    assert got["kept"].max() <= 6 * 0.125 and got["kept"].min() >= 0


def test_trainable_overrides_the_roles(tmp_path, capsys):
    everything, _ = import_onnx(relu6_model(), trainable=["*"])
    assert sorted(p.name for p in everything.params) == ["W", "b", "hi", "lo", "mask", "scale"]
    bounds, _ = import_onnx(relu6_model(), trainable=["lo", "hi"])
    assert sorted(p.name for p in bounds.params) == ["hi", "lo"]
    with pytest.raises(NNError, match="names no float initializer of the model: nothing"):
        import_onnx(relu6_model(), trainable=["nothing"])
    path = str(tmp_path / "relu6.onnx")
    onnx.save(relu6_model(), path)
    assert main(["check", path]) == 0
    default = capsys.readouterr().out
    assert main(["check", path, "--trainable", "W,b,lo,hi"]) == 0
    assert "2 parameter tensors" in default and "4 parameter tensors" in capsys.readouterr().out
