"""fuse_gelu: GELU written out, exactly or as its tanh approximation (as exporters wrote it before
ONNX had Gelu), becomes one `gelu` node at -O2, computing the same values and gradients; near
misses stay as they are."""
import numpy as np
import pytest

import nngraph

SQRT2, HALF_SQRT2, BETA = "1.4142135623730951", "0.7071067811865476", "0.7978845608028654"


def _model(tmp_path, formula: str):
    path = tmp_path / "g.nn"
    path.write_text(f"""
model g {{
    input x: [N, 5]
    input y: [N, 5]
    param w: [5] ~ normal(std = 1)
    h = x * w
    output out = {formula}
    loss = sum(out * y)
}}
""")
    return nngraph.load(str(path), dtype="float64")


def _ops(graph):
    return [n.op for n in graph.nodes]


def _run(model, graph):
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((3, 5)), "y": rng.standard_normal((3, 5))}
    return nngraph.runtime.get("numpy").compile(graph)(feeds, model.init(0))


@pytest.mark.parametrize("formula", [
    f"h * (erf(h / {SQRT2}) + 1) * 0.5",               # PyTorch's export: Div, Erf, Add, Mul, Mul
    f"0.5 * h * (1 + erf(h * {HALF_SQRT2}))",
    f"h * (0.5 * (1 + erf({HALF_SQRT2} * h)))",
    f"0.5 * (h * (1 + tanh({BETA} * (h + 0.044715 * (h * (h * h))))))",      # PyTorch's tanh export
    f"h * (tanh({BETA} * (0.044715 * h ** 3 + h)) + 1) * 0.5",
])
def test_the_written_out_gelu_becomes_one_node_with_the_same_values_and_gradient(tmp_path, formula):
    model = _model(tmp_path, formula)
    fused, plain = model.compile(grad=True, opt_level=2), model.compile(grad=True, opt_level=0)
    assert "gelu" in _ops(fused) and not {"erf", "tanh", "pow"} & set(_ops(fused))
    assert "gelu" not in _ops(plain)
    got, want = _run(model, fused), _run(model, plain)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("formula", [
    f"h * (erf(x / {SQRT2}) + 1) * 0.5",                # erf of another value
    f"h * (erf(h / {SQRT2}) + 1) * 0.6",                # not one half
    "h * (erf(h / 1.5) + 1) * 0.5",                      # not sqrt 2
    f"h * (erf(h / {SQRT2}) + 2) * 0.5",                 # not 1 + erf
    f"0.5 * h * (1 + tanh({BETA} * (h + 0.05 * h * h * h)))",     # not 0.044715
    "0.5 * h * (1 + tanh(0.8 * (h + 0.044715 * h * h * h)))",    # not sqrt(2/pi)
    f"0.5 * h * (1 + tanh({BETA} * (h + 0.044715 * h * h * x)))",  # not h^3
    f"0.5 * h * (1 + tanh({BETA} * (h + 0.044715 * h ** 2)))",     # not a cube
])
def test_near_misses_are_left_alone(tmp_path, formula):
    model = _model(tmp_path, formula)
    assert "gelu" not in _ops(model.compile(opt_level=2))
