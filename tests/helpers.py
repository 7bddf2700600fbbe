"""Shared test helpers: binding symbolic dims, central finite differences, a run that checks
every node's kernel result against the op's shape rule, graph-building shortcuts, and the models
in models/ with random feeds.

Plain functions and constants, imported by test modules in any folder as
`from tests.helpers import ...` (tests/ is a package; see tests/__init__.py). No tests and no
fixtures here: fixtures live in tests/conftest.py (`fd`, `typed_run` wrap helpers from this module).
"""
from __future__ import annotations

import ast
import functools
import operator
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort

import nngraph
from nngraph.ir import Graph
from nngraph.ir.registry import OPS
from nngraph.runtime.numpy.executor import Plan
from nngraph.runtime.numpy.kernels.registry import KERNELS
from nngraph.training.step import initial_state, new_name, train_step_graph

# The repository's root: models/, bench/ and README.md are found from here, whichever folder of
# tests/ a module lives in.
ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- symbolic dims
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}


def concrete_dim(dim, bindings: dict[str, int]) -> int:
    """An int dim, a symbol ("N") or a derived expression from a shape rule ("6*N", "(4*N)/(2)")
    evaluated with the symbols bound to sizes."""
    if isinstance(dim, int):
        return dim

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in bindings:
                raise KeyError(f"symbol {node.id!r} of dim {dim!r} is not bound (bindings: {bindings})")
            return bindings[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):     # "-N+T"
            return -walk(node.operand)
        raise ValueError(f"cannot evaluate dim {dim!r}")

    value = walk(ast.parse(str(dim), mode="eval"))
    assert float(value).is_integer(), f"dim {dim!r} evaluates to a non-integer {value} with {bindings}"
    return int(value)


def concrete_shape(shape, bindings: dict[str, int]) -> tuple[int, ...]:
    return tuple(concrete_dim(d, bindings) for d in shape)


def bind_symbols(graph: Graph, feeds: dict, params: dict | None = None) -> dict[str, int]:
    """The symbol -> size binding the executor would make from the fed arrays."""
    bindings: dict[str, int] = {}
    arrays = dict(feeds) | dict(params or {})
    for value in graph.inputs + graph.params:
        if value.name not in arrays:
            continue
        for dim, size in zip(value.shape, np.shape(arrays[value.name])):
            if isinstance(dim, str) and re.fullmatch(r"[A-Za-z_]\w*", dim):
                bindings.setdefault(dim, size)
    return bindings


# ---------------------------------------------------------------- running with type checks
def typed_run(graph: Graph, feeds: dict, params: dict | None = None) -> dict[str, np.ndarray]:
    """Evaluate `graph` node by node with the NumPy kernels, asserting that each node's result
    has exactly the shape (symbols bound) and dtype the op's `infer` gave its output Value.
    Returns the named outputs, like `Plan(graph).run`."""
    params = params or {}
    bindings = bind_symbols(graph, feeds, params)
    env: dict[int, np.ndarray] = {}
    for value in graph.inputs:
        env[value.uid] = np.asarray(feeds[value.name]).astype(value.dtype, copy=False)
    for value in graph.params:
        env[value.uid] = np.asarray(params[value.name]).astype(value.dtype, copy=False)
    for index, node in enumerate(graph.nodes):
        inferred = OPS[node.op].infer([v.type for v in node.inputs], node.attrs)
        assert inferred == [v.type for v in node.outputs], f"node {index} ({node.op}): stale output types"
        result = KERNELS[node.op](*(env[v.uid] for v in node.inputs), **node.attrs)
        results = [result] if len(node.outputs) == 1 else list(result)
        for value, array in zip(node.outputs, results):
            array = np.asarray(array)
            where = (f"node {index} `{node.op}` ({node.role}) attrs={ {k: v for k, v in node.attrs.items() if k != 'value'} } "
                     f"inputs={[str(v.type) for v in node.inputs]}")
            want_shape = concrete_shape(value.shape, bindings)
            assert array.shape == want_shape, \
                f"{where}: kernel gave shape {array.shape}, infer said {value.type} = {want_shape}"
            assert str(array.dtype) == value.dtype, f"{where}: kernel gave dtype {array.dtype}, infer said {value.dtype}"
            env[value.uid] = array
    return {name: env[v.uid] for name, v in graph.outputs.items()}


# ---------------------------------------------------------------- finite differences
def central_difference(fn, arrays: dict[str, np.ndarray], name: str, eps: float = 1e-6) -> np.ndarray:
    """d fn(arrays) / d arrays[name] for a scalar-valued `fn`, entry by entry, by central differences."""
    base = arrays[name]
    numeric = np.zeros(base.shape, dtype=np.float64)
    for index in np.ndindex(base.shape):
        bumped = dict(arrays)
        up = base.astype(np.float64, copy=True)
        up[index] += eps
        bumped[name] = up
        f_up = float(fn(bumped))
        down = base.astype(np.float64, copy=True)
        down[index] -= eps
        bumped[name] = down
        f_down = float(fn(bumped))
        numeric[index] = (f_up - f_down) / (2 * eps)
    return numeric


def directional_difference(fn, arrays: dict[str, np.ndarray], direction: dict[str, np.ndarray],
                           eps: float = 1e-6) -> dict[str, np.ndarray]:
    """(fn(x + eps v) - fn(x - eps v)) / (2 eps) for a dict-valued `fn`, with x moved along `direction`
    (a dict of the same names); for fn = gradient this is a Hessian-vector product."""
    up = dict(arrays) | {k: arrays[k] + eps * v for k, v in direction.items()}
    down = dict(arrays) | {k: arrays[k] - eps * v for k, v in direction.items()}
    f_up, f_down = fn(up), fn(down)
    return {k: (np.asarray(f_up[k], np.float64) - np.asarray(f_down[k], np.float64)) / (2 * eps) for k in f_up}


def assert_close(got, want, rtol=1e-5, atol=1e-6, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != expected {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


# ---------------------------------------------------------------- graph building
def weighted_sum_loss(graph: Graph, out, weight_name: str = "r", loss_name: str = "loss"):
    """Make `loss = sum(out * r)` with `r` a fed input of out's type; set it as the graph's loss.
    Its gradient w.r.t. `out` is r, so every entry of the op's output is checked."""
    r = graph.add_input(weight_name, out.type)
    prod, = graph.apply("mul", [out, r])
    graph.outputs[loss_name], = graph.apply("sum", [prod], {"axes": None})
    graph.loss = loss_name
    return r


def add_dot_loss(graph: Graph, pairs: list[tuple[str, str]], loss_name: str = "gv") -> list:
    """Add `loss = sum_i sum(outputs[a_i] * v_i)` with fed inputs v_i (same types), set it as the loss.
    `pairs` are (output name, new input name). Returns the new input Values."""
    vs, terms = [], []
    for out_name, v_name in pairs:
        out = graph.outputs[out_name]
        v = graph.add_input(v_name, out.type)
        vs.append(v)
        prod, = graph.apply("mul", [out, v])
        term, = graph.apply("sum", [prod], {"axes": None})
        terms.append(term)
    total = terms[0]
    for term in terms[1:]:
        total, = graph.apply("add", [total, term])
    graph.outputs[loss_name] = total
    graph.loss = loss_name
    return vs


# ---------------------------------------------------------------- .nn source
def load_source(tmp_path, source: str, name: str = "m.nn"):
    """Write `source` to tmp_path/name and load it with `nngraph.load` (default model and dtype)."""
    path = tmp_path / name
    path.write_text(source)
    return nngraph.load(str(path))


# ---------------------------------------------------------------- the models in models/
def model_variants() -> list[tuple[str, str]]:
    """(path, model name) for every model of every file in models/."""
    import glob

    from nngraph.dsl.loader import load_program
    return [(path, m.name) for path in sorted(glob.glob("models/*.nn")) for m in load_program(path).module.models]


@functools.cache
def models_with_loss() -> list[tuple[str, str]]:
    """The model variants that define `loss` (so have a gradient); a text generator has none."""
    return [(path, name) for path, name in model_variants() if nngraph.load(path, name).graph.loss]


def model_feeds(graph: Graph, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs for a model's graph with every symbolic dim bound to `n`: normal floats of the
    input's dtype, integers in [0, 3) (valid class labels and word ids for every model here)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in graph.inputs:
        shape = tuple(n if isinstance(d, str) else d for d in v.shape)
        feeds[v.name] = rng.integers(0, 3, shape) if v.dtype.startswith("int") else \
            rng.normal(size=shape).astype(v.dtype)
    return feeds


# a model with a forward, a reverse and a counted scan, for the scan tests of every backend
SCANS_NN = """model rnn {
    input xs: [T, B, 3]
    target ys: [T, B, 4]
    param wx: [3, 4] ~ glorot
    param wh: [4, 4] ~ glorot
    param b: [4] ~ normal(std = 0.1)
    hs = scan x in xs carry (h = zeros[B, 4]) {
        h = tanh(x @ wx + h @ wh + b)
        yield h
    }
    back = scan reverse x in xs carry (g = ones[B, 4]) {
        g = sigmoid(x @ wx) * g
        yield g
    }
    k = scan 3 steps carry (t = h) {
        t = t * 0.5 + b
    }
    output states = hs
    output last = h
    loss = mse(hs, ys) + mean(back * ys) + sum(k)
}
"""


# ---------------------------------------------------------------- onnxruntime as the reference
def ort_session(model) -> ort.InferenceSession:
    """An onnxruntime session (CPU) on an ONNX ModelProto."""
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run_ort(model_or_session, feeds: dict) -> dict:
    """onnxruntime's outputs by name, on a ModelProto or a session. Feeds the graph does not take are
    dropped; inputs with an initializer (parameters, optimizer state) are "overridable initializers"."""
    sess = model_or_session if isinstance(model_or_session, ort.InferenceSession) else ort_session(model_or_session)
    names = {i.name for i in sess.get_inputs() + sess.get_overridable_initializers()}
    outputs = sess.run(None, {k: v for k, v in feeds.items() if k in names})
    return dict(zip([o.name for o in sess.get_outputs()], outputs))


def training_steps_in_numpy_and_onnxruntime(model, optimizer, proto, batch: dict, params: dict, steps: int):
    """`steps` optimizer steps of `model` in the NumPy runtime and of its exported training step
    `proto` in onnxruntime, each feeding its new parameters and state back: (NumPy's values,
    onnxruntime's), both keyed by parameter and state name."""
    plan, sess = Plan(train_step_graph(model.graph, optimizer, 1)), ort_session(proto)
    ours = theirs = params | initial_state(model.graph, optimizer)
    for _ in range(steps):
        out = plan.run(batch | ours, {k: ours[k] for k in params})
        ours = {k: out[new_name(k)] for k in ours}
        out = run_ort(sess, batch | theirs)
        theirs = {k: out[new_name(k)] for k in theirs}
    return ours, theirs
