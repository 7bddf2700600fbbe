"""ONNX export: every op has a lowering, every exported model passes the full ONNX check, and
onnxruntime computes what the NumPy runtime computes — op by op, for every model (inference at two
sizes of its symbolic dims, gradients), and over five training steps with SGD and Adam."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

import nngraph
from nngraph.cli import main
from nngraph.diagnostics import NNError
from nngraph.ir import Graph, TensorType
from nngraph.ir.registry import OPS
from nngraph.onnx.export import OPSET, to_onnx
from nngraph.onnx.lower.registry import LOWERINGS
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import (
    model_feeds,
    model_variants,
    models_with_loss,
    ort_session,
    run_ort,
    training_steps_in_numpy_and_onnxruntime,
)
from tests.ops.cases import BINDINGS, all_cases, feeds_for, one_node_graph


def test_every_op_has_an_onnx_lowering():
    assert sorted(name for name in OPS if name not in LOWERINGS) == []


# ================================================================ op by op
PER_OP = [c for c in all_cases() if c.op != "scan"]


@pytest.mark.parametrize("case", PER_OP, ids=[c.id for c in PER_OP])
def test_op_parity_in_onnxruntime(case):
    """The op alone, at two sizes of each symbolic dim, in float32 (onnxruntime has no float64
    Conv, ConvTranspose or AveragePool)."""
    g = one_node_graph(case, "float32")
    sess, plan = ort_session(to_onnx(g, {})), Plan(g)
    for n in (2, 3):
        feeds = feeds_for(case, g, BINDINGS | {"N": n}, "float32", seed=n)
        want, got = plan.run(feeds), run_ort(sess, feeds)
        for key in want:
            assert got[key].shape == want[key].shape and got[key].dtype == want[key].dtype, key
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("dtype,rtol", [("float32", 1e-6), ("float64", 1e-14)])
@pytest.mark.parametrize("op", ["sigmoid", "softplus"])
def test_sigmoid_and_softplus_keep_their_relative_precision_in_the_tails(op, dtype, rtol):
    """Far below 0 both are about exp(x), tiny but not 0: the exported graph must keep every
    digit there too (onnxruntime's own Sigmoid returns 0 below about -17)."""
    g = Graph(op)
    g.outputs["y"] = g.apply(op, [g.add_input("x", TensorType(dtype, ("N",)))], {})[0]
    x = np.linspace(-80, 80, 321).astype(dtype)
    got = run_ort(ort_session(to_onnx(g, {})), {"x": x})["y"]
    x64 = x.astype(np.float64)
    want = np.exp(-np.logaddexp(0, -x64)) if op == "sigmoid" else np.logaddexp(0, x64)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)


# ================================================================ every model
@pytest.mark.parametrize("path,name", list(model_variants()), ids=lambda x: x)
def test_model_exports_and_matches_in_onnxruntime(tmp_path, path, name):
    model = nngraph.load(path, name)
    params = model.init(0)
    file = tmp_path / "m.onnx"
    model.export_onnx(str(file), params)
    proto = onnx.load(str(file))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == OPSET >= 18
    graph = model.compile(opt_level=1)
    assert [i.name for i in proto.graph.input] == [v.name for v in graph.inputs]
    assert [o.name for o in proto.graph.output] == list(graph.outputs)
    symbolic = {d.dim_param for i in proto.graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    assert symbolic == {d for v in graph.inputs for d in v.shape if isinstance(d, str)}
    sess, plan = ort_session(proto), Plan(graph)
    for n in (3, 7):                            # symbolic dims bound to two sizes
        feeds = model_feeds(graph, n, seed=n)
        want, got = plan.run(feeds, params), run_ort(sess, feeds)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("path,name", models_with_loss(), ids=lambda x: x)
def test_gradient_export_matches(tmp_path, path, name):
    model = nngraph.load(path, name)
    params = model.init(0)
    proto = model.export_onnx(str(tmp_path / "g.onnx"), params, grad=True)
    graph = model.compile(grad=True, opt_level=1)
    feeds = model_feeds(graph, 4)
    want, got = Plan(graph).run(feeds, params), run_ort(ort_session(proto), feeds)
    assert set(got) == set(want) and any(k.startswith("grad:") for k in got)
    for key in want:                            # float32 sums over a batch: a little looser
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("path", ["models/squiggle.nn", "models/iris.nn", "models/rnn.nn"])
def test_five_training_steps_in_onnxruntime_equal_five_in_numpy(tmp_path, path):
    """squiggle: SGD; iris: Adam; rnn: SGD through a Scan (backpropagation through time)."""
    model = nngraph.load(path)
    optimizer = model.train_config.optimizer
    proto = model.export_onnx(str(tmp_path / "step.onnx"), train=True)
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node)     # standard ONNX operators only
    params = model.init(0)
    ours, theirs = training_steps_in_numpy_and_onnxruntime(model, optimizer, proto, model.load_data().arrays, params, 5)
    for key in ours:
        np.testing.assert_allclose(theirs[key], ours[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert any(not np.allclose(ours[k], v) for k, v in params.items())       # the steps moved the weights


def test_cli_exports_inference_gradient_and_training_step(tmp_path, capsys):
    params = tmp_path / "w.npz"
    nngraph.save_npz(str(params), {k: v + 1 for k, v in nngraph.load("models/iris.nn").init(0).items()})
    for flags in ([], ["--grad"], ["--train"]):
        out = tmp_path / f"m{len(flags)}{''.join(flags)}.onnx"
        assert main(["compile", "models/iris.nn", "-o", str(out), "--params", str(params)] + flags) == 0
        onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "m0.onnx")).graph.initializer}
    np.testing.assert_allclose(weights["hidden.w"], nngraph.load("models/iris.nn").init(0)["hidden.w"] + 1)
    assert main(["compile", "models/iris.nn", "--train", "-o", str(tmp_path / "x.txt")]) == 2


def test_an_op_without_lowering_is_a_diagnostic_and_no_file(tmp_path, monkeypatch, capsys):
    monkeypatch.delitem(LOWERINGS, "relu")
    out = tmp_path / "m.onnx"
    assert main(["compile", "models/iris.nn", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error: cannot export `relu` to ONNX: the op has no ONNX lowering" in err
    assert "layers.nn:9:" in err and not out.exists()
    with pytest.raises(NNError, match="cannot export `relu`"):
        nngraph.load("models/iris.nn").export_onnx(str(out))


# ================================================================ negative indices
def test_gather_and_scatter_add_with_negative_indices_in_onnxruntime():
    """Negative indices count from the end, in the kernels and in the exported graph."""
    g = Graph("lookup")
    table = g.add_input("table", TensorType("float32", (4, 3)))
    ids = g.add_input("ids", TensorType("int64", ("N", 2)))
    rows = g.add_input("rows", TensorType("float32", ("N", 2, 3)))
    g.outputs["picked"], = g.apply("gather", [table, ids], {"axis": 0})
    g.outputs["added"], = g.apply("scatter_add", [rows, ids, table], {"axis": 0})
    feeds = {"table": np.arange(12, dtype=np.float32).reshape(4, 3), "ids": np.array([[-1, 0], [3, -4]]),
             "rows": np.ones((2, 2, 3), np.float32)}
    ours = Plan(g).run(feeds)
    np.testing.assert_array_equal(ours["picked"], feeds["table"][feeds["ids"]])
    np.testing.assert_array_equal(ours["added"][:, 0], [2, 0, 0, 2])       # -4 is row 0, -1 and 3 are row 3
    session = ort.InferenceSession(to_onnx(g, {}).SerializeToString(), providers=["CPUExecutionProvider"])
    picked, added = session.run(["picked", "added"], feeds)
    np.testing.assert_array_equal(picked, ours["picked"])
    np.testing.assert_array_equal(added, ours["added"])
