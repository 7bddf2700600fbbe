"""A training step exported by nngraph imports back (issue 16): dropout's mask is Size, Range over
a run-time count, Mod and Where in ONNX, and the imported graph computes the step onnxruntime does."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from nngraph.cli import main
from nngraph.onnx.importer import import_onnx
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import assert_close, run_ort

DROPOUT_MODEL = """
model net {
    input x: [N, 4]
    target y: [N, 2]
    h = dense[8, relu](x)
    d = dropout(h, rate = 0.25)
    output out = dense[2](d)
    loss = ssr(out, y)
}

train net {
    data = csv("data.csv")
    optimizer = sgd(lr = 0.1)
    epochs = 2
}
"""


@pytest.fixture(scope="module")
def training_step(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dropout")
    (folder / "drop.nn").write_text(DROPOUT_MODEL)
    out = folder / "step.onnx"
    assert main(["compile", str(folder / "drop.nn"), "--train", "-o", str(out)]) == 0
    return onnx.load(str(out))


def test_the_exported_step_uses_mod_and_a_run_time_range(training_step):
    ops = {n.op_type for n in training_step.graph.node}
    assert {"Mod", "Range", "Size"} <= ops


@pytest.mark.parametrize("n", [1, 5])
def test_dropout_training_step_imports_and_matches_onnxruntime(training_step, n):
    graph, weights = import_onnx(training_step)
    assert [(v.name, str(v.type)) for v in graph.inputs] == [("x", "float32[N, 4]"), ("y", "float32[N, 2]")]
    rng = np.random.default_rng(n)
    feeds = {"x": rng.normal(size=(n, 4)).astype(np.float32), "y": rng.normal(size=(n, 2)).astype(np.float32)}
    plan = Plan(graph)
    for step in (0.0, 3.0):      # the mask changes with the step counter: both sides must draw the same
        params = dict(weights, step=np.asarray(step, np.float32))
        got = plan.run(feeds, params)
        want = run_ort(training_step, {**feeds, **params})
        assert set(want) <= set(got)
        for key in want:
            assert_close(got[key], want[key], rtol=1e-5, atol=1e-6, what=f"{key} step={step} N={n}")


def _mod_model(dtype, fmod):
    nodes = [helper.make_node("Mod", ["a", "b"], ["r"], fmod=fmod)]
    inputs = [helper.make_tensor_value_info(k, dtype, ["N", 3]) for k in "ab"]
    graph = helper.make_graph(nodes, "mod", inputs, [helper.make_tensor_value_info("r", dtype, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("dtype,fmod", [(TensorProto.INT64, 0), (TensorProto.INT64, 1), (TensorProto.INT32, 0),
                                        (TensorProto.FLOAT, 1), (TensorProto.DOUBLE, 1)])
def test_mod_imports_like_onnxruntime_for_ints_and_floats(dtype, fmod):
    """Negative dividends and divisors: fmod=0 takes the divisor's sign, fmod=1 the dividend's."""
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    a = np.array([[7, -7, 7], [-7, 5, -9], [0, 13, -13], [4, 8, -1]]).astype(np_dtype)
    b = np.array([[3, 3, -3], [-3, 2, 4], [5, -6, -6], [3, 5, 7]]).astype(np_dtype)
    if np_dtype.kind == "f":
        a, b = a * 1.25, b * 0.5
    model = _mod_model(dtype, fmod)
    graph, _ = import_onnx(model)
    got = Plan(graph).run({"a": a, "b": b}, {})["r"]
    want = run_ort(model, {"a": a, "b": b})["r"]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_float_mod_without_fmod_exports_the_divisors_sign():
    """ONNX Mod refuses fmod=0 on floats: the exporter writes it from fmod=1 and a shift."""
    from nngraph.ir import Graph, TensorType
    from nngraph.onnx.export import to_onnx
    g = Graph("m")
    a, b = g.add_input("a", TensorType("float64", ("N",))), g.add_input("b", TensorType("float64", ("N",)))
    g.outputs["r"], = g.apply("mod", [a, b], {"fmod": False})
    feeds = {"a": np.array([7.5, -7.5, 7.5, -7.5, 6.0, -0.0]), "b": np.array([2.0, 2.0, -2.0, -2.0, 3.0, 2.0])}
    got = run_ort(to_onnx(g, {}), feeds)["r"]
    np.testing.assert_array_equal(got, np.mod(feeds["a"], feeds["b"]))
    np.testing.assert_array_equal(Plan(g).run(feeds, {})["r"], np.mod(feeds["a"], feeds["b"]))
