"""The JAX backend (runtime/jax/) against the NumPy reference backend: every op on a small
hand-made case, scans and their gradients, whole training steps of every model in models/,
feeds and diagnostics, device-resident training with donated buffers, and data parallelism over
4 (simulated CPU) devices in a subprocess."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import nngraph  # noqa: E402
from nngraph.diagnostics import NNError  # noqa: E402
from nngraph.ir.graph import Graph  # noqa: E402
from nngraph.ir.registry import OPS  # noqa: E402
from nngraph.ir.types import TensorType  # noqa: E402
from nngraph.ops.fused import Expr  # noqa: E402
from nngraph.runtime import get  # noqa: E402
from nngraph.runtime.jax import BACKEND as JAX  # noqa: E402
from nngraph.training.config import Optimizer  # noqa: E402
from nngraph.training.step import initial_state, new_name, train_step_graph  # noqa: E402
from tests.helpers import SCANS_NN  # noqa: E402
from tests.ops.cases import all_cases  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NUMPY = get("numpy")
EXCLUSIONS = Path(__file__).parent / "exclusions" / "jax.txt"         # `op  # reason` lines
EXCLUDED = {line.split("#")[0].strip() for line in EXCLUSIONS.read_text().splitlines()} - {""}
TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


# ================================================================ one op at a time
class In:
    """A fed input: `shape` may hold symbols ("N"); `kind` is "float" (the dtype under test,
    normal times `scale`), "int" (int64 in [low, high)), "pos" (float in [0.5, 2)), "bool", or
    "tie" (small whole numbers as floats: ties for max, argmax, comparisons and max pooling)."""

    def __init__(self, *shape, kind="float", low=0, high=3, scale=1.0):
        self.shape, self.kind, self.low, self.high, self.scale = shape, kind, low, high, scale

    def dtype(self, float_dtype):
        return {"int": "int64", "bool": "bool"}.get(self.kind, float_dtype)

    def sample(self, rng, float_dtype, sizes):
        shape = [sizes.get(d, d) for d in self.shape]
        if self.kind == "int":
            return rng.integers(self.low, self.high, shape)
        if self.kind == "bool":
            return rng.random(shape) < 0.5
        if self.kind == "tie":
            return rng.integers(0, 3, shape).astype(float_dtype)
        x = rng.uniform(0.5, 2, shape) if self.kind == "pos" else rng.normal(size=shape) * self.scale
        return x.astype(float_dtype)


X = In("N", 3)            # the usual float input, its batch symbolic
IMG = In("N", 4, 6, 5)
CONV = dict(stride=(2, 1), pads=(1, 0, 2, 1), dilation=(1, 2), groups=2)   # every attribute at once
POOL = dict(kernel=(3, 2), stride=(2, 2), pads=(1, 1, 0, 1))
EXPR = Expr("mul", (Expr("sigmoid", (0,)), Expr("add", (1, Expr("exp", (0,))))))

# (id, op, inputs, attrs); every op of OPS but scan (tested on models below) appears at least once
CASES = [
    *[(op, op, [X, In(3)], {}) for op in ("add", "sub", "mul", "div")],           # broadcasting
    ("pow", "pow", [In("N", 3, kind="pos"), In(1, 3)], {}),
    ("add-int", "add", [In("N", 3, kind="int", high=9), In(3, kind="int", high=9)], {}),
    *[(op, op, [X], {}) for op in ("neg", "exp", "abs", "sign", "relu", "sigmoid", "tanh", "softplus",
                                   "sin", "cos")],
    *[(op, op, [In("N", 3, kind="pos")], {}) for op in ("log", "sqrt")],
    ("abs-int", "abs", [In("N", 3, kind="int", low=-5, high=5)], {}),
    ("sigmoid-large", "sigmoid", [In("N", 3, scale=1e4)], {}),
    *[(op, op, [In("N", 3, kind="tie"), In(3, kind="tie")], {}) for op in
      ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")],
    ("where", "where", [In("N", 3, kind="bool"), X, In(1)], {}),
    ("cast-int", "cast", [X], {"dtype": "int32"}),
    ("cast-float", "cast", [In("N", 3, kind="int", high=7)], {"dtype": "float64"}),
    ("cast-bool", "cast", [In("N", 3, kind="tie")], {"dtype": "bool"}),
    ("softmax", "softmax", [In("N", 3, 4)], {"axis": 1}),
    ("log_softmax", "log_softmax", [X], {}),
    ("argmax", "argmax", [In("N", 4, kind="tie")], {"axis": 1, "keepdims": True}),
    ("sum", "sum", [In("N", 3, 4)], {"axes": (0, 2)}),
    ("sum-all", "sum", [X], {"axes": None, "keepdims": True}),
    ("mean", "mean", [In("N", 3, 4)], {"axes": (-1,)}),
    ("mean-int", "mean", [In("N", 3, kind="int", low=-9, high=9)], {"axes": (1,)}),
    ("max", "max", [In("N", 3, 4, kind="tie")], {"axes": (1,), "keepdims": True}),
    ("matmul", "matmul", [In("N", 2, 3), In(3, 4)], {}),
    ("fill", "fill", [X], {"dims": [(0, 0), 2], "value": 1.5, "dtype": "float64"}),
    ("constant", "constant", [], {"value": np.arange(6.0).reshape(2, 3)}),
    ("dim_size", "dim_size", [In("N", 3, 4)], {"axes": (0, 2), "dtype": "float32"}),
    ("transpose", "transpose", [In("N", 3, 4)], {"perm": (2, 0, 1)}),
    ("reshape", "reshape", [In("N", 3, 4)], {"shape": (0, -1)}),
    ("reshape_like", "reshape_like", [In("N", 6), In("N", 2, 3)], {}),
    ("broadcast_like", "broadcast_like", [In(1, 3), In("N", 1)], {}),
    ("expand_dims", "expand_dims", [X], {"axes": (0, -1)}),
    ("positions", "positions", [In("N", 5)], {"axis": 1}),
    ("one_hot", "one_hot", [In("N", 2, kind="int", high=4)], {"depth": 4, "dtype": "float32"}),
    ("slice", "slice", [In("N", 7)], {"axes": (1, 0), "starts": (-2, 0), "ends": (None, None), "steps": (-2, 1)}),
    ("slice_grad", "slice_grad", [In("N", 3), In("N", 7)],
     {"axes": (1,), "starts": (1,), "ends": (-1,), "steps": (2,)}),
    ("pad", "pad", [X], {"pads": (1, 0, 0, 2), "value": -1.0}),
    ("concat", "concat", [X, In("N", 2), X], {"axis": 1}),
    ("gather", "gather", [In(5, 3), In("N", 2, kind="int", low=-5, high=5)], {"axis": 0}),
    ("gather-axis", "gather", [In("N", 5), In(4, kind="int", high=5)], {"axis": 1}),
    ("scatter_add", "scatter_add", [In(2, "N", 3), In("N", kind="int", low=-5, high=5), In(2, 5, 3)], {"axis": 1}),
    ("conv2d", "conv2d", [IMG, In(6, 2, 3, 2)], CONV),
    ("conv2d-plain", "conv2d", [IMG, In(3, 4, 3, 3)], {}),
    ("conv2d_input_grad", "conv2d_input_grad", [In("N", 6, 4, 4), In(6, 2, 3, 2), IMG], CONV),
    ("conv2d_input_grad-strided", "conv2d_input_grad", [In("N", 4, 3, 3), In(4, 2, 2, 2), In("N", 2, 7, 7)],
     {"stride": (3, 3), "pads": (1, 1, 1, 1)}),      # the last row and column are read by no window
    ("conv2d_weight_grad", "conv2d_weight_grad", [IMG, In("N", 6, 4, 4), In(6, 2, 3, 2)], CONV),
    ("conv2d_weight_grad-strided", "conv2d_weight_grad", [In("N", 2, 7, 7), In("N", 4, 3, 3), In(4, 2, 2, 2)],
     {"stride": (3, 3), "pads": (1, 1, 1, 1)}),
    ("max_pool2d", "max_pool2d", [IMG], POOL),
    ("max_pool2d_grad", "max_pool2d_grad", [In("N", 4, 6, 5, kind="tie"), In("N", 4, 3, 3)], POOL),
    ("max_pool2d_select", "max_pool2d_select", [In("N", 4, 6, 5, kind="tie"), IMG], POOL),
    ("avg_pool2d", "avg_pool2d", [IMG], POOL),
    ("avg_pool2d_grad", "avg_pool2d_grad", [In("N", 4, 3, 3), IMG], POOL),
    ("avg_pool2d_grad-overlap", "avg_pool2d_grad", [In("N", 4, 5, 4), IMG], {"kernel": (2, 2)}),
    ("gemm", "gemm", [In("N", 3), In(3, 4), In(4)], {}),
    ("softmax_cross_entropy", "softmax_cross_entropy", [In("N", 4), In("N", 4, kind="pos")], {"axis": -1}),
    ("fused", "fused", [X, In(3)], {"expr": EXPR}),
]


def one_node(op, inputs, attrs, float_dtype):
    g = Graph(op)
    values = [g.add_input(f"x{i}", TensorType(spec.dtype(float_dtype), spec.shape)) for i, spec in enumerate(inputs)]
    attrs = dict(attrs)
    if op == "constant":
        attrs["value"] = attrs["value"].astype(float_dtype)
    for i, out in enumerate(g.apply(op, values, attrs)):
        g.outputs[f"out{i}"] = out
    return g


def compare(graph, feeds, params=None, float_dtype="float32", what=""):
    want = NUMPY.compile(graph)(feeds, params)
    got = JAX.compile(graph)(feeds, params)
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape, f"{what}: {name}"
        np.testing.assert_allclose(got[name], want[name], **TOL[float_dtype], err_msg=f"{what}: {name}")
    return got


@pytest.mark.parametrize("float_dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_matches_numpy(case, float_dtype):
    name, op, inputs, attrs = case
    if op in EXCLUDED:
        pytest.skip(f"`{op}` is in tests/runtime/exclusions/jax.txt")
    graph = one_node(op, inputs, attrs, float_dtype)
    rng = np.random.default_rng(0)
    for n in (1, 3):                                 # one compiled graph, two batch sizes
        feeds = {f"x{i}": spec.sample(rng, float_dtype, {"N": n}) for i, spec in enumerate(inputs)}
        compare(graph, feeds, float_dtype=float_dtype, what=f"{name} N={n}")


def test_every_op_has_a_case_or_an_exclusion():
    # scan: the model and scan tests below; the shared op table (tests/ops/cases.py) runs on this
    # backend too, in tests/runtime/test_backends.py
    covered = {c[1] for c in CASES} | {"scan"} | {case.op for case in all_cases()}
    assert set(OPS) - covered - EXCLUDED == set()
    assert all(JAX.supports(op) for op in set(OPS) - EXCLUDED)
    assert EXCLUDED <= set(OPS), "the exclusions list an op that does not exist"


def test_an_unsupported_op_is_reported_at_compile_time(monkeypatch):
    from nngraph.runtime.jax.ops.registry import IMPLS
    monkeypatch.delitem(IMPLS, "tanh")
    graph = one_node("tanh", [X], {}, "float32")
    with pytest.raises(NNError, match="the `jax` backend has no kernel for `tanh`"):
        JAX.compile(graph)


# ================================================================ scan, forward and backward


@pytest.mark.parametrize("float_dtype", ["float32", "float64"])
def test_scans_forward_reverse_and_counted_and_their_gradient(tmp_path, float_dtype):
    (tmp_path / "scans.nn").write_text(SCANS_NN)
    model = nngraph.load(str(tmp_path / "scans.nn"), dtype=float_dtype)
    rng = np.random.default_rng(0)
    params = model.init(0)
    for T in (1, 5):
        feeds = {"xs": rng.normal(size=(T, 2, 3)).astype(float_dtype),
                 "ys": rng.normal(size=(T, 2, 4)).astype(float_dtype)}
        compare(model.graph, feeds, params, float_dtype, f"forward T={T}")
        for level in (0, 2):
            compare(model.compile(grad=True, opt_level=level), feeds, params, float_dtype, f"grad T={T} O{level}")


@pytest.mark.parametrize("path", ["models/rnn.nn", "models/lstm.nn"])
def test_model_scan_and_its_gradient(path):
    model = nngraph.load(str(ROOT / path))
    data = model.load_data()
    compare(model.compile(grad=True), data.arrays, model.init(0), what=path)


# ================================================================ training steps of every model
def models_with_loss():
    from nngraph.dsl.loader import load_program
    pairs = [(os.path.relpath(p, ROOT), m.name) for p in sorted(glob.glob(str(ROOT / "models" / "*.nn")))
             for m in load_program(p).module.models]
    return [(p, n) for p, n in pairs if nngraph.load(str(ROOT / p), n).graph.loss]


def three_steps(backend, graph, model, optimizer, batch, run_device=False):
    run = backend.compile(graph)
    params, state, losses = model.init(0), initial_state(model.graph, optimizer), []
    if run_device:
        params, state = run.device_put(params), run.device_put(state)
    for _ in range(3):
        out = run.run_device(batch | state, params, donate=True) if run_device else run(batch | state, params)
        params = {p: out[new_name(p)] for p in params}
        state = {s: out[new_name(s)] for s in state}
        losses.append(float(out[model.graph.loss]))
    return losses, {k: np.asarray(v) for k, v in params.items()}


MODELS = models_with_loss()


@pytest.mark.parametrize("float_dtype", ["float32", "float64"])
@pytest.mark.parametrize("path,name", MODELS, ids=[f"{p}:{n}" for p, n in MODELS])
def test_training_steps_match_numpy(path, name, float_dtype):
    """Three optimizer steps from the same parameters on 16 rows of the model's data. float32 runs
    plain SGD: Adam divides each gradient by its own running size, so a gradient that is zero up to
    rounding (attention's key bias: softmax ignores a constant shift) becomes a step of size lr
    whose sign is the rounding's. float64 runs the model's own optimizer, where such noise stays
    below Adam's epsilon."""
    model = nngraph.load(str(ROOT / path), name, dtype=float_dtype)
    own = model.train_config.optimizer
    optimizer = own if float_dtype == "float64" else Optimizer("sgd", {"lr": own.get("lr")})
    graph = train_step_graph(model.graph, optimizer, opt_level=2)
    batch = {k: v[:16] for k, v in model.load_data().arrays.items()}
    want_losses, want = three_steps(NUMPY, graph, model, optimizer, batch)
    got_losses, got = three_steps(JAX, graph, model, optimizer, batch, run_device=float_dtype == "float64")
    tol = dict(rtol=1e-4, atol=1e-6) if float_dtype == "float32" else dict(rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(got_losses, want_losses, **tol)
    for p in want:
        assert got[p].dtype == want[p].dtype
        np.testing.assert_allclose(got[p], want[p], **tol, err_msg=p)


# ================================================================ feeds, dtypes, device arrays
def test_feed_errors_are_the_numpy_backends():
    graph = one_node("add", [X, In(3)], {}, "float32")
    ok = {"x0": np.ones((2, 3), np.float32), "x1": np.ones(3, np.float32)}
    for feeds in ({"x0": ok["x0"]}, ok | {"x1": np.ones((1, 3))}, ok | {"x1": np.ones(3, bool)},
                  ok | {"x1": np.ones(4)}, ok | {"x0": jax.numpy.ones((2, 3, 1))}):
        with pytest.raises(NNError) as want:
            NUMPY.compile(graph)({k: np.asarray(v) for k, v in feeds.items()})
        with pytest.raises(NNError) as got:
            JAX.compile(graph)(feeds)
        assert str(got.value) == str(want.value)


def test_dtypes_are_kept_and_jax_arrays_are_accepted():
    graph = one_node("gather", [In(5, 3), In("N", kind="int", high=5)], {}, "float64")
    run = JAX.compile(graph)
    table = np.arange(15.0).reshape(5, 3)
    out = run({"x0": jax.numpy.asarray(table), "x1": [4, 0, -1]})["out0"]      # a list is cast to int64
    assert out.dtype == np.float64 and isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, table[[4, 0, -1]])
    device = run.run_device({"x0": table, "x1": np.array([1])})["out0"]
    assert isinstance(device, jax.Array) and device.dtype == np.float64
    int_graph = one_node("positions", [In("N", 4)], {}, "float32")
    assert JAX.compile(int_graph)({"x0": np.zeros((2, 4))})["out0"].dtype == np.int64


def test_run_device_donates_only_the_carried_buffers():
    model = nngraph.load(str(ROOT / "models/squiggle.nn"))
    optimizer = model.train_config.optimizer
    run = JAX.compile(train_step_graph(model.graph, optimizer, opt_level=2))
    params = run.device_put(model.init(0))
    batch = run.device_put({k: v for k, v in model.load_data().arrays.items()})
    out = run.run_device(batch | run.device_put(initial_state(model.graph, optimizer)), params, donate=True)
    assert all(a.is_deleted() for a in params.values())           # reused for the new parameters
    assert not any(a.is_deleted() for a in batch.values())
    assert all(isinstance(a, jax.Array) for a in out.values())


def test_a_subset_of_outputs_and_a_runtime_shape_error():
    graph = one_node("softmax_cross_entropy", [In("N", 4), In("N", 4, kind="pos")], {}, "float32")
    feeds = {"x0": np.ones((2, 4), np.float32), "x1": np.ones((2, 4), np.float32)}
    assert list(JAX.compile(graph)(feeds, outputs=["out1"])) == ["out1"]
    g = Graph("bad")
    x = g.add_input("x", TensorType("float32", ("N", 6)))
    g.outputs["y"], = g.apply("reshape", [x], {"shape": (4, -1)})
    with pytest.raises(NNError, match=r"`reshape` failed on inputs of shape \[3, 6\] \(N = 3\)"):
        JAX.compile(g)({"x": np.ones((3, 6), np.float32)})


# ================================================================ several devices
MULTI_DEVICE = """
import json, numpy as np, jax, nngraph
from nngraph.runtime.jax import BACKEND
from nngraph.training.config import Optimizer
from nngraph.training.step import initial_state, new_name, train_step_graph
result = {"devices": len(jax.devices())}
for path, name in (("models/cnn_xo.nn", None), ("models/gpt.nn", "gpt")):
    model = nngraph.load(path, name)
    optimizer = Optimizer("sgd", {"lr": 0.05, "momentum": 0.9})    # (Adam: see test_training_steps_match_numpy)
    graph = train_step_graph(model.graph, optimizer, opt_level=2)
    batch = {k: v[:8] for k, v in model.load_data().arrays.items()}        # 2 rows per device
    outs = {}
    for devices in (None, 4):
        run = BACKEND.compile(graph, devices=devices)
        params, state = model.init(0), initial_state(model.graph, optimizer)
        for _ in range(3):
            placed = run.device_put(batch)
            out = run.run_device(placed | state, params)
            params = {p: out[new_name(p)] for p in params}
            state = {s: out[new_name(s)] for s in state}
        outs[devices] = {k: np.asarray(v) for k, v in out.items()}
        if devices:
            result[path + ":split"] = all(not a.sharding.is_fully_replicated for a in placed.values())
            result[path + ":replicated"] = all(a.sharding.is_fully_replicated for a in params.values())
    # within 1e-5 relative; values near 0 (a key bias, whose gradient is rounding noise) to 1e-6
    result[path] = [k for k, a in outs[None].items() if not np.allclose(outs[4][k], a, rtol=1e-5, atol=1e-6)]
g = nngraph.ir.graph.Graph("total")
x = g.add_input("x", nngraph.ir.types.TensorType("float64", ("N", 3)))
g.outputs["y"], = g.apply("sum", [x], {"axes": (0,)})
six = np.arange(18.0).reshape(6, 3)                    # 6 rows do not split over 4 devices: replicated
result["uneven"] = BACKEND.compile(g, devices=4)({"x": six})["y"].tolist() == six.sum(0).tolist()
print(json.dumps(result))
"""


def test_more_devices_than_there_are_is_a_diagnostic():
    with pytest.raises(NNError, match="asked for 1000 devices"):
        JAX.compile(one_node("neg", [X], {}, "float32"), devices=1000)


def test_data_parallel_over_four_devices_equals_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", MULTI_DEVICE], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["devices"] == 4 and result["uneven"]
    for path in ("models/cnn_xo.nn", "models/gpt.nn"):
        assert result[path + ":split"] and result[path + ":replicated"], result   # the batch really was split
        assert result[path] == [], result               # the outputs that differ
