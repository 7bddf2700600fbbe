"""NumPy's BLAS thread count: chosen from the backend option, NNGRAPH_THREADS or the machine's load."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import nngraph.runtime
from nngraph.diagnostics import NNError
from nngraph.ir import Graph, TensorType
from nngraph.runtime.numpy import threads


def _numpy_blas_threads() -> int:
    return next(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"])


def test_the_count_comes_from_the_option_then_the_environment_then_the_load(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.chosen(2) == 2
    assert threads.chosen() == 3
    monkeypatch.setenv(threads.ENV, "auto")
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (6.5, 0.0, 0.0))
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.chosen() == 1                 # 8 cores, 6.5 busy
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert threads.chosen() == 7
    monkeypatch.setenv("OMP_NUM_THREADS", "2")   # an explicit limit caps auto
    assert threads.chosen() == 2


@pytest.mark.parametrize("bad", ["0", "many", "-2"])
def test_a_bad_count_is_a_diagnostic(monkeypatch, bad):
    monkeypatch.setenv(threads.ENV, bad)
    with pytest.raises(NNError, match=threads.ENV):
        threads.chosen()


def test_compiling_sets_numpys_blas_threads():
    g = Graph("g")
    x = g.add_input("x", TensorType("float32", (2, 2)))
    g.outputs["y"], = g.apply("matmul", [x, x])
    try:
        for count in (2, 1):
            nngraph.runtime.get("numpy", threads=count).compile(g)
            assert _numpy_blas_threads() == count
    finally:
        threads.set_threads()
    assert np.allclose(nngraph.runtime.get("numpy").compile(g)({"x": np.eye(2, dtype="float32")})["y"], np.eye(2))
