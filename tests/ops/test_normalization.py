"""Dropout and batch norm: the training graph is the model's graph, the inference graph has no
dropout and normalizes with the running statistics; the train step feeds the step counter (dropout
masks) and updates the running statistics as parameters it does not train. Checked against NumPy,
central differences, onnxruntime (both modes) and JAX. The ops alone are in tests/ops/cases.py."""
import numpy as np
import onnxruntime as ort
import pytest

import nngraph
from nngraph.autodiff import grad
from nngraph.diagnostics import NNError
from nngraph.ir import Graph, TensorType
from nngraph.ops.normalization import MODULUS, counter_hash
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.config import Optimizer
from nngraph.training.step import initial_state, new_name, train_step_graph, trainable
from tests.helpers import central_difference, load_source, run_ort, training_steps_in_numpy_and_onnxruntime

MODEL = """
model m {
    input x: [N, 3]
    target y: [N] int
    h = dense[8, tanh](x)
    h = batch_norm[momentum = 0.2](h)
    h = dropout(h, rate = 0.25)
    output logits = dense[2](h)
    output label = argmax(logits)
    loss = cross_entropy(logits, y)
}
"""


def mask_graph(shape, rate, seed, dtype="float32"):
    g = Graph("mask")
    like, step = g.add_input("like", TensorType(dtype, shape)), g.add_input("step", TensorType(dtype, ()))
    g.outputs["mask"] = g.apply("dropout_mask", [like, step], {"rate": rate, "seed": seed})[0]
    return g


def masks(graph, steps, run=None, shape=(64, 128), dtype="float32"):
    run = run or Plan(graph).run
    return [run({"like": np.zeros(shape, dtype), "step": np.asarray(s, dtype)}, {})["mask"] for s in steps]


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_keeps_1_minus_rate_and_scales_the_rest(rate):
    mask = masks(mask_graph((64, 128), rate, 0), [7])[0]
    kept = mask != 0
    assert abs(kept.mean() - (1 - rate)) < 0.01                  # 8192 draws: 4 standard deviations
    np.testing.assert_allclose(mask[kept], np.float32(1 / (1 - rate)))
    rows, cols = kept.mean(axis=1), kept.mean(axis=0)            # no row or column pattern
    assert rows.std() < 0.12 and cols.std() < 0.12


def test_masks_differ_by_step_and_seed_and_repeat_exactly():
    a, b = masks(mask_graph((64, 128), 0.5, 0), [0, 1])
    c, = masks(mask_graph((64, 128), 0.5, 1), [0])
    again, = masks(mask_graph((64, 128), 0.5, 0), [0])
    assert np.array_equal(a, again)
    for other in (b, c):
        assert 0.4 < np.mean((a != 0) != (other != 0)) < 0.6        # about independent
    # neighbouring elements are not correlated (a linear hash would leave a lattice)
    flat = a.reshape(-1) != 0
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.05


def test_counter_hash_never_overflows_int64():
    index = np.array([0, MODULUS - 1, 2**40], dtype=np.int64)
    step = np.int64(10**9)
    h = counter_hash(index, step, 2**20)
    exact = counter_hash(*(int(v) for v in (index[1], step)), 2**20)    # Python ints: no overflow at all
    assert h[1] == exact and np.all((0 <= h) & (h < MODULUS))


def test_masks_are_the_same_in_jax_and_onnxruntime():
    from nngraph.onnx.export import to_onnx
    graph = mask_graph(("N", 128), 0.3, 5)
    want = masks(graph, [0, 3, 1000])
    jax_run = nngraph.runtime.get("jax").compile(graph)
    assert all(np.array_equal(w, g) for w, g in zip(want, masks(graph, [0, 3, 1000], jax_run)))
    sess = ort.InferenceSession(to_onnx(graph, {}).SerializeToString(), providers=["CPUExecutionProvider"])
    got = [sess.run(None, {"like": np.zeros((64, 128), np.float32), "step": np.array(s, np.float32)})[0] for s in (0, 3, 1000)]
    assert all(np.array_equal(w, g) for w, g in zip(want, got))


def test_inference_graph_has_no_dropout_and_uses_running_statistics(tmp_path):
    model = load_source(tmp_path, MODEL)
    assert "step" in [v.name for v in model.graph.inputs]
    assert {"new:h.running_mean", "new:h.running_var"} <= set(model.graph.outputs)
    inference = model.compile(opt_level=1)
    ops = {n.op for n in inference.nodes}
    assert "dropout_mask" not in ops and "batch_norm" not in ops and "batch_norm_inference" in ops
    assert [v.name for v in inference.inputs] == ["x"] and set(inference.outputs) == {"logits", "label"}
    params = model.init(0)
    params["h.running_mean"], params["h.running_var"] = np.full(8, 0.5, np.float32), np.full(8, 2.0, np.float32)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    h = np.tanh(x @ params["h.w"] + params["h.b"])
    h = (h - 0.5) / np.sqrt(2.0 + 1e-5) * params["h.gain"] + params["h.bias"]
    want = h @ params["logits.w"] + params["logits.b"]
    got = model.run(params, {"x": x})["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.run(params, {"x": x[:1]})["logits"], want[:1], rtol=1e-5, atol=1e-6)


def batch(n=6, seed=1):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 3)), "y": rng.integers(0, 2, n)}


def test_gradient_with_dropout_and_batch_norm_matches_central_differences(tmp_path):
    (tmp_path / "m.nn").write_text(MODEL)
    model = nngraph.load(str(tmp_path / "m.nn"), dtype="float64")
    params, feeds = model.init(0), batch() | {"step": np.float64(3)}
    grads = Plan(grad(model.graph)).run(feeds, params)
    loss = Plan(model.graph)
    for name in ("h.w", "h.gain", "h.bias", "logits.w"):
        numeric = central_difference(lambda ps: loss.run(feeds, ps)["loss"], params, name)
        np.testing.assert_allclose(grads[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    assert not np.any(grads["grad:h.running_mean"])          # the statistics are not trained


def test_train_step_updates_running_statistics_and_draws_a_new_mask_each_step(tmp_path):
    (tmp_path / "m.nn").write_text(MODEL)
    model = nngraph.load(str(tmp_path / "m.nn"), dtype="float64")
    opt = Optimizer("sgd", {"lr": 0.1})
    assert [p.name for p in trainable(model.graph)] == ["h.w", "h.b", "h.gain", "h.bias", "logits.w", "logits.b"]
    state = initial_state(model.graph, opt)
    assert set(state) == {"step"}                       # dropout reads the counter, so plain SGD has one
    plan, data = Plan(train_step_graph(model.graph, opt, 1)), batch()
    params = model.init(0)
    losses = []
    for t in range(3):
        out = plan.run(data | state, params)
        h = np.tanh(data["x"] @ params["h.w"] + params["h.b"])
        for stat, value in (("running_mean", h.mean(0)), ("running_var", h.var(0))):
            np.testing.assert_allclose(out[new_name(f"h.{stat}")], 0.8 * params[f"h.{stat}"] + 0.2 * value, rtol=1e-12)
        losses.append(float(out["loss"]))
        params = {p: out[new_name(p)] for p in params}
        state = {"step": out["new:step"]}
    assert state["step"] == 3 and len(set(losses)) == 3


def test_onnx_parity_in_both_modes(tmp_path):
    model = load_source(tmp_path, MODEL + "train m { optimizer = adam(lr = 0.01) }\n")
    params = model.init(0)
    params["h.running_var"] = np.full(8, 1.5, np.float32)
    data = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in batch(7).items()}
    inference = model.export_onnx(str(tmp_path / "m.onnx"), params)
    ops = {n.op_type for n in inference.graph.node}
    assert "BatchNormalization" in ops and not ops & {"Dropout", "Mod", "ReduceMean"}
    np.testing.assert_allclose(run_ort(inference, {"x": data["x"]})["logits"], model.run(params, {"x": data["x"]})["logits"],
                               rtol=1e-5, atol=1e-6)
    opt = model.train_config.optimizer
    proto = model.export_onnx(str(tmp_path / "step.onnx"), params, train=True)
    ours, theirs = training_steps_in_numpy_and_onnxruntime(model, opt, proto, data, params, 4)
    for key in ours:
        np.testing.assert_allclose(theirs[key], ours[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert not np.allclose(ours["h.running_mean"], 0)


def test_jax_runs_the_training_step(tmp_path):
    model = load_source(tmp_path, MODEL)
    opt = Optimizer("adam", {"lr": 0.01})
    step_graph = train_step_graph(model.graph, opt, 2)
    data = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in batch(7).items()}
    runs = [Plan(step_graph).run, nngraph.runtime.get("jax").compile(step_graph)]
    finals = []
    for run in runs:
        params, state = model.init(0), initial_state(model.graph, opt)
        for _ in range(3):
            out = run(data | state, params)
            params = {p: out[new_name(p)] for p in params}
            state = {s: out[new_name(s)] for s in state}
        finals.append(params)
    for key in finals[0]:
        np.testing.assert_allclose(finals[1][key], finals[0][key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_fit_trains_and_evaluates_in_inference_mode(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] + x[:, 1] > 0).astype(np.int64))
    model = load_source(tmp_path, MODEL + 'train m {\n data = npz("d.npz")\n optimizer = adam(lr = 0.05)\n'
                                          ' epochs = 30\n batch = 16\n holdout = 0.25\n}\n')
    result = model.train(progress=False)
    assert result.history[-1] < result.history[0]
    assert not np.allclose(result.params["h.running_mean"], 0)          # updated by the training step
    assert result.holdout.accuracy >= 0.8


@pytest.mark.parametrize("line,message,col", [
    ("    h = dropout(h, rate = 1.5)", "argument `rate` of `dropout` must be a number in [0, 1)", 27),
    ("    h = batch_normalize(h, 1, 0, 0, 1)", "argument `running_mean` of `batch_normalize` must be a parameter", 34),
])
def test_misuse_is_a_diagnostic(tmp_path, line, message, col):
    source = MODEL.replace("    h = dropout(h, rate = 0.25)", line)
    with pytest.raises(NNError) as err:
        load_source(tmp_path, source)
    assert message in err.value.message
    assert (err.value.span.line, err.value.span.column) == (7, col)


LAYER_NORM = """
model m {
    input x: [N, 4]
    target y: [N, 4]
    output z = layer_norm(dense[4, tanh](x))
    loss = mse(z, y)
}
train m { optimizer = adamw(lr = 0.01) }
"""


def test_layer_norm_gradient_and_onnx_parity_in_both_modes(tmp_path):
    """layer_norm is written in .nn (dsl/stdlib/attention.nn): the same in training and inference,
    its gradient derived by autodiff; checked here as a layer."""
    (tmp_path / "m.nn").write_text(LAYER_NORM)
    model = nngraph.load(str(tmp_path / "m.nn"), dtype="float64")
    rng = np.random.default_rng(0)
    params, feeds = model.init(0), {"x": rng.normal(size=(5, 4)), "y": rng.normal(size=(5, 4))}
    params["z.gain"] = rng.normal(size=4)
    grads, loss = Plan(grad(model.graph)).run(feeds, params), Plan(model.graph)
    for name in ("z.gain", "z.bias", "dense1.w"):
        numeric = central_difference(lambda ps: loss.run(feeds, ps)["loss"], params, name)
        np.testing.assert_allclose(grads[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    model = load_source(tmp_path, LAYER_NORM)
    params = model.init(0)
    data = {k: v.astype(np.float32) for k, v in feeds.items()}
    inference = model.export_onnx(str(tmp_path / "m.onnx"), params)
    np.testing.assert_allclose(run_ort(inference, data)["z"], model.run(params, {"x": data["x"]})["z"], rtol=1e-5, atol=1e-6)
    opt = model.train_config.optimizer
    step = model.export_onnx(str(tmp_path / "step.onnx"), params, train=True)
    ours = Plan(train_step_graph(model.graph, opt, 1)).run(data | initial_state(model.graph, opt), params)
    theirs = run_ort(step, data | params | initial_state(model.graph, opt))
    for key in ours:
        np.testing.assert_allclose(theirs[key], ours[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_the_jax_backend_trains_with_dropout_and_batch_norm(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3))
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    model = load_source(tmp_path, MODEL + 'train m {\n data = npz("d.npz")\n optimizer = adam(lr = 0.05)\n'
                                          ' epochs = 3\n batch = 8\n}\n')
    jax_result = model.train(progress=False, backend="jax")
    numpy_result = model.train(progress=False)
    for key in numpy_result.params:
        np.testing.assert_allclose(jax_result.params[key], numpy_result.params[key], rtol=1e-4, atol=1e-5, err_msg=key)
