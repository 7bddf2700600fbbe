"""Property tests (hypothesis): random formulas written as .nn text go through the whole pipeline
(parse, elaborate, passes, autodiff, runtime) and must keep their values and gradients; random
token soup must give a diagnostic, never a traceback; the broadcasting rule must be NumPy's."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nngraph
from nngraph.diagnostics import NNError
from nngraph.ir import TensorType
from nngraph.ir.registry import OPS, ShapeError
from nngraph.runtime.numpy.executor import Plan
from tests.helpers import central_difference

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- random smooth formulas
# Smooth everywhere and bounded in growth, so central differences are exact to ~1e-8 and nothing
# overflows: no kinks (relu, abs), no poles (a denominator is always 1 + something squared).
UNARY = ["tanh({})", "sigmoid({})", "softplus({})", "exp(tanh({}))", "({}) * ({})", "-({})",
         "sin({})", "log(1 + ({}) * ({}))", "sqrt(1 + ({}) * ({}))"]
BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / (1 + ({1}) * ({1}))"]
LEAVES = ["a", "b", "w", "v", "0.5", "2"]


def formulas(depth: int = 3):
    leaf = st.sampled_from(LEAVES)
    if depth == 0:
        return leaf

    def unary(template, x):
        return template.format(x, x) if template.count("{}") == 2 else template.format(x)

    def binary(template, x, y):
        return template.replace("{1}", "{}").format(x, y, y) if "{1}" in template else template.format(x, y)

    smaller = formulas(depth - 1)
    return st.one_of(leaf, st.builds(unary, st.sampled_from(UNARY), smaller),
                     st.builds(binary, st.sampled_from(BINARY), smaller, smaller))


def model_of(tmp_path, formula: str):
    """The formula as a model: `a`, `b` inputs [N, 3]; `w` [3] and `v` [] parameters in a layer."""
    path = tmp_path / "formula.nn"
    path.write_text(f"""layer f(a: [N, 3], b: [N, 3]) -> [N, 3] {{
    param w: [3] ~ normal
    param v: [] ~ normal
    return ({formula}) + 0 * a
}}

model m {{
    input a: [N, 3]
    input b: [N, 3]
    output y = f(a, b)
    loss = sum(y * y) / 2
}}
""")
    return nngraph.load(str(path), dtype="float64")


@SETTINGS
@given(formula=formulas())
def test_every_optimization_level_computes_the_same_values(tmp_path, formula):
    model = model_of(tmp_path, formula)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.normal(size=(4, 3)), "b": rng.normal(size=(4, 3))}
    params = model.init(0)
    for grad in (False, True):
        runs = [Plan(model.compile(grad=grad, opt_level=level)).run(feeds, params) for level in (0, 1, 2)]
        for level, got in zip((1, 2), runs[1:]):
            for name, want in runs[0].items():
                np.testing.assert_allclose(got[name], want, rtol=1e-10, atol=1e-12,
                                           err_msg=f"{formula}: -O{level} {name} (grad={grad})")


@SETTINGS
@given(formula=formulas())
def test_symbolic_gradients_match_central_differences(tmp_path, formula):
    model = model_of(tmp_path, formula)
    rng = np.random.default_rng(1)
    feeds = {"a": rng.normal(size=(3, 3)), "b": rng.normal(size=(3, 3))}
    params = model.init(0)
    symbolic = Plan(model.compile(grad=True, opt_level=2)).run(feeds, params)
    forward = Plan(model.graph)
    for name in params:
        numeric = central_difference(lambda p: forward.run(feeds, p)["loss"], params, name, eps=1e-6)
        np.testing.assert_allclose(symbolic[f"grad:{name}"], numeric, rtol=1e-6, atol=1e-7,
                                   err_msg=f"{formula}: grad:{name}")


# ---------------------------------------------------------------- bad input never crashes
TOKENS = ["model", "layer", "m", "x", "y", "input", "output", "param", "loss", "=", "{", "}", "(", ")",
          "[", "]", ":", ",", "->", "+", "*", "@", "N", "3", "1.5", "dense", "relu", "scan", "in", "carry",
          "yield", "return", "\n", "~", "glorot", '"float"', "train", "import", "..."]


@settings(max_examples=120, deadline=None)
@given(words=st.lists(st.sampled_from(TOKENS), max_size=30))
def test_any_token_soup_is_a_model_or_a_diagnostic(tmp_path_factory, words):
    path = tmp_path_factory.mktemp("soup") / "soup.nn"
    path.write_text("model m {\n    input x: [N, 3]\n    " + " ".join(words) + "\n}\n")
    try:
        nngraph.load(str(path))
    except NNError as err:
        assert err.span is None or err.span.line >= 1
        assert str(err)


# ---------------------------------------------------------------- broadcasting is NumPy's
shapes = st.lists(st.integers(1, 3), max_size=4).map(tuple)


@settings(max_examples=200, deadline=None)
@given(left=shapes, right=shapes)
def test_broadcasting_rule_is_numpys(left, right):
    try:
        want = np.broadcast_shapes(left, right)
    except ValueError:
        want = None
    try:
        got = OPS["add"].infer([TensorType("float32", left), TensorType("float32", right)], {})[0].shape
    except ShapeError:
        got = None
    assert got == want
