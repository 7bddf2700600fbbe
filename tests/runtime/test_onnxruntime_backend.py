"""The onnxruntime backend (nngraph/runtime/onnxruntime/) computes what the NumPy backend computes:
op by op (float32 and float64, symbolic dims), every model in models/ on its own data, and three
training steps of every model with a loss run through the I/O-binding StepLoop. A wrong feed is
the same NNError on both backends; an op onnxruntime cannot run is an NNError at its .nn line."""
from __future__ import annotations

import glob

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import nngraph  # noqa: E402
from nngraph import runtime  # noqa: E402
from nngraph.diagnostics import NNError, SourceFile, Span  # noqa: E402
from nngraph.dsl.loader import load_program  # noqa: E402
from nngraph.ir.graph import Graph, ParamInit  # noqa: E402
from nngraph.ir.types import TensorType  # noqa: E402
from nngraph.runtime.onnxruntime import BACKEND, OnnxruntimeBackend, choose_providers  # noqa: E402
from nngraph.runtime.onnxruntime.executable import culprit  # noqa: E402
from nngraph.training.config import Optimizer  # noqa: E402
from nngraph.training.step import initial_state, new_name, train_step_graph  # noqa: E402

NUMPY = runtime.get("numpy")
ORT = OnnxruntimeBackend(threads=1)          # one thread: deterministic reductions, a quiet 2-core box


def model_variants() -> list[tuple[str, str]]:
    return [(path, m.name) for path in sorted(glob.glob("models/*.nn")) for m in load_program(path).module.models]


VARIANTS = model_variants()


def assert_same(got: dict, want: dict, rtol=1e-5, atol=1e-6, what=""):
    assert set(got) == set(want), what
    for key in want:
        g, w = np.asarray(got[key]), np.asarray(want[key])
        assert g.shape == w.shape and g.dtype == w.dtype, f"{what} {key}: {g.dtype}{g.shape} != {w.dtype}{w.shape}"
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{what} {key}")


# ================================================================ one op at a time
def f(*shape):
    return ("float", shape)


def i(*shape, high=3):
    return ("int", shape, high)


def b(*shape):
    return ("bool", shape)


# (id, op, inputs, attrs); float inputs take the dtype under test, symbols are bound to N=3, T=2
OPS = [
    ("add-broadcast", "add", [f("N", 3), f(3)], {}),
    ("sub-scalar", "sub", [f(), f("N")], {}),
    ("mul", "mul", [f(2, 1, 4), f(3, 1)], {}),
    ("div", "div", [f("N", 3), ("positive", (3,))], {}),
    ("pow", "pow", [("positive", ("N", 3)), f()], {}),
    ("exp", "exp", [f("N", 3)], {}),
    ("log", "log", [("positive", ("N", 3))], {}),
    ("sqrt", "sqrt", [("positive", (5,))], {}),
    ("tanh", "tanh", [f("N", 3)], {}),
    ("sigmoid", "sigmoid", [f("N", 3)], {}),
    ("softplus", "softplus", [f(4)], {}),
    ("relu", "relu", [f("N", 3)], {}),
    ("softmax", "softmax", [f("N", 4)], {"axis": -1}),
    ("log_softmax", "log_softmax", [f(2, 3, 4)], {"axis": 1}),
    ("sum-axes", "sum", [f("N", 3, 4)], {"axes": (0, 2), "keepdims": True}),
    ("mean-all", "mean", [f("N", 3)], {"axes": None}),
    ("max-axis", "max", [f("N", 4)], {"axes": (-1,)}),
    ("argmax", "argmax", [f("N", 4)], {"axis": -1}),
    ("matmul-batched", "matmul", [f("N", 2, 3), f(3, 4)], {}),
    ("gemm", "gemm", [f("N", 3), f(3, 2), f(2)], {}),
    ("transpose", "transpose", [f(2, 3, 4)], {"perm": (1, 2, 0)}),
    ("reshape-symbolic", "reshape", [f("N", "T", 4)], {"shape": (-1, 4)}),
    ("expand_dims", "expand_dims", [f("N", 3)], {"axes": (1,)}),
    ("concat", "concat", [f("N", 2), f("N", 3)], {"axis": -1}),
    ("slice-reverse", "slice", [f("N", 3)], {"axes": (0,), "starts": (None,), "ends": (None,), "steps": (-1,)}),
    ("pad", "pad", [f("N", 3)], {"pads": (1, 0, 2, 2), "value": 0.5}),
    ("gather", "gather", [f(3, 4), i("N", 5)], {}),
    ("scatter_add", "scatter_add", [f("N", 5, 4), i("N", 5), f(3, 4)], {}),
    ("one_hot", "one_hot", [i("N", high=4)], {"depth": 4}),
    ("where", "where", [b("N", 3), f(3), f("N", 1)], {}),
    ("less", "less", [f("N", 3), f(3)], {}),
    ("cast-to-int", "cast", [f(2, 3)], {"dtype": "int64"}),
    ("softmax_cross_entropy", "softmax_cross_entropy", [f("N", 4), f("N", 4)], {"axis": -1}),
    ("max_pool2d", "max_pool2d", [f("N", 2, 4, 6)], {"kernel": (2, 2), "stride": (2, 2)}),
    ("positions", "positions", [f("N", "T", 4)], {"axis": 1}),
]
# onnxruntime has no float64 Conv, ConvTranspose or AveragePool: these run in float32 only
FLOAT32_ONLY = [
    ("conv2d", "conv2d", [f("N", 2, 5, 4), f(3, 2, 3, 2)], {"pads": (1, 0, 0, 1)}),
    ("avg_pool2d", "avg_pool2d", [f("N", 2, 4, 6)], {"kernel": (2, 2), "stride": (2, 2)}),
]
CASES = [(c, "float32") for c in OPS + FLOAT32_ONLY] + [(c, "float64") for c in OPS]


def one_node(case, dtype: str) -> tuple[Graph, dict]:
    """The op alone (inputs x0, x1, ... -> outputs out0, ...), and feeds for N = 3, T = 2."""
    name, op, specs, attrs = case
    g = Graph(name)
    rng = np.random.default_rng(0)
    feeds, values = {}, []
    for k, spec in enumerate(specs):
        kind, shape = spec[0], spec[1]
        concrete = tuple({"N": 3, "T": 2}.get(d, d) for d in shape)
        in_dtype = {"int": "int64", "bool": "bool"}.get(kind, dtype)
        values.append(g.add_input(f"x{k}", TensorType(in_dtype, shape)))
        if kind == "int":
            feeds[f"x{k}"] = rng.integers(0, spec[2], concrete)
        elif kind == "bool":
            feeds[f"x{k}"] = rng.random(concrete) > 0.5
        elif kind == "positive":
            feeds[f"x{k}"] = rng.uniform(0.5, 2.0, concrete).astype(dtype)
        else:
            feeds[f"x{k}"] = rng.normal(size=concrete).astype(dtype)
    for k, out in enumerate(g.apply(op, values, attrs)):
        g.outputs[f"out{k}"] = out
    return g, feeds


@pytest.mark.parametrize("case,dtype", CASES, ids=[f"{c[0]}-{d}" for c, d in CASES])
def test_one_op_equals_numpy(case, dtype):
    g, feeds = one_node(case, dtype)
    got, want = ORT.compile(g)(feeds), NUMPY.compile(g)(feeds)
    tol = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-12)}[dtype]
    assert_same(got, want, *tol, what=case[0])
    for name, value in g.outputs.items():
        assert got[name].dtype == np.dtype(value.dtype)


def test_symbolic_dims_take_any_size_in_one_session():
    g, _ = one_node(OPS[0], "float32")
    run, plan = ORT.compile(g), NUMPY.compile(g)
    for n in (1, 2, 7):
        feeds = {"x0": np.arange(3 * n, dtype=np.float32).reshape(n, 3), "x1": np.ones(3, np.float32)}
        assert_same(run(feeds), plan(feeds))


def param_graph() -> Graph:
    g = Graph("affine")
    x = g.add_input("x", TensorType("float32", ("N", 3)))
    w = g.add_param("w", TensorType("float32", (3, 2)), ParamInit("normal"))
    bias = g.add_param("b", TensorType("float32", (2,)), ParamInit("constant"))
    y, = g.apply("matmul", [x, w])
    g.outputs["y"], = g.apply("add", [y, bias])
    g.outputs["s"], = g.apply("sum", [g.outputs["y"]], {"axes": None})
    return g


def test_new_params_on_every_call_without_exporting_again():
    g = param_graph()
    run, plan = ORT.compile(g), NUMPY.compile(g)
    assert run.model.graph.initializer == [] and {i.name for i in run.session.get_inputs()} == {"x", "w", "b"}
    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        params = {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": rng.normal(size=2).astype(np.float32)}
        assert_same(run({"x": x}, params), plan({"x": x}, params))
    assert set(run({"x": x}, params, outputs=["s"])) == {"s"}
    with pytest.raises(NNError, match="no output `z`"):
        run({"x": x}, params, outputs=["z"])


def test_get_by_name_and_settings(monkeypatch):
    monkeypatch.setitem(runtime.KNOWN, "onnxruntime", "onnxruntime")    # until the lead registers it
    assert runtime.get("onnxruntime") is BACKEND and BACKEND.supports("scan") and not BACKEND.supports("nope")
    assert choose_providers() == ["CPUExecutionProvider"] or "CUDAExecutionProvider" in choose_providers()
    run = BACKEND.compile(param_graph(), threads=1, providers=["CPUExecutionProvider"])
    assert run.providers == ["CPUExecutionProvider"]
    assert run.session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(NNError, match="none of the execution providers"):
        choose_providers(["NoSuchExecutionProvider"])


# ================================================================ errors
def error_of(fn) -> NNError:
    with pytest.raises(NNError) as info:
        fn()
    return info.value


def same_error(a: NNError, b: NNError):
    assert (a.message, a.span, a.hint) == (b.message, b.span, b.hint)


@pytest.mark.parametrize("bad", ["shape", "rank", "dtype", "missing", "symbol"])
def test_a_wrong_feed_is_the_same_error_as_numpy(bad):
    model = nngraph.load("models/iris.nn")
    g, params = model.compile(grad=True), model.init(0)
    x, label = np.zeros((5, 4), np.float32), np.zeros(5, np.int64)
    feeds = {"shape": {"x": np.zeros((5, 3), np.float32), "label": label},
             "rank": {"x": np.zeros(5, np.float32), "label": label},
             "dtype": {"x": np.zeros((5, 4), bool), "label": label},
             "missing": {"x": x},
             "symbol": {"x": x, "label": np.zeros(4, np.int64)}}[bad]
    ours, reference = ORT.compile(g), NUMPY.compile(g)
    err = error_of(lambda: ours(feeds, params))
    same_error(err, error_of(lambda: reference(feeds, params)))
    assert err.span is not None and err.span.file.endswith("iris.nn")
    if bad == "shape":
        assert err.message == "input `x` must have shape [N, 4], got [5, 3]: axis 1 is 3, expected 4"
    # a parameter of the wrong shape too
    bad_params = params | {next(iter(params)): np.zeros((1, 1), np.float32)}
    same_error(error_of(lambda: ours({"x": x, "label": label}, bad_params)),
               error_of(lambda: reference({"x": x, "label": label}, bad_params)))


def test_a_wrong_batch_in_the_step_loop_is_the_same_error_as_numpy():
    model = nngraph.load("models/iris.nn")
    opt = model.train_config.optimizer
    step = train_step_graph(model.graph, opt, 2)
    params, state = model.init(0), initial_state(model.graph, opt)
    batch = {"x": np.zeros((5, 3), np.float32), "label": np.zeros(5, np.int64)}
    loop = ORT.compile(step).loop(params, state)
    same_error(error_of(lambda: loop.step(batch)), error_of(lambda: NUMPY.compile(step)(batch | state, params)))
    assert loop.steps == 0


def test_an_op_onnxruntime_lacks_is_an_error_at_its_line():
    """onnxruntime has no float64 Conv: compiling cnn_digits in float64 names conv2d and its line."""
    model = nngraph.load("models/cnn_digits.nn", dtype="float64")
    err = error_of(lambda: ORT.compile(model.compile()))
    assert "onnxruntime cannot run `conv2d`" in err.message and "Conv" in err.message
    # the conv2d node of the model's first conv layer: the layer's line, called from the model's
    assert "conv(" in err.span.source.line(err.span.line)
    assert err.span.call_site.file.endswith("cnn_digits.nn") and "conv" in err.span.call_site.text()
    assert err.hint == "run this model with --backend numpy"


def test_an_error_while_running_is_an_error_at_the_ops_line():
    """A reshape whose sizes disagree only at run time, as on the NumPy backend."""
    source = SourceFile("t.nn", "h = exp(x)\ny = reshape(h, [4, -1])\n")
    g = Graph("t")
    h, = g.apply("exp", [g.add_input("x", TensorType("float32", ("N", 6)))], span=Span(source, 1, 1, 1, 11))
    g.outputs["y"], = g.apply("reshape", [h], {"shape": (4, -1)}, span=Span(source, 2, 1, 2, 23))
    feeds = {"x": np.ones((1, 6), np.float32)}
    err, reference = error_of(lambda: ORT.compile(g)(feeds)), error_of(lambda: NUMPY.compile(g)(feeds))
    assert err.message.startswith("`reshape` failed in onnxruntime (N = 1): ") and "Reshape" in err.message
    assert err.span == reference.span and err.span.line == 2
    assert ORT.compile(g)({"x": np.ones((2, 6), np.float32)})["y"].shape == (4, 3)


def test_an_onnx_node_named_in_a_message_leads_to_its_ir_node():
    """Both conv layers of cnn_digits share the layer's line: the ONNX node's name (its layer
    path) tells them apart."""
    model = nngraph.load("models/cnn_digits.nn")
    graph = model.compile()
    run = ORT.compile(graph)
    for scope in ("strokes", "shapes"):
        name = next(n.name for n in run.model.graph.node if n.op_type == "Conv" and n.name.startswith(scope + "/"))
        node = culprit(f"Non-zero status code returned while running Conv node. Name:'{name}'", graph, run.model)
        assert node.op == "conv2d" and node.scope == scope
        assert node.span.call_site.source.line(node.span.call_site.line).strip().startswith(f"{scope} = conv2d")
    assert culprit("no node named here", graph, run.model) is None


# ================================================================ every model
def model_feeds(model: nngraph.Model, graph: Graph, rows: int = 8) -> dict[str, np.ndarray]:
    """The first rows of the model's own data; a model without data (a text generator) gets
    random ids and noise with its symbols bound to 2, and a temperature of 1."""
    declared = {v.name: v for v in graph.inputs}
    if model.train_config is not None and model.train_config.data is not None:
        arrays = model.load_data().arrays
        return {k: np.asarray(v[:rows], dtype=declared[k].dtype) for k, v in arrays.items() if k in declared}
    rng = np.random.default_rng(0)
    feeds = {}
    for v in graph.inputs:
        shape = tuple(2 if isinstance(d, str) else d for d in v.shape)
        if v.dtype.startswith("int"):
            feeds[v.name] = rng.integers(0, 3, shape)
        elif not shape:
            feeds[v.name] = np.asarray(1.0, v.dtype)
        else:
            feeds[v.name] = rng.uniform(0.01, 0.99, shape).astype(v.dtype)
    return feeds


@pytest.mark.parametrize("path,name", VARIANTS, ids=[f"{p}-{n}" for p, n in VARIANTS])
def test_model_inference_equals_numpy(path, name):
    model = nngraph.load(path, name)
    graph, params = model.compile(grad=False), model.init(0)
    feeds = model_feeds(model, graph)
    assert_same(ORT.compile(graph)(feeds, params), NUMPY.compile(graph)(feeds, params), what=f"{path} {name}")


WITH_LOSS = [(p, n) for p, n in VARIANTS if nngraph.load(p, n).graph.loss]
# onnxruntime has no float64 Conv or AveragePool, so the convolutional models train in float32 only
NO_FLOAT64 = {"conv2d", "avg_pool2d"}
TRAINING = [(p, n, "float32") for p, n in WITH_LOSS] + \
    [(p, n, "float64") for p, n in WITH_LOSS if not NO_FLOAT64 & {x.op for x in nngraph.load(p, n).graph.nodes}]


@pytest.mark.parametrize("path,name,dtype", TRAINING, ids=[f"{p}-{n}-{d}" for p, n, d in TRAINING])
def test_three_training_steps_in_the_step_loop_equal_numpy(path, name, dtype):
    """Losses agree to rtol 1e-4 at every step, and so do optimizer state and parameters after
    three steps; but (float32 with Adam only) a few parameter entries carry amplified rounding
    noise instead: Adam divides each
    gradient entry by its own magnitude, so an entry that is zero up to rounding (an attention
    key's bias has a zero gradient: softmax ignores what it adds to every score) moves by up to
    lr per step whichever way its noise points. In float64 (noise 1e-18, far below Adam's eps)
    everything agrees."""
    model = nngraph.load(path, name, dtype=dtype)
    opt = model.train_config.optimizer
    graph = train_step_graph(model.graph, opt, 2)
    params, state = model.init(0), initial_state(model.graph, opt)
    batch = model_feeds(model, model.graph)
    loop = ORT.compile(graph).loop(params, state)
    plan = NUMPY.compile(graph)
    for k in range(3):
        out = plan(batch | state, params)
        params = {p: out[new_name(p)] for p in params}
        state = {s: out[new_name(s)] for s in state}
        got = loop.step(batch)
        assert set(got) == {model.graph.loss}
        assert got[model.graph.loss].dtype == np.dtype(dtype)
        np.testing.assert_allclose(got[model.graph.loss], out[model.graph.loss], rtol=1e-4, err_msg=f"loss {k}")
    assert loop.steps == 3
    noisy = dtype == "float32" and opt.kind == "adam"
    assert_trained_alike(loop.params(), params, 3 * opt.get("lr") if noisy else 0.0, what="params")
    assert_trained_alike(loop.state(), state, 0.0, what="state")


def assert_trained_alike(got: dict, want: dict, noise_bound: float, what: str):
    """Equal to rtol 1e-4 (atol 1e-6); with a noise_bound, up to 1% of all entries may differ
    more, by at most noise_bound."""
    assert set(got) == set(want), what
    off = total = 0
    for key in want:
        g, w = got[key], np.asarray(want[key])
        assert g.shape == w.shape and g.dtype == w.dtype, f"{what} {key}"
        bad = ~np.isclose(g, w, rtol=1e-4, atol=1e-6)
        if not noise_bound:
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6, err_msg=f"{what} {key}")
        assert np.all(np.abs(g - w)[bad] <= noise_bound), f"{what} {key}: beyond rounding noise"
        off, total = off + int(bad.sum()), total + w.size
    assert off <= 0.01 * total, f"{what}: {off} of {total} entries differ"


def test_the_step_loop_equals_calling_the_executable():
    """Three steps through I/O binding and three plain calls feeding outputs back agree exactly,
    and reading the loop's values does not disturb it (they are copies)."""
    model = nngraph.load("models/squiggle.nn")
    opt = Optimizer("sgd", {"lr": 0.05, "momentum": 0.9})
    run = ORT.compile(train_step_graph(model.graph, opt, 2))
    params, state = model.init(0), initial_state(model.graph, opt)
    assert set(state) == {f"velocity:{p}" for p in params}
    batch = model_feeds(model, model.graph)
    loop = run.loop(params, state)
    for _ in range(3):
        out = run(batch | state, params)
        params = {p: out[new_name(p)] for p in params}
        state = {s: out[new_name(s)] for s in state}
        loss = loop.step(batch)["loss"]
        assert loss == out["loss"]
        snapshot = loop.params()
        for value in snapshot.values():
            value[...] = 0
    assert_same(loop.params(), params, rtol=0, atol=0)
    assert_same(loop.state(), state, rtol=0, atol=0)


def test_parameters_bound_as_initializers_give_the_same_outputs():
    """`bind(params)` builds the weights into the session (as running an export directly does)."""
    model = nngraph.load("models/cnn_xo.nn")
    graph = model.compile(grad=False)
    params = model.init(0)
    feeds = {v.name: np.random.default_rng(0).normal(size=[4 if isinstance(d, str) else d for d in v.shape])
             .astype(v.dtype) for v in graph.inputs}
    bound = ORT.compile(graph).bind(params)
    want = nngraph.runtime.get("numpy").compile(graph)(feeds, params)
    got = bound(feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)
    assert {i.name for i in bound.session.get_inputs()} == {v.name for v in graph.inputs}
    params[next(iter(params))][...] = 0          # the bound weights are a copy
    np.testing.assert_allclose(bound(feeds)[next(iter(want))], got[next(iter(want))])
