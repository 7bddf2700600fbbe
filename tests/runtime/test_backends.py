"""Every backend against the NumPy backend (nngraph's reference semantics), on the shared op case
table (tests/ops/cases.py) and on every model's forward and training step.

A backend's known gaps are data, not code: `exclusions/<backend>.txt` lists one op per line with
the reason (`op  # why`), or an op in one dtype (`op float64  # why`) where the backend has the op
but not in every dtype. A wholly excluded op must really be unsupported (the exclusion is not
stale) and every other case must pass. Backends are found by name (nngraph.runtime.KNOWN); CI installs
every extra, so a backend that cannot be loaded fails here rather than being skipped.
"""
from __future__ import annotations

import builtins
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import nngraph
from nngraph import runtime
from nngraph.ir.registry import OPS
from nngraph.training.config import Optimizer
from nngraph.training.step import initial_state, new_name, train_step_graph
from tests.helpers import model_feeds, models_with_loss
from tests.ops.cases import BINDINGS, all_cases, feeds_for, ids, one_node_graph

EXCLUSIONS = Path(__file__).parent / "exclusions"
OTHERS = [name for name in runtime.KNOWN if name != "numpy"]
CASES = list(all_cases())
REFERENCE = runtime.get("numpy")


def exclusions(backend: str) -> dict[tuple[str, str | None], str]:
    """(op, dtype or None for all) -> reason, from exclusions/<backend>.txt (no file: nothing)."""
    path = EXCLUSIONS / f"{backend}.txt"
    table = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        words, _, reason = line.partition("#")
        if words.split():
            op, *dtype = words.split()
            table[(op, dtype[0] if dtype else None)] = reason.strip()
    return table


def excluded(backend: str, op: str, dtype: str) -> str | None:
    table = exclusions(backend)
    return table.get((op, None)) or table.get((op, dtype))


def backend(name: str):
    return runtime.get(name)       # an NNError with an install hint if its extra is missing


@pytest.mark.parametrize("name", OTHERS)
def test_backend_is_installed_and_lists_its_gaps(name):
    b = backend(name)
    table = exclusions(name)
    unknown = sorted(op for op, _ in table if op not in OPS)
    assert not unknown, f"exclusions/{name}.txt names ops that do not exist: {unknown}"
    assert all(table.values()), f"exclusions/{name}.txt: every line needs a `# reason`"
    stale = sorted(op for op, dtype in table if dtype is None and b.supports(op))
    assert not stale, f"exclusions/{name}.txt excludes ops the backend supports: {stale}"
    missing = sorted(op for op in OPS if not b.supports(op) and (op, None) not in table)
    assert not missing, f"the {name} backend lacks {missing}: implement them or list them with a reason"


def test_every_op_has_a_conformance_case():
    covered = {case.op for case in CASES} | {"scan"}       # scan: the recurrent models below
    assert set(OPS) <= covered, f"no case in tests/ops/cases.py for {sorted(set(OPS) - covered)}"


def _close(got, want, dtype, what):
    rtol, atol = (1e-5, 1e-5) if dtype == "float32" else (1e-9, 1e-10)
    want = np.asarray(want)
    got = np.asarray(got)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, the NumPy backend gives {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, the NumPy backend gives {want.shape}"
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("name", OTHERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_op_case_matches_numpy(name, dtype, case):
    reason = excluded(name, case.op, dtype)
    if reason:
        pytest.skip(f"excluded in exclusions/{name}.txt: {reason}")
    graph = one_node_graph(case, dtype)
    run = backend(name).compile(graph)
    reference = REFERENCE.compile(graph)
    for n in (BINDINGS["N"], 1):            # one executable, two sizes of the symbolic batch
        feeds = feeds_for(case, graph, BINDINGS | {"N": n}, dtype)
        want = reference(feeds)
        got = run(feeds)
        for out in graph.outputs:
            _close(got[out], want[out], dtype, f"{case.id} on {name}, N = {n}: {out}")


MODELS = models_with_loss()


def _variant_id(v):
    return f"{Path(v[0]).stem}:{v[1]}" if v[1] else Path(v[0]).stem


@pytest.mark.parametrize("name", OTHERS)
@pytest.mark.parametrize("variant", MODELS, ids=[_variant_id(v) for v in MODELS])
def test_model_forward_and_training_steps_match_numpy(name, variant):
    """The inference outputs on 5 rows, then three SGD steps (the gradient graph and the update
    included): the same losses and parameters as the NumPy backend."""
    path, model_name = variant
    model = nngraph.load(path, model_name)
    params = model.init(0)
    inference = model.compile(grad=False)
    feeds = model_feeds(inference, 5, seed=1)
    want, got = REFERENCE.compile(inference)(feeds, params), backend(name).compile(inference)(feeds, params)
    for out in inference.outputs:
        _close(got[out], want[out], "float32", f"{variant} {out}")

    # SGD, not the train block's Adam: Adam divides by each gradient entry's own size, which
    # turns float32 rounding in gradients that are mathematically zero (an attention key's bias)
    # into steps of the full learning rate; the test would measure noise, not the backend.
    optimizer = Optimizer("sgd", {"lr": 0.05})
    step_graph = train_step_graph(model.graph, optimizer, opt_level=2)
    batch = model_feeds(model.graph, 6, seed=2)
    runs = {"numpy": REFERENCE.compile(step_graph), name: backend(name).compile(step_graph)}
    state = {k: dict(params) for k in runs}
    for step in range(3):
        losses = {}
        for k, run in runs.items():
            out = run(batch | initial_state(model.graph, optimizer), state[k])
            state[k] = {p: out[new_name(p)] for p in params}
            losses[k] = out[model.graph.loss]
        _close(losses[name], losses["numpy"], "float32", f"{variant} loss at step {step}")
    for p in params:
        np.testing.assert_allclose(state[name][p], state["numpy"][p], rtol=1e-4, atol=1e-5,
                                   err_msg=f"{variant} parameter {p} after 3 steps on {name}")


def test_an_unknown_backend_is_a_diagnostic():
    with pytest.raises(nngraph.NNError, match=re.escape("no backend `tpu`")):
        runtime.get("tpu")


@pytest.mark.parametrize("name", OTHERS)
def test_training_to_the_end_gives_the_numpy_backends_figures(name):
    """A whole training run (the train block's Adam, mini-batches, the held-out split) on each
    backend ends with the NumPy backend's held-out accuracy and nearly its loss."""
    model = nngraph.load("models/iris.nn")
    want = model.train(epochs=60, backend="numpy", progress=False)
    got = model.train(epochs=60, backend=name, progress=False)
    assert got.holdout.accuracy == want.holdout.accuracy
    assert got.train.accuracy == want.train.accuracy
    np.testing.assert_allclose(got.history, want.history, rtol=1e-4)
    np.testing.assert_allclose(got.holdout.loss, want.holdout.loss, rtol=1e-4)


def test_a_backend_whose_extra_is_missing_gives_an_install_hint(monkeypatch):
    real_import = builtins.__import__

    def no_jax(name, *args, **kwargs):
        if name == "jax" or name.startswith("jax."):
            raise ImportError("No module named 'jax'", name="jax")
        return real_import(name, *args, **kwargs)

    for module in [m for m in sys.modules if m.startswith("nngraph.runtime.jax")]:
        monkeypatch.delitem(sys.modules, module)      # restored after the test
    monkeypatch.setattr(builtins, "__import__", no_jax)
    with pytest.raises(nngraph.NNError) as caught:
        runtime.get("jax")
    assert caught.value.message == "the `jax` backend needs a package that is not installed (jax)"
    assert caught.value.hint == "pip install 'nngraph[jax]'"
