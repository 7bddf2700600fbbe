"""Compile-time constants have a size limit: `arange` of 1e10, a fold over the limit."""
import numpy as np
import pytest

import nngraph
from nngraph.ir import limits
from tests.hardening.helpers import diagnostic, where


def test_huge_arange_is_refused_before_allocating(tmp_path):
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n    a = arange(10000000000)\n    output y = x\n}\n")
    assert err.message == "`arange(10000000000)` would be a compile-time constant of more than 100,000,000 elements"
    assert where(err) == (3, 16)
    assert "NNGRAPH_MAX_CONSTANT_ELEMENTS" in err.hint


def test_folding_a_constant_over_the_limit_is_a_diagnostic(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_CONSTANT_ELEMENTS", 100)
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N]\n    a = cast(arange(50), \"float\")\n"
                    "    b = reshape(a, [50, 1]) * reshape(a, [1, 50])\n    output y = sum(x) + sum(b)\n}\n")
    model = nngraph.load(str(path))
    with pytest.raises(nngraph.NNError) as info:
        model.compile()
    err = info.value
    assert err.message == "this computes a compile-time constant of 2,500 elements, more than the limit of 100"
    assert where(err) == (4, 9)
    assert "NNGRAPH_MAX_CONSTANT_ELEMENTS" in err.hint


def test_folding_under_the_limit_still_folds(tmp_path):
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N]\n    a = cast(arange(10) + 1, \"float\")\n    output y = sum(x) + sum(a)\n}\n")
    model = nngraph.load(str(path))
    graph = model.compile()
    out = model.run(inputs={"x": np.ones(3, np.float32)})
    assert out["y"] == pytest.approx(3 + 55)
    assert [n.op for n in graph.nodes if n.op == "constant"] and not any(n.op == "cast" for n in graph.nodes)
