"""ONNX import: a small MLP built with onnx.helper is checked, compiled, run (against onnxruntime)
and differentiated (against finite differences in float64); opset differences; one error listing
every unsupported op; inputs frozen with `constants`; the CLI; round trips through the exporter."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import nngraph
from conftest import assert_close, central_difference
from nngraph.cli import main
from nngraph.diagnostics import NNError
from nngraph.onnx_import import UnsupportedONNX, import_onnx
from nngraph.runtime.executor import Plan


def make_model(nodes, inputs, outputs, initializers=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def ort_run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def mlp(dtype=TensorProto.DOUBLE, seed=0):
    """x[N, 3] -> tanh(x W1 + b1) -> Gemm(W2, b2) -> y[N, 1]; loss = mean((y - t)^2)."""
    rng = np.random.default_rng(seed)
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    weights = {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "W2": rng.normal(size=(1, 4)),
               "b2": rng.normal(size=1)}
    inits = [numpy_helper.from_array(v.astype(np_dtype), k) for k, v in weights.items()]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["xw"], name="fc1"),
        helper.make_node("Add", ["xw", "b1"], ["pre"], name="bias1"),
        helper.make_node("Tanh", ["pre"], ["h"], name="act"),
        helper.make_node("Gemm", ["h", "W2", "b2"], ["y"], name="fc2", transB=1),
        helper.make_node("Sub", ["y", "t"], ["r"]),
        helper.make_node("Mul", ["r", "r"], ["r2"]),
        helper.make_node("ReduceMean", ["r2"], ["loss"], keepdims=0),
    ]
    inputs = [helper.make_tensor_value_info("x", dtype, ["N", 3]), helper.make_tensor_value_info("t", dtype, ["N", 1])]
    outputs = [helper.make_tensor_value_info("y", dtype, ["N", 1]), helper.make_tensor_value_info("loss", dtype, [])]
    return make_model(nodes, inputs, outputs, inits)


def feeds(n=5, dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 3)).astype(dtype), "t": rng.normal(size=(n, 1)).astype(dtype)}


@pytest.fixture
def mlp_file(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp(), str(path))
    return str(path)


# ================================================================ import, run, differentiate
def test_mlp_imports_with_symbolic_batch_and_initializers_as_params(mlp_file):
    graph, weights = import_onnx(mlp_file)
    assert [(v.name, str(v.type)) for v in graph.inputs] == [("x", "float64[N, 3]"), ("t", "float64[N, 1]")]
    assert sorted(weights) == ["W1", "W2", "b1", "b2"] and sorted(p.name for p in graph.params) == sorted(weights)
    assert {graph.param_init[k].kind for k in weights} == {"value"}
    assert str(graph.outputs["y"].type) == "float64[N, 1]" and str(graph.outputs["loss"].type) == "float64[]"
    model = nngraph.load(mlp_file)
    for k, v in model.init(seed=123).items():          # the seed does not matter: the file holds the weights
        np.testing.assert_array_equal(v, weights[k])


@pytest.mark.parametrize("n", [1, 7])
def test_mlp_runs_like_onnxruntime(mlp_file, n):
    model = nngraph.load(mlp_file)
    f = feeds(n)
    want = ort_run(mlp(), f)
    got = model.run(None, f)
    for key in want:
        assert_close(got[key], want[key], rtol=1e-12, atol=1e-12, what=key)
    for level in (0, 1, 2):                            # the pass pipeline keeps the values
        out = Plan(model.compile(opt_level=level)).run(f, model.init())
        assert_close(out["y"], want["y"], rtol=1e-12, atol=1e-12, what=f"-O{level}")


def test_mlp_gradients_match_finite_differences_in_float64(mlp_file):
    model = nngraph.load(mlp_file)
    f, params = feeds(4), model.init()
    grad_plan = Plan(model.grad_graph(of="loss"))
    grads = grad_plan.run(f, params)
    loss_plan = Plan(model.inference_graph())
    for name in params:
        numeric = central_difference(lambda p: loss_plan.run(f, p)["loss"], params, name)
        assert_close(grads[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, what=name)
    # with respect to an input too
    dx = Plan(model.grad_graph(of="loss", wrt=["x"])).run(f, params)["grad:x"]
    numeric = central_difference(lambda a: loss_plan.run(a, params)["loss"], f, "x")
    assert_close(dx, numeric, rtol=1e-6, atol=1e-8, what="x")


def test_grad_of_needs_a_scalar_output(mlp_file):
    model = nngraph.load(mlp_file)
    with pytest.raises(NNError, match="no loss"):
        model.grad_graph()
    with pytest.raises(NNError, match="must be a float scalar"):
        model.grad_graph(of="y")
    with pytest.raises(NNError, match="no output `los`"):
        model.grad_graph(of="los")


# ================================================================ the command line
def test_cli_check_compile_run(mlp_file, tmp_path, capsys):
    assert main(["check", mlp_file]) == 0
    out = capsys.readouterr().out
    assert "input  x: float64[N, 3]" in out and "param  W1: float64[3, 4]  ~ value" in out
    for level in ("-O0", "-O1", "-O2"):
        assert main(["compile", mlp_file, level, "--print"]) == 0
        assert "return y = %" in capsys.readouterr().out
    assert main(["compile", mlp_file, "-o", str(tmp_path / "m.txt")]) == 0
    assert "graph mlp(" in (tmp_path / "m.txt").read_text()
    assert main(["compile", mlp_file, "-o", str(tmp_path / "m.dot")]) == 0
    assert "digraph" in (tmp_path / "m.dot").read_text()
    f = feeds(3)
    for k, v in f.items():
        np.save(tmp_path / f"{k}.npy", v)
    assert main(["run", mlp_file, "--input", f"x={tmp_path / 'x.npy'}", "--input", f"t={tmp_path / 't.npy'}",
                 "-o", str(tmp_path / "out.npz")]) == 0
    captured = capsys.readouterr()
    assert "seeded initial weights" not in captured.err
    got = nngraph.load_npz(str(tmp_path / "out.npz"))
    assert_close(got["y"], ort_run(mlp(), f)["y"], rtol=1e-12, atol=1e-12)


def test_cli_reports_an_unreadable_file(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf \xff\xff")
    assert main(["check", str(bad)]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.onnx")]) == 1


# ================================================================ errors: all of them at once
def test_every_unsupported_op_is_listed_in_one_error(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    w = numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"], name="conv1"),
             helper.make_node("Conv", ["c1", "w"], ["c2"], name="conv2"),
             helper.make_node("Floor", ["x"], ["f"], name="floor"),
             helper.make_node("Relu", ["f"], ["r"], name="after_floor"),       # downstream: not reported
             helper.make_node("Reshape", ["x", "shape"], ["z"], name="reshape", allowzero=1),
             helper.make_node("Softmax", ["x"], ["s"], name="odd", flavour=3),
             helper.make_node("Cast", ["x"], ["h"], name="half", to=TensorProto.FLOAT16)]
    shape = numpy_helper.from_array(np.array([0, 16], np.int64), "shape")
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("c2", "r", "z", "s")]
    outs.append(helper.make_tensor_value_info("h", TensorProto.FLOAT16, None))
    model = make_model(nodes, [x], outs, [w, shape])
    with pytest.raises(UnsupportedONNX) as info:
        import_onnx(model)
    message = info.value.message
    assert "Conv: not supported (2 nodes: `conv1`, `conv2`)" in message
    assert "Floor: not supported (1 node: `floor`)" in message
    assert "Reshape: allowzero=1 with a 0 in the shape" in message
    assert "Softmax: attribute flavour" in message
    assert "Cast: dtype float16" in message
    assert "Relu" not in message
    assert {p.op for p in info.value.problems} == {"Conv", "Floor", "Reshape", "Softmax", "Cast"}
    onnx.save(model, str(tmp_path / "bad.onnx"))
    assert main(["check", str(tmp_path / "bad.onnx")]) == 1
    err = capsys.readouterr().err
    assert "error: cannot import" in err and "hint: nngraph imports these ONNX ops:" in err


def test_a_shape_fed_at_run_time_must_be_frozen():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    s = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    model = make_model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [x, s],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(UnsupportedONNX, match="shape computed at run time") as info:
        import_onnx(model)
    assert info.value.static_inputs == ["shape"] and "constants=" in info.value.hint
    graph, _ = import_onnx(model, constants={"shape": np.array([-1, 4])})
    assert [v.name for v in graph.inputs] == ["x"] and graph.outputs["y"].shape == (6, 4)


# ================================================================ opset differences
def _softmax_model(opset, axis):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    return make_model([helper.make_node("Softmax", ["x"], ["y"], axis=axis),
                       helper.make_node("LogSoftmax", ["x"], ["z"], axis=axis)],
                      [x], [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3, 4]) for n in "yz"], opset=opset)


@pytest.mark.parametrize("opset,axis", [(11, 1), (11, 0), (11, 2), (13, 1), (13, -1)])
def test_softmax_axis_semantics_by_opset(opset, axis):
    """Before opset 13 Softmax normalizes over all axes from `axis` on (a 2-D view); since 13 over one."""
    model = _softmax_model(opset, axis)
    f = {"x": np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)}
    graph, w = import_onnx(model)
    got, want = Plan(graph).run(f, w), ort_run(model, f)
    for k in "yz":
        assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, what=f"{k} opset {opset} axis {axis}")


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_axes_as_attribute_or_input_by_opset(opset):
    """ReduceSum takes axes as an input from opset 13, ReduceMean/ReduceMax from 18; Unsqueeze and
    Squeeze from 13; before that they are attributes."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 1])
    axes1, axes2 = np.array([1], np.int64), np.array([2], np.int64)
    inits, nodes = [], []

    def axes_of(node_op, values, name):
        since = 13 if node_op in ("ReduceSum", "Unsqueeze", "Squeeze") else 18
        if opset >= since:
            inits.append(numpy_helper.from_array(values, name))
            return {"inputs": [name]}
        return {"attrs": {"axes": [int(a) for a in values]}}

    for op, out, values, extra in [("ReduceSum", "s", axes1, {"keepdims": 0}), ("ReduceMean", "m", axes1, {}),
                                   ("ReduceMax", "mx", axes1, {"keepdims": 1}), ("Squeeze", "sq", axes2, {}),
                                   ("Unsqueeze", "un", np.array([0, -1], np.int64), {})]:
        spec = axes_of(op, values, f"{out}_axes")
        nodes.append(helper.make_node(op, ["x"] + spec.get("inputs", []), [out], **extra, **spec.get("attrs", {})))
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("s", "m", "mx", "sq", "un")]
    model = make_model(nodes, [x], outs, inits, opset=opset)
    f = {"x": np.random.default_rng(0).normal(size=(5, 3, 1)).astype(np.float32)}
    graph, w = import_onnx(model)
    got, want = Plan(graph).run(f, w), ort_run(model, f)
    assert graph.outputs["un"].shape == (1, "N", 3, 1, 1) and graph.outputs["sq"].shape == ("N", 3)
    for k in want:
        assert_close(got[k], want[k], rtol=1e-5, atol=1e-6, what=f"{k} at opset {opset}")


def test_dims_without_names_get_fresh_symbols_and_names_are_sanitized():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch size", None, 2])
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [x],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    graph, _ = import_onnx(model)
    assert graph.inputs[0].shape == ("batch_size", "x_1", 2)
    out = Plan(graph).run({"x": -np.ones((2, 5, 2), np.float32)})["y"]
    assert out.shape == (2, 5, 2) and not out.any()


# ================================================================ round trips through the exporter
@pytest.mark.parametrize("path,grad", [("models/iris.nn", False), ("models/squiggle.nn", False),
                                       ("models/squiggle.nn", True), ("models/activations.nn:sigmoid", False)])
def test_round_trip_export_import_export(tmp_path, path, grad):
    """.nn -> ONNX -> IR -> ONNX: onnxruntime on both files and the NumPy runtime on the imported
    graph agree with the NumPy runtime on the original."""
    from conftest import model_feeds
    file, _, name = path.partition(":")
    model = nngraph.load(file, name or None)
    params = {k: v + 0.1 for k, v in model.init(0).items()}
    first = model.export_onnx(str(tmp_path / "a.onnx"), params, grad=grad)
    original = model.compile(grad=grad)
    imported = nngraph.load(str(tmp_path / "a.onnx"))
    assert [v.name for v in imported.graph.inputs] == [i.name for i in first.graph.input
                                                       if i.name not in {t.name for t in first.graph.initializer}]
    second = imported.export_onnx(str(tmp_path / "b.onnx"))
    for n in (2, 5):
        f = model_feeds(original, n, seed=n)
        want = Plan(original).run(f, params)
        runs = {"numpy (imported)": imported.run(None, f), "onnxruntime (first)": ort_run(first, f),
                "onnxruntime (second)": ort_run(second, f)}
        for label, got in runs.items():
            assert set(got) == set(want), label
            for key in want:
                assert_close(got[key], want[key], rtol=1e-5, atol=1e-6, what=f"{label} {key} N={n}")
