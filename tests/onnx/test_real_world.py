"""Models no one here wrote: PyTorch exports (tests/onnx/data, made by make_real_world.py with
PyTorch's reference values) and the onnx package's `light` zoo networks with random weights. Each
imports, computes what onnxruntime computes (within 1e-5 relative), and the PyTorch exports train
like PyTorch: the loss of each of 10 SGD steps matches PyTorch's recorded loss."""
import os

import numpy as np
import onnxruntime as ort
import pytest

import nngraph
from nngraph.onnx.importer import import_onnx
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.config import Optimizer
from tests.onnx.real_world import (
    DATA,
    LIGHT_ZOO,
    PYTORCH,
    light_zoo,
    pytorch_export,
    relative_error,
    sgd_losses,
)

TOLERANCE = 1e-5


def session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3          # old zoo files: warnings about initializers listed as inputs
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def batches(ref: dict) -> list[dict]:
    """The recorded batch, and for a model exported with a dynamic batch a second of another size."""
    out = [{"x": ref["in:x"], "target": ref["in:target"]}]
    if "batch2:x" in ref:
        out.append({"x": ref["batch2:x"], "target": ref["batch2:target"]})
    return out


@pytest.mark.parametrize("name", PYTORCH)
def test_pytorch_export_runs_like_onnxruntime_and_pytorch(name):
    path, ref = pytorch_export(name)
    graph, weights = import_onnx(path)
    plan, sess = Plan(graph), session(path)
    for feeds in batches(ref):
        ours = plan.run(feeds, weights)
        theirs = dict(zip(["y", "loss"], sess.run(["y", "loss"], feeds)))
        for out in ("y", "loss"):
            assert relative_error(ours[out], theirs[out]) <= TOLERANCE, (name, out)
    assert relative_error(plan.run(batches(ref)[0], weights)["y"], ref["out:y"]) <= TOLERANCE


@pytest.mark.parametrize("name", PYTORCH)
def test_pytorch_export_trains_like_pytorch(name):
    path, ref = pytorch_export(name)
    graph, weights = import_onnx(path)
    losses = sgd_losses(graph, weights, batches(ref)[0], float(ref["lr"]), len(ref["losses"]))
    np.testing.assert_allclose(losses, ref["losses"], rtol=1e-4)
    assert losses[-1] < losses[0]       # it learns: the check above is not comparing two constants


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_recurrent_exports_train_like_pytorch_in_onnxruntime(name):
    """The imported scans export again (as ONNX Scan, in the training step) and train in onnxruntime."""
    path, ref = pytorch_export(name)
    model = nngraph.load(path)
    model.graph.loss = "loss"
    step = model.train_step(Optimizer("sgd", {"lr": float(ref["lr"])}), backend="onnxruntime")
    params, state, losses = model.init(), step.initial_state(), []
    for _ in range(len(ref["losses"])):
        params, state, loss = step(params, state, batches(ref)[0])
        losses.append(loss)
    np.testing.assert_allclose(losses, ref["losses"], rtol=1e-4)


@pytest.mark.parametrize("name, cell", [("lstm", "lstm_cell[6]"), ("gru", "gru_cell[5]")])
def test_recurrent_exports_are_scans_over_cells(name, cell):
    """nn.LSTM's two layers and nn.GRU's two directions are one scan each, its body a cell."""
    graph, _ = import_onnx(pytorch_export(name)[0])
    scans = [n for n in graph.nodes if n.op == "scan"]
    assert len(scans) == 2
    for scan in scans:
        body = scan.attrs["body"]
        assert {body.scope_labels[n.scope] for n in body.nodes} == {cell}
    assert sorted(n.attrs["reverse"] for n in scans) == ([False, True] if name == "gru" else [False, False])


@pytest.mark.parametrize("name", LIGHT_ZOO)
def test_light_zoo_network_runs_like_onnxruntime(name):
    model, feeds = light_zoo(name)
    graph, weights = import_onnx(model)
    ours = Plan(graph).run(feeds, weights)
    sess = session(model)
    names = [o.name for o in sess.get_outputs()]
    for out, theirs in zip(names, sess.run(names, feeds)):
        assert relative_error(ours[out], theirs) <= TOLERANCE, (name, out)
        assert np.std(theirs) > 0       # random weights: the outputs are not all one value


def test_every_export_in_the_data_folder_is_tested():
    files = {f[:-5] for f in os.listdir(DATA) if f.endswith(".onnx")}
    assert files == set(PYTORCH)
