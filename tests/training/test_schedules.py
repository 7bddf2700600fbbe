"""Learning-rate schedules, AdamW and gradient clipping are IR in the training step: each equals a
hand-written NumPy reference, and the same step runs in onnxruntime and in JAX."""
import dataclasses
import math

import numpy as np
import pytest

import nngraph
from nngraph.autodiff import grad
from nngraph.diagnostics import NNError
from nngraph.ir import Graph, TensorType
from nngraph.ir.emit import Emitter
from nngraph.runtime.numpy.executor import Plan
from nngraph.training.config import Optimizer, Schedule
from nngraph.training.schedules import learning_rate, learning_rate_at
from nngraph.training.step import initial_state, new_name, train_step_graph
from nngraph.verify import verify
from tests.helpers import load_source, training_steps_in_numpy_and_onnxruntime


def reference_lr(kind, lr, t, warmup=0, every=1, gamma=0.1, steps=None, min_lr=0.0):
    """The schedules written out independently, one step at a time."""
    if kind == "step":
        rate = lr * gamma ** (max(0, t - warmup) // every)
    elif kind == "cosine":
        p = min(1.0, max(0, t - warmup) / (steps - warmup))
        rate = min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * p))
    elif kind == "linear":
        p = min(1.0, max(0, t - warmup) / (steps - warmup))
        rate = min_lr + (lr - min_lr) * (1 - p)
    else:
        rate = lr
    return rate * ((t + 1) / warmup if t < warmup else 1.0)


SCHEDULES = [("constant", {"warmup": 5}), ("step", {"every": 4, "gamma": 0.5}), ("step", {"every": 3, "warmup": 4}),
             ("cosine", {"steps": 20}), ("cosine", {"steps": 20, "warmup": 5, "min_lr": 0.01}),
             ("linear", {"steps": 12, "warmup": 3})]


@pytest.mark.parametrize("kind,settings", SCHEDULES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ir_schedule_equals_numpy_at_every_step(kind, settings, dtype):
    g = Graph("lr")
    step = g.add_input("step", TensorType(dtype, ()))
    e = Emitter(g, role="optimizer")
    opt = Optimizer("sgd", {"lr": 0.1}, schedule=Schedule(kind, **settings))
    g.outputs["lr"] = learning_rate(e, lambda x: e("constant", value=np.asarray(x, dtype)), opt, step)
    plan = Plan(g)
    for t in range(25):
        want = reference_lr(kind, 0.1, t, **settings)
        got = plan.run({"step": np.asarray(t, dtype)}, {})["lr"]
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-12,
                                   atol=1e-8 if dtype == "float32" else 0, err_msg=f"step {t}")
        assert learning_rate_at(opt, t) == pytest.approx(want, rel=1e-12)


def squiggle(**opt):
    model = nngraph.load("models/squiggle.nn", dtype="float64")
    return model, Optimizer(**opt)


BATCH = {"dose": np.array([[0.0], [0.5], [1.0]]), "observed": np.array([[0.0], [1.0], [0.0]])}


def numpy_steps(model, params, n, lr_at, clip=None, kind="adamw", wd=0.01, b1=0.9, b2=0.999, eps=1e-8):
    """AdamW (or SGD) with global-norm clipping, written out in NumPy on the model's gradient."""
    gradient = Plan(grad(model.graph))
    params = {k: v.copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    for t in range(n):
        grads = {k: gradient.run(BATCH, params)[f"grad:{k}"] for k in params}
        if clip is not None:
            norm = np.sqrt(sum(np.sum(g * g) for g in grads.values()))
            grads = {k: g * min(1.0, clip / norm) for k, g in grads.items()}
        for k, g in grads.items():
            if kind == "sgd":
                params[k] = params[k] - lr_at(t) * g
                continue
            m[k] = b1 * m[k] + (1 - b1) * g
            v2[k] = b2 * v2[k] + (1 - b2) * g * g
            update = (m[k] / (1 - b1 ** (t + 1))) / (np.sqrt(v2[k] / (1 - b2 ** (t + 1))) + eps)
            params[k] = params[k] - lr_at(t) * (update + wd * params[k])
    return params


def graph_steps(step_graph, model, opt, params, n, run=None):
    run = run or (lambda feeds, ps: Plan(step_graph).run(feeds, ps))
    state = initial_state(model.graph, opt)
    for _ in range(n):
        out = run(BATCH | state, params)
        params = {p: out[new_name(p)] for p in params}
        state = {s: out[new_name(s)] for s in state}
    return params, state


@pytest.mark.parametrize("clip", [None, 0.05, 1e6])
def test_adamw_with_cosine_schedule_and_clipping_equals_numpy(clip):
    schedule = Schedule("cosine", warmup=2, steps=6, min_lr=0.001)
    model, opt = squiggle(kind="adamw", settings={"lr": 0.05, "weight_decay": 0.1}, schedule=schedule, clip_norm=clip)
    step_graph = train_step_graph(model.graph, opt, 1)
    verify(step_graph)
    params = model.init(0)
    got, state = graph_steps(step_graph, model, opt, params, 6)
    want = numpy_steps(model, params, 6, lambda t: reference_lr("cosine", 0.05, t, 2, steps=6, min_lr=0.001),
                       clip=clip, wd=0.1)
    assert state["step"] == 6
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, err_msg=k)


def test_clipping_bounds_the_update_of_plain_sgd():
    model, opt = squiggle(kind="sgd", settings={"lr": 1.0}, clip_norm=0.01)
    params = model.init(0)
    got, state = graph_steps(train_step_graph(model.graph, opt), model, opt, params, 1)
    assert state == {}                                   # no schedule, no Adam: no step counter
    moved = np.sqrt(sum(np.sum((got[k] - params[k]) ** 2) for k in params))
    assert moved == pytest.approx(0.01, rel=1e-9)         # lr 1: the step is the clipped gradient
    want = numpy_steps(model, params, 1, lambda t: 1.0, clip=0.01, kind="sgd")
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12)


def test_a_schedule_gives_sgd_a_step_counter():
    model, opt = squiggle(kind="sgd", settings={"lr": 0.1}, schedule=Schedule("step", every=1, gamma=0.5))
    params = model.init(0)
    got, state = graph_steps(train_step_graph(model.graph, opt), model, opt, params, 3)
    want = numpy_steps(model, params, 3, lambda t: 0.1 * 0.5 ** t, kind="sgd")
    assert state["step"] == 3
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12)


TRAIN_BLOCK = """
model m {
    input x: [N, 1]
    target y: [N, 1]
    output p = dense[1](dense[4, tanh](x))
    loss = mse(p, y)
}
train m {
    data = npz("d.npz")
    SETTINGS
    epochs = 30
    batch = 4
}
"""


def source(tmp_path, settings: str):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 1))
    np.savez(tmp_path / "d.npz", x=x, y=np.sin(3 * x))
    return TRAIN_BLOCK.replace("SETTINGS", settings)


def test_train_block_settings(tmp_path):
    model = load_source(tmp_path, source(tmp_path, "schedule = cosine(warmup = 10)\n    clip_norm = 1.0\n"
                                                   "    optimizer = adamw(lr = 1e-2, weight_decay = 0.01)"))
    opt = model.train_config.optimizer
    assert (opt.kind, opt.settings, opt.clip_norm) == ("adamw", {"lr": 0.01, "weight_decay": 0.01}, 1.0)
    assert opt.schedule == Schedule("cosine", warmup=10)
    result = model.train(progress=False)           # the cosine decays over the run: 30 epochs of 4 batches
    assert result.history[-1] < result.history[0]
    step = load_source(tmp_path, source(tmp_path, "schedule = step(every = 100, gamma = 0.5)"))
    assert step.train_config.optimizer.schedule == Schedule("step", every=100, gamma=0.5)
    linear = load_source(tmp_path, source(tmp_path, "schedule = linear(steps = 1000, min_lr = 0.0001)"))
    assert linear.train_config.optimizer.schedule == Schedule("linear", steps=1000, min_lr=0.0001)


@pytest.mark.parametrize("setting,message,col", [
    ("schedule = cosnie(warmup = 10)", "unknown learning-rate schedule `cosnie`", 16),
    ("schedule = cosine(warmup = 1.5)", "`warmup` of cosine(...) counts steps", 32),
    ("schedule = step(evry = 3)", "`step` has no setting `evry`", 21),
    ("clip_norm = -1", "`clip_norm` is the largest global norm", 17),
    ("optimizer = adamw(weight_decay = true)", "`weight_decay` must be a number", 38),
])
def test_bad_settings_are_diagnostics(tmp_path, setting, message, col):
    with pytest.raises(NNError) as err:
        load_source(tmp_path, source(tmp_path, setting))
    assert message in err.value.message
    assert (err.value.span.line, err.value.span.column) == (10, col)


def test_a_decay_over_the_whole_run_needs_the_data_or_steps(tmp_path):
    model = load_source(tmp_path, source(tmp_path, "schedule = cosine()"))
    model.export_onnx(str(tmp_path / "s.onnx"), train=True)       # 30 epochs of 4 batches of the data
    opt = model.train_config.optimizer
    with pytest.raises(NNError, match="needs `steps`"):
        train_step_graph(model.graph, opt)
    from nngraph.training.schedules import resolve_for_run
    assert resolve_for_run(model.train_config, 16).optimizer.schedule.steps == 30 * 4
    assert resolve_for_run(dataclasses.replace(model.train_config, holdout=0.25, batch=None), 16).optimizer.schedule.steps == 30


def test_onnx_training_step_with_schedule_adamw_and_clipping(tmp_path):
    model = load_source(tmp_path, source(tmp_path, "schedule = cosine(warmup = 2, steps = 8)\n    clip_norm = 0.5\n"
                                                   "    optimizer = adamw(lr = 0.05, weight_decay = 0.1)"))
    opt = model.train_config.optimizer
    proto = model.export_onnx(str(tmp_path / "step.onnx"), train=True)
    assert all(n.domain in ("", "ai.onnx") for n in proto.graph.node)
    batch = {k: v.astype(np.float32) for k, v in np.load(tmp_path / "d.npz").items()}
    params = model.init(0)
    ours, theirs = training_steps_in_numpy_and_onnxruntime(model, opt, proto, batch, params, 8)
    assert theirs["step"] == 8
    for key in ours:
        np.testing.assert_allclose(theirs[key], ours[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert any(not np.allclose(ours[k], v) for k, v in params.items())


def test_jax_runs_the_same_training_step():
    jax_backend = nngraph.runtime.get("jax")
    schedule = Schedule("step", warmup=1, every=2, gamma=0.5)
    model, opt = squiggle(kind="adamw", settings={"lr": 0.05}, schedule=schedule, clip_norm=0.1)
    step_graph = train_step_graph(model.graph, opt, 2)
    params = model.init(0)
    want, _ = graph_steps(step_graph, model, opt, params, 5)
    got, state = graph_steps(step_graph, model, opt, params, 5, run=jax_backend.compile(step_graph))
    assert state["step"] == 5
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-10, err_msg=k)
