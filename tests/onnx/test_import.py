"""ONNX import: a small MLP built with onnx.helper is checked, compiled, run (against onnxruntime)
and differentiated (against finite differences in float64); opset differences; one error listing
every unsupported op; inputs frozen with `constants`; the CLI; round trips through the exporter."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import nngraph
from nngraph.cli import main
from nngraph.diagnostics import NNError
from nngraph.ir import Graph, TensorType
from nngraph.onnx.context import UnsupportedONNX
from nngraph.onnx.export import to_onnx
from nngraph.onnx.importer import import_onnx
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import assert_close, central_difference, model_feeds, model_variants, models_with_loss


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
    nodes = [helper.make_node("LpPool", ["x"], ["c1"], name="pool1", kernel_shape=[2, 2]),
             helper.make_node("LpPool", ["c1"], ["c2"], name="pool2", kernel_shape=[2, 2]),
             helper.make_node("Floor", ["x"], ["f"], name="floor"),
             helper.make_node("Relu", ["f"], ["r"], name="after_floor"),       # downstream: not reported
             helper.make_node("Reshape", ["x", "shape"], ["z"], name="reshape", allowzero=1),
             helper.make_node("Softmax", ["x"], ["s"], name="odd", flavour=3),
             helper.make_node("Cast", ["x"], ["h"], name="half", to=TensorProto.FLOAT16)]
    shape = numpy_helper.from_array(np.array([0, 16], np.int64), "shape")
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("c2", "r", "z", "s")]
    outs.append(helper.make_tensor_value_info("h", TensorProto.FLOAT16, None))
    model = make_model(nodes, [x], outs, [shape])
    with pytest.raises(UnsupportedONNX) as info:
        import_onnx(model)
    message = info.value.message
    assert "LpPool: not supported (2 nodes: `pool1`, `pool2`)" in message
    assert "Floor: not supported (1 node: `floor`)" in message
    assert "Reshape: allowzero=1 with a 0 in the shape" in message
    assert "Softmax: attribute flavour" in message
    assert "Cast: dtype float16" in message
    assert "Relu" not in message
    assert {p.op for p in info.value.problems} == {"LpPool", "Floor", "Reshape", "Softmax", "Cast"}
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
ROUND_TRIPS = [(path, name, False) for path, name in model_variants()] + \
              [(path, name, True) for path, name in models_with_loss()]


# onnxruntime has no float64 kernels for these (tests/runtime/exclusions/onnxruntime.txt)
FLOAT32_ONLY_IN_ONNXRUNTIME = {"conv2d", "conv2d_input_grad", "conv2d_weight_grad", "avg_pool2d", "avg_pool2d_grad"}


@pytest.mark.parametrize("path,name,grad", ROUND_TRIPS, ids=lambda x: str(x))
def test_round_trip_export_import_export(tmp_path, path, name, grad):
    """.nn -> ONNX -> IR -> ONNX: onnxruntime on both files and the NumPy runtime on the imported
    graph agree with the NumPy runtime on the original, at two sizes of the symbolic dims."""
    model = nngraph.load(path, name)
    if not {n.op for n in model.graph.nodes} & FLOAT32_ONLY_IN_ONNXRUNTIME:
        # float64 where onnxruntime has the kernels: the comparison then sees the ops, not float32
        # rounding (a transformer's scores, its weights shifted by 0.1, differ by 1e-5 in float32)
        model = nngraph.load(path, name, dtype="float64")
    params = {k: v + 0.1 for k, v in model.init(0).items()}
    first = model.export_onnx(str(tmp_path / "a.onnx"), params, grad=grad)
    original = model.compile(grad=grad)
    imported = nngraph.load(str(tmp_path / "a.onnx"))
    assert [v.name for v in imported.graph.inputs] == [i.name for i in first.graph.input
                                                       if i.name not in {t.name for t in first.graph.initializer}]
    # the weights come back as the parameters, and nothing else does (literals are Constant nodes)
    assert sorted(p.name for p in imported.graph.params) == sorted(p.name for p in model.graph.params)
    second = imported.export_onnx(str(tmp_path / "b.onnx"))
    plan = Plan(original)
    rtol, atol = (1e-9, 1e-10) if model.graph.params[0].dtype == "float64" else \
        (1e-4, 1e-5) if grad else (1e-5, 1e-6)     # float32 sums over a batch: a little looser
    for n in (2, 5):
        f = model_feeds(original, n, seed=n)
        want = plan.run(f, params)
        runs = {"numpy (imported)": imported.run(None, f), "onnxruntime (first)": ort_run(first, f),
                "onnxruntime (second)": ort_run(second, f)}
        for label, got in runs.items():
            assert set(got) == set(want), label
            for key in want:
                assert_close(got[key], want[key], rtol=rtol, atol=atol, what=f"{label} {key} N={n}")


# ================================================================ Scan
def scan_rnn(reverse=False, dtype=TensorProto.DOUBLE, seed=0):
    """hs = Scan over xs[T, N, 3] carrying h[N, 2]: h' = tanh(x Wx + h Wh + b), yielding h'. The body
    reads Wx, Wh (initializers) and b (computed in the enclosing graph from b_half) by name;
    loss = sum((hs Wo)^2) + sum(final h)."""
    rng = np.random.default_rng(seed)
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    weights = {"Wx": rng.normal(size=(3, 2)), "Wh": rng.normal(size=(2, 2)), "b_half": rng.normal(size=2),
               "Wo": rng.normal(size=(2, 1))}
    inits = [numpy_helper.from_array(v.astype(np_dtype), k) for k, v in weights.items()]
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x", "Wx"], ["xw"]), helper.make_node("MatMul", ["h", "Wh"], ["hw"]),
         helper.make_node("Add", ["xw", "hw"], ["s"]), helper.make_node("Add", ["s", "b"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_next"]), helper.make_node("Identity", ["h_next"], ["y"])],
        "step", [helper.make_tensor_value_info("h", dtype, ["N", 2]),
                 helper.make_tensor_value_info("x", dtype, ["N", 3])],
        [helper.make_tensor_value_info("h_next", dtype, ["N", 2]), helper.make_tensor_value_info("y", dtype, ["N", 2])])
    direction = [int(reverse)]
    nodes = [helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.asarray(2, np_dtype))),
             helper.make_node("Mul", ["b_half", "two"], ["b"]),
             helper.make_node("Scan", ["h0", "xs"], ["h_last", "hs"], body=body, num_scan_inputs=1,
                              scan_input_directions=direction, scan_output_directions=direction),
             helper.make_node("MatMul", ["hs", "Wo"], ["out"]), helper.make_node("Mul", ["out", "out"], ["sq"]),
             helper.make_node("ReduceSum", ["sq"], ["a"], keepdims=0),
             helper.make_node("ReduceSum", ["h_last"], ["c"], keepdims=0),
             helper.make_node("Add", ["a", "c"], ["loss"])]
    inputs = [helper.make_tensor_value_info("h0", dtype, ["N", 2]),
              helper.make_tensor_value_info("xs", dtype, ["T", "N", 3])]
    outputs = [helper.make_tensor_value_info("hs", dtype, ["T", "N", 2]),
               helper.make_tensor_value_info("loss", dtype, [])]
    return make_model(nodes, inputs, outputs, inits)


def scan_feeds(t, n, seed=0):
    rng = np.random.default_rng(seed)
    return {"h0": rng.normal(size=(n, 2)) * 0.5, "xs": rng.normal(size=(t, n, 3))}


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_imports_as_a_scan_that_captures_the_enclosing_values(reverse):
    model = scan_rnn(reverse)
    graph, weights = import_onnx(model)
    scan, = [n for n in graph.nodes if n.op == "scan"]
    assert scan.attrs["reverse"] is reverse and (scan.attrs["n_carry"], scan.attrs["n_seq"]) == (1, 1)
    assert [v.name for v in scan.inputs[2:]] == ["Wx", "Wh", "b"]       # read by name from the enclosing graph
    plan = Plan(graph)
    for t, n in ((1, 1), (4, 3)):
        f = scan_feeds(t, n)
        got, want = plan.run(f, weights), ort_run(model, f)
        for key in want:
            assert_close(got[key], want[key], rtol=1e-12, atol=1e-12, what=f"{key} T={t} N={n}")


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_gradients_match_finite_differences_in_float64(tmp_path, reverse):
    """Backpropagation through time of an imported Scan: to the initializers the body reads, to
    the one computed outside it (b = 2 b_half), to the initial state and to the sequence."""
    path = tmp_path / "scan.onnx"
    onnx.save(scan_rnn(reverse), str(path))
    model = nngraph.load(str(path))
    f, params = scan_feeds(3, 2, seed=4), model.init()
    assert sorted(params) == ["Wh", "Wo", "Wx", "b_half"]
    loss_plan = Plan(model.inference_graph())
    grads = Plan(model.grad_graph(of="loss", wrt=sorted(params) + ["h0", "xs"])).run(f, params)
    for name in sorted(params):
        numeric = central_difference(lambda p: loss_plan.run(f, p)["loss"], params, name)
        assert_close(grads[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, what=name)
    for name in ("h0", "xs"):
        numeric = central_difference(lambda a: loss_plan.run(a, params)["loss"], f, name)
        assert_close(grads[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, what=name)


def test_a_scan_over_a_number_of_steps_round_trips_as_one():
    """nngraph exports `scan 3 steps` as an ONNX Scan over a dummy sequence the body never reads;
    it imports as a scan of 3 steps again."""
    g = Graph("steps")
    h0 = g.add_input("h0", TensorType("float64", ("B", 2)))
    w = g.add_input("w", TensorType("float64", (2, 2)))
    body = Graph("step")
    h, bw = body.add_input("h", h0.type), body.add_input("w", w.type)
    body.outputs["h"], = body.apply("tanh", [body.apply("matmul", [h, bw])[0]])
    body.outputs["y"] = body.outputs["h"]
    g.outputs["final"], g.outputs["ys"] = g.apply("scan", [h0, w], {"body": body, "n_carry": 1, "n_seq": 0,
                                                                    "reverse": False, "length": 3})
    proto = to_onnx(g, {})
    imported, _ = import_onnx(proto)
    scan, = [n for n in imported.nodes if n.op == "scan"]
    assert (scan.attrs["n_seq"], scan.attrs["length"]) == (0, 3) and len(scan.attrs["body"].inputs) == 2
    f = {"h0": np.random.default_rng(0).normal(size=(4, 2)), "w": np.random.default_rng(1).normal(size=(2, 2))}
    got, want = Plan(imported).run(f), Plan(g).run(f)
    for key in want:
        assert_close(got[key], want[key], rtol=1e-12, atol=0, what=key)


# ================================================================ ops against onnxruntime, symbolic sizes
F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def int64s(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def floats(name, shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).normal(size=shape).astype(np.float32), name)


# (id, nodes, inputs as (name, elem type, shape), initializers); every model's output is "y"
# (and "i" for MaxPool's indices); the onnx backend tests cover the static-shape cases
OP_CASES = [
    ("conv_groups_strides_dilations_bias", [helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[2, 1],
                                                             pads=[1, 0, 2, 1], dilations=[1, 2], group=2)],
     [("x", F32, ["N", 4, 7, 8])], [floats("w", (6, 2, 3, 2)), floats("b", (6,))]),
    ("conv_same_lower_symbolic_size", [helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER")],
     [("x", F32, ["N", 2, "H", "W"])], [floats("w", (3, 2, 2, 3))]),
    ("conv_1d", [helper.make_node("Conv", ["x", "w"], ["y"], strides=[2], pads=[1, 1])],
     [("x", F32, ["N", 2, 9])], [floats("w", (3, 2, 3))]),
    ("conv_transpose_output_padding_groups", [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 3],
                                                               output_padding=[1, 2], pads=[1, 0, 0, 1], group=2)],
     [("x", F32, ["N", 4, 3, 3])], [floats("w", (4, 3, 3, 3)), floats("b", (6,))]),
    ("conv_transpose_output_shape", [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 3],
                                                      output_shape=[8, 10])],
     [("x", F32, ["N", 1, 3, 3])], [floats("w", (1, 2, 3, 3))]),
    ("max_pool_ceil_indices_column_major", [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3, 2],
                                                             strides=[2, 2], pads=[1, 0, 0, 1], ceil_mode=1,
                                                             storage_order=1)],
     [("x", F32, ["N", 2, 6, 7])], []),
    ("max_pool_1d_indices", [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[3], strides=[2])],
     [("x", F32, ["N", 3, 8])], []),
    ("max_pool_same_upper_symbolic_size", [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3],
                                                            auto_pad="SAME_UPPER")],
     [("x", F32, ["N", 2, "H", "W"])], []),
    ("average_pool_exclude_pad_ceil", [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3],
                                                        strides=[2, 2], pads=[1, 1, 1, 0], ceil_mode=1)],
     [("x", F32, ["N", 2, 6, 7])], []),
    ("average_pool_include_pad_ceil", [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 3],
                                                        strides=[2, 2], pads=[1, 1, 0, 1], ceil_mode=1,
                                                        count_include_pad=1)],
     [("x", F32, ["N", 1, 5, 6])], []),
    ("average_pool_exclude_pad_symbolic_size", [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3],
                                                                 pads=[1, 1, 1, 1])],
     [("x", F32, ["N", 2, "H", "W"])], []),
    ("slice_symbolic_axis_reversed", [helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])],
     [("x", F32, ["N", 5])], [int64s("starts", [-1, 9223372036854775807]), int64s("ends", [-9223372036854775807, 1]),
                              int64s("axes", [0, 1]), int64s("steps", [-1, -2])]),
    ("slice_out_of_range_bounds", [helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])],
     [("x", F32, [6, "N"])], [int64s("starts", [-9]), int64s("ends", [-20]), int64s("axes", [0]),
                              int64s("steps", [-2])]),
    ("pad_modes_and_crop", [helper.make_node("Pad", ["x", "p1"], ["a"], mode="reflect"),
                            helper.make_node("Pad", ["a", "p2"], ["b"], mode="edge"),
                            helper.make_node("Pad", ["b", "p3"], ["c"], mode="wrap"),
                            helper.make_node("Pad", ["c", "p4", "v"], ["y"])],
     [("x", F32, ["N", 4, 5])], [int64s("p1", [0, 2, 0, 0, 3, 1]), int64s("p2", [1, 0, 2, 0, 1, 0]),
                                 int64s("p3", [0, 1, 3, 0, 2, 0]), int64s("p4", [0, -1, 1, 0, 0, -2]),
                                 numpy_helper.from_array(np.asarray(0.5, np.float32), "v")]),
    ("split_uneven_and_concat", [helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3),
                                 helper.make_node("Concat", ["c", "a", "b"], ["y"], axis=-1)],
     [("x", F32, ["N", 8])], []),
    ("gather_2d_indices_axis_1", [helper.make_node("Gather", ["x", "idx"], ["y"], axis=1)],
     [("x", F32, ["N", 5, 2])], [int64s("idx", [[0, -1, 2], [4, 4, 1]])]),
    ("scatter_elements_add_negative", [helper.make_node("ScatterElements", ["x", "idx", "u"], ["y"], axis=1,
                                                        reduction="add")],
     [("x", F32, ["N", 4]), ("idx", I64, ["N", 3]), ("u", F32, ["N", 3])], []),
    ("scatter_nd_rows", [helper.make_node("ScatterND", ["x", "idx", "u"], ["y"])],
     [("x", F32, [5, 3, 2]), ("u", F32, [2, 2])], [int64s("idx", [[4, 1], [-5, 2]])]),
    ("range_positions_and_size", [helper.make_node("Shape", ["x"], ["s"], start=1, end=2),
                                  helper.make_node("Squeeze", ["s", "zero"], ["t"]),
                                  helper.make_node("Range", ["start", "t", "one"], ["r"]),
                                  helper.make_node("Size", ["x"], ["n"]),
                                  helper.make_node("Mul", ["r", "n"], ["y"])],
     [("x", F32, [2, "T"])], [int64s("zero", [0]), int64s("start", 0), int64s("one", 1)]),
    ("shapes_read_at_run_time", [helper.make_node("Shape", ["x"], ["s"]),
                                 helper.make_node("Gather", ["s", "zero"], ["n"]),
                                 helper.make_node("Concat", ["n", "minus_one"], ["flat"], axis=0),
                                 helper.make_node("Reshape", ["x", "flat"], ["r"]),
                                 helper.make_node("Concat", ["n", "three"], ["shape"], axis=0),
                                 helper.make_node("ConstantOfShape", ["shape"], ["c"],
                                                  value=numpy_helper.from_array(np.asarray([2.0], np.float32))),
                                 helper.make_node("Expand", ["row", "shape"], ["e"]),
                                 helper.make_node("Add", ["c", "e"], ["ce"]),
                                 helper.make_node("Concat", ["r", "ce"], ["y"], axis=1)],
     [("x", F32, ["N", 2, 2])], [int64s("zero", [0]), int64s("minus_one", [-1]), int64s("three", [3]),
                                 floats("row", (1, 3))]),
    ("reduce_prod_keepdims", [helper.make_node("ReduceProd", ["x", "axes"], ["y"], keepdims=1)],
     [("x", F32, ["N", 3, 4])], [int64s("axes", [2, 1])]),
]


def op_case_feeds(inputs, n, seed):
    rng = np.random.default_rng(seed)
    sizes = {"N": n, "H": n + 4, "W": n + 5, "T": n + 1}
    feeds = {}
    for name, elem, shape in inputs:
        dims = [sizes.get(d, d) for d in shape]
        feeds[name] = rng.integers(-dims[1], dims[1], dims) if elem == I64 else \
            rng.normal(size=dims).astype(np.float32)
    return feeds


@pytest.mark.parametrize("case", OP_CASES, ids=[c[0] for c in OP_CASES])
def test_op_against_onnxruntime_at_two_sizes(case):
    _, nodes, inputs, inits = case
    outputs = sorted({o for n in nodes for o in n.output} & {"y", "i"})
    model = make_model(nodes, [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                       [helper.make_empty_tensor_value_info(o) for o in outputs], inits)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)     # the outputs' types
    graph, weights = import_onnx(model)
    plan = Plan(graph)
    for n in (1, 3):
        f = op_case_feeds(inputs, n, seed=n)
        got, want = plan.run(f, weights), ort_run(model, f)
        for key in outputs:
            assert got[key].dtype == want[key].dtype, key
            assert_close(got[key], want[key], rtol=1e-5, atol=1e-5, what=f"{key} N={n}")
