"""End to end: CLI train/run reproduce the Python API; the gradient graph is differentiable again."""
import tracemalloc

import numpy as np
import pytest

import nngraph
from nngraph.autodiff import grad
from nngraph.cli import main
from nngraph.ir import Graph, TensorType
from nngraph.ir.emit import Emitter
from nngraph.printer import format_graph
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.step import initial_state, train_step_graph
from nngraph.verify import verify


def test_cli_train_then_run_matches_python_api(tmp_path, capsys):
    weights, outputs = tmp_path / "w.npz", tmp_path / "out.npz"
    assert main(["train", "models/iris.nn", "--epochs", "20", "--seed", "0", "-o", str(weights)]) == 0
    assert main(["run", "models/iris.nn", "--params", str(weights), "-o", str(outputs)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "probs: float32[150, 3]" in printed

    model = nngraph.load("models/iris.nn")
    api = model.train(epochs=20, seed=0, progress=False)
    stored = nngraph.load_npz(str(weights))
    for name, value in api.params.items():
        np.testing.assert_array_equal(stored[name], value)
    cli_out = nngraph.load_npz(str(outputs))
    api_out = model.run(api.params)
    assert set(cli_out) == {"probs", "species"}
    np.testing.assert_array_equal(cli_out["probs"], api_out["probs"])
    np.testing.assert_array_equal(cli_out["species"], api_out["species"])


def test_run_with_input_file(tmp_path, capsys):
    np.save(tmp_path / "dose.npy", np.array([[0.25], [0.75]]))
    assert main(["run", "models/squiggle.nn", "--input", f"dose={tmp_path / 'dose.npy'}",
                 "-o", str(tmp_path / "o.npz")]) == 0
    assert nngraph.load_npz(str(tmp_path / "o.npz"))["efficacy"].shape == (2, 1)


def test_running_a_model_without_data_asks_for_its_inputs(capsys):
    assert main(["run", "models/gpt.nn", "--model-name", "generate"]) == 1
    err = capsys.readouterr().err
    line = open("models/gpt.nn").read().splitlines().index("model generate {") + 2
    assert f"models/gpt.nn:{line}:5: error: model `generate` has no `train generate {{ data = ... }}` block" in err
    assert "--input NAME=FILE.npy: prompt, uniform, temperature, top_k, top_p" in err


def test_symbolic_batch_runs_at_two_sizes():
    model = nngraph.load("models/iris.nn")
    params = model.init(0)
    for n in (1, 7):
        assert model.run(params, {"x": np.ones((n, 4))})["probs"].shape == (n, 3)


def test_weights_are_written_atomically(tmp_path):
    path = tmp_path / "w.npz"
    nngraph.save_npz(str(path), {"a": np.arange(3)})
    assert list(tmp_path.iterdir()) == [path]          # no temporary file left behind
    np.testing.assert_array_equal(nngraph.load_npz(str(path))["a"], np.arange(3))


def test_compiled_graphs_verify_and_print(tmp_path):
    model = nngraph.load("models/iris.nn")
    for graph in (model.graph, model.inference_graph(), model.grad_graph()):
        verify(graph)
    text = format_graph(model.grad_graph())
    assert "grad:hidden.w" in text and "backward" in text
    assert main(["compile", "models/iris.nn", "--grad", "-o", str(tmp_path / "g.txt")]) == 0
    assert (tmp_path / "g.txt").read_text().startswith("graph iris(")


def test_hessian_vector_product_of_squiggle_matches_finite_differences():
    """grad of grad: H v for the squiggle's loss w.r.t. its hidden weights, in float64."""
    model = nngraph.load("models/squiggle.nn", dtype="float64")
    g1 = grad(model.graph, wrt=["hidden.w"])                       # loss, grad:hidden.w
    v = g1.add_input("v", TensorType("float64", (1, 2)))
    e = Emitter(g1, role="forward")
    g1.outputs["gv"] = e("sum", e("mul", g1.outputs["grad:hidden.w"], v), axes=None)
    g1.loss = "gv"
    g2 = grad(g1, of="gv", wrt=["hidden.w"])
    verify(g2)

    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=p.shape) for k, p in zip(model.init(0), model.graph.params)}
    feeds = {"dose": np.array([[0.0], [0.5], [1.0]]), "observed": np.array([[0.0], [1.0], [0.0]]),
             "v": rng.normal(size=(1, 2))}
    hv = Plan(g2).run(feeds, params)["grad:hidden.w"]

    first = Plan(grad(model.graph, wrt=["hidden.w"]))
    eps = 1e-6

    def gradient_at(w):
        return first.run(feeds, params | {"hidden.w": w})["grad:hidden.w"]
    w = params["hidden.w"]
    numeric = (gradient_at(w + eps * feeds["v"]) - gradient_at(w - eps * feeds["v"])) / (2 * eps)
    np.testing.assert_allclose(hv, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(hv).max() > 1e-3          # a real curvature, not a vacuous zero


def test_layer_naming_sharing_and_imports(tmp_path):
    (tmp_path / "blocks.nn").write_text(
        "# a residual block\nlayer twice[units: int](x: [N, units]) -> [N, units] {\n"
        "    step = dense[units, tanh]\n    return x + step(step(x))\n}\n")
    (tmp_path / "m.nn").write_text(
        'import "blocks.nn"\nmodel m {\n    input x: [N, 3]\n    h = dense[4, relu](x)\n'
        "    cell = dense[4]\n    a = cell(h)\n    b = cell(a)\n    output y = twice[4](b)\n"
        "    output z = dense[2](dense[4](y))\n}\n")
    model = nngraph.load(str(tmp_path / "m.nn"))
    names = [p.name for p in model.graph.params]
    # assignment names the instance; a bound layer called twice has one set of weights
    assert names == ["h.w", "h.b", "cell.w", "cell.b", "y.step.w", "y.step.b", "dense1.w", "dense1.b", "z.w", "z.b"]
    matmuls = [n for n in model.graph.nodes if n.op == "matmul" and n.inputs[1].name == "cell.w"]
    assert len(matmuls) == 2
    out = model.run(model.init(0), {"x": np.ones((2, 3))})
    assert out["y"].shape == (2, 4) and out["z"].shape == (2, 2)


def test_shared_layer_called_with_other_widths_is_diagnosed(tmp_path):
    (tmp_path / "m.nn").write_text(
        "model m {\n    input x: [N, 3]\n    input u: [N, 5]\n    cell = dense[4]\n"
        "    output y = cell(x) + cell(u)\n}\n")
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(tmp_path / "m.nn"))
    assert info.value.message == ("layer `cell` shares its parameter `cell.w` of shape [3, 4] between calls, "
                                  "but this call needs [5, 4]")
    assert (info.value.span.line, info.value.span.column) == (5, 26)


def test_plan_without_freeing_keeps_every_intermediate_and_computes_the_same():
    g = Graph("chain")                               # ten elementwise steps on a 1 MB array
    x = g.add_input("x", TensorType("float32", (512, 512)))
    y = x
    for op in ["neg", "exp", "neg", "exp", "neg", "exp", "neg", "exp", "neg", "exp"]:
        y, = g.apply(op, [y])
    g.outputs["y"] = y
    freeing, keeping = Plan(g), Plan(g, free=False)
    # freeing, each step writes into its input, which dies there: one buffer for the whole chain
    assert (freeing.peak_live, keeping.peak_live) == (1, 10)
    feeds = {"x": np.random.default_rng(0).normal(size=(512, 512)).astype(np.float32)}
    np.testing.assert_array_equal(freeing.run(feeds)["y"], keeping.run(feeds)["y"])

    def peak_bytes(plan):                            # NumPy reports its buffers to tracemalloc
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            plan.run(feeds)
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    one = 512 * 512 * 4
    assert peak_bytes(freeing) < 2.5 * one < 9.5 * one < peak_bytes(keeping)

    model = nngraph.load("models/iris.nn")          # a whole training step: same numbers either way
    optimizer = model.train_config.optimizer
    step = train_step_graph(model.graph, optimizer, 2)
    feeds = {"x": np.ones((5, 4), np.float32), "label": np.arange(5) % 3} | initial_state(model.graph, optimizer)
    a, b = Plan(step).run(feeds, model.init(0)), Plan(step, free=False).run(feeds, model.init(0))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert Plan(step, free=False).peak_live > Plan(step).peak_live
