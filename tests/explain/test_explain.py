"""`nngraph explain`: every printed formula is evaluated with NumPy and compared with the value the
gradient graph computes; the curve-fitting model's and the classifier's formulas are checked as
text; backpropagation through time is checked step by step against the per-step gradients that
--gradient-norms measures; the HTML page parses; the CLI's errors are diagnostics."""
from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest

import nngraph
from nngraph.autodiff import grad_name
from nngraph.cli import main
from nngraph.diagnostics import NNError
from nngraph.dsl.loader import load_program
from nngraph.explain import bptt, build_report, explain_text, numbers
from nngraph.explain.derive import Explainer
from nngraph.explain.expr import evaluate
from nngraph.explain.html import page
from nngraph.explain.render import render
from tests.helpers import ROOT

MODELS = ROOT / "models"
SQUIGGLE, IRIS, LONG = str(MODELS / "squiggle.nn"), str(MODELS / "iris.nn"), str(MODELS / "long_memory.nn")


def values_of(path, name=None, row=None):
    model = nngraph.load(path, name, dtype="float64")
    explainer = Explainer(model.graph)
    params = model.init(seed=3)
    params = {k: v + 0.1 * np.random.default_rng(1).standard_normal(v.shape) for k, v in params.items()}
    return model, explainer, params, numbers.all_values(explainer, params, numbers.feeds_for(model, row))


def assert_formula(expr, target, env):
    got = np.asarray(evaluate(expr, env), dtype=np.float64)
    want = np.asarray(env[target.uid], dtype=np.float64)
    np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- the formulas have the graph's values
@pytest.mark.parametrize("path, name, row", [(SQUIGGLE, None, None), (IRIS, None, None), (IRIS, None, 4),
                                             (LONG, "rnn", None), (str(MODELS / "cnn_xo.nn"), None, 0),
                                             (str(MODELS / "transformer.nn"), None, 0)])
def test_every_printed_formula_evaluates_to_the_gradient_graphs_value(path, name, row):
    model, explainer, _, env = values_of(path, name, row)
    checked = 0
    for p in model.graph.params:
        for eq in explainer.derive(p.name).equations:
            for form in (eq.raw, eq.expr, eq.expanded):
                if form is not None:
                    assert_formula(form, eq.target, env)
                    checked += 1
        assert_formula(explainer.derive(p.name).equations[0].expr, explainer.graph.outputs[grad_name(p.name)], env)
    assert checked >= 2 * len(model.graph.params)


def test_the_gradient_graph_of_explain_is_autodiffs():
    model, explainer, params, env = values_of(SQUIGGLE)
    reference = nngraph.runtime.get("numpy").compile(model.grad_graph())(numbers.feeds_for(model, None), params)
    for p in model.graph.params:
        np.testing.assert_allclose(env[explainer.graph.outputs[grad_name(p.name)].uid], reference[grad_name(p.name)])


# ---------------------------------------------------------------- text
def lines_of(path, param, name=None):
    return explain_text(nngraph.load(path, name), [param]).splitlines()[3:]


def test_squiggle_reads_as_the_textbook_derivative():
    assert lines_of(SQUIGGLE, "efficacy.b") == [
        "d loss / d efficacy.b = Σ_N ∂loss/∂efficacy",
        "                      = Σ_N (−2 · (observed − efficacy))",
        "  ∂loss/∂efficacy = −2 · (observed − efficacy)   [squiggle.nn:11]"]
    assert lines_of(SQUIGGLE, "hidden.w") == [
        "d loss / d hidden.w = doseᵀ × (∂loss/∂hidden · sigmoid(dose × hidden.w + hidden.b))",
        "                    = doseᵀ × (((−2 · (observed − efficacy)) × efficacy.wᵀ) · sigmoid(dose × hidden.w + hidden.b))",
        "  ∂loss/∂hidden = ∂loss/∂efficacy × efficacy.wᵀ   [squiggle.nn:10]",
        "                = (−2 · (observed − efficacy)) × efficacy.wᵀ",
        "  ∂loss/∂efficacy = −2 · (observed − efficacy)   [squiggle.nn:11]"]


def test_iris_reads_as_softmax_minus_one_hot_and_relu_as_a_step():
    assert lines_of(IRIS, "hidden.w") == [
        "d loss / d hidden.w = xᵀ × (∂loss/∂hidden · 1[hidden > 0])",
        "                    = xᵀ × ((((softmax(scores) − one_hot(label)) / N) × scores.wᵀ) · 1[hidden > 0])",
        "  ∂loss/∂hidden = ∂loss/∂scores × scores.wᵀ   [iris.nn:10]",
        "                = ((softmax(scores) − one_hot(label)) / N) × scores.wᵀ",
        "  ∂loss/∂scores = (softmax(scores) − one_hot(label)) / N"
        "   (softmax with cross entropy: the prediction minus the truth)   [iris.nn:11]"]


def test_tanh_derivative_reads_one_minus_tanh_squared_in_bptt():
    text = explain_text(nngraph.load(LONG, "rnn"), ["cell.wh"])
    assert "∂loss/∂cell.wh = Σ_t [ state_t−1ᵀ × (∂loss/∂state_t · (1 − state_t²)) ]" in text
    assert "∂loss/∂state_t−1 = (∂loss/∂state_t · (1 − state_t²)) × cell.whᵀ" in text


def test_numbers_and_the_gradient_descent_step():
    model = nngraph.load(SQUIGGLE)
    text = explain_text(model, ["efficacy.b"], row=1, with_numbers=True)
    explainer = Explainer(model.graph)
    env = numbers.all_values(explainer, model.init(), numbers.feeds_for(model, 1))
    grad = float(np.ravel(env[explainer.graph.outputs["grad:efficacy.b"].uid])[0])
    step = grad * 0.02
    assert "gradient descent, learning rate 0.02:" in text
    assert f"step size = derivative × learning rate = [{grad:.4f}] × 0.02 = [{step:.4f}]" in text
    assert f"new efficacy.b = old − step size = [0.] − [{step:.4f}] = [{-step:.4f}]" in text


# ---------------------------------------------------------------- backpropagation through time
@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_bptt_sums_the_step_formulas_and_the_repeated_factor_links_the_steps(name):
    model = nngraph.load(LONG, name, dtype="float64")
    explainer = Explainer(model.graph)
    params = model.init(seed=2)
    feeds = {k: v[:3] for k, v in numbers.feeds_for(model, None).items()}
    env = numbers.all_values(explainer, params, feeds)
    scan = bptt.scans(explainer.graph)[0]
    nc = scan.attrs["n_carry"]
    carry_names, d_carry = bptt.carry_gradients(model.graph, params, feeds)
    assert len(d_carry[0]) == 40
    saved = next(n for n in explainer.graph.nodes if n.op == "scan" and n.attrs.get("save_carries"))
    started = [env[v.uid] for v in saved.outputs[-nc:]]       # the carry each step started from
    items = env[scan.inputs[nc].uid]
    step = bptt.StepExplainer(scan, carry_names, explainer.loss)
    totals = {v.name: 0.0 for v in step.captured}
    for t in range(40):
        arrays = {v.uid: started[i][t] for i, v in enumerate(step.carries_in)}
        arrays[step.inputs[nc].uid] = items[t]
        arrays |= {v.uid: params[v.name] for v in step.captured}
        arrays |= {s.uid: d[t] for s, d in zip(step.seeds, d_carry)}
        values = step.values(arrays)
        for v in step.captured:
            totals[v.name] = totals[v.name] + evaluate(step.step_formula(v), values)
        if t:   # ∂loss/∂h_{t−1} from step t's formula is the measured gradient of the carry after step t−1
            for i, v in enumerate(step.carries_in):
                np.testing.assert_allclose(evaluate(step.step_formula(v), values), d_carry[i][t - 1], rtol=1e-8,
                                           atol=1e-14)
    for p, total in totals.items():
        np.testing.assert_allclose(total, env[explainer.graph.outputs[grad_name(p)].uid], rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("name, carries", [("rnn", 1), ("lstm", 2)])
def test_gradient_norms_print_one_norm_per_step(name, carries, capsys):
    assert main(["explain", LONG, "--model-name", name, "--param", "scores.b", "--row", "0", "--gradient-norms"]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("gradient norm per time step (t = 1 is the first step):")
    rows = out[start + 2:start + 42]
    assert [int(r.split()[0]) for r in rows] == list(range(1, 41))
    norms = np.array([[float(x) for x in r.split()[1:]] for r in rows])
    # the LSTM's long-term memory after the last step reaches the loss only through the next step: none
    assert norms.shape == (40, carries) and np.all(np.isfinite(norms)) and np.all(norms[:, 0] > 0)


def test_the_last_steps_norm_is_the_final_carrys_gradient():
    model = nngraph.load(LONG, "rnn", dtype="float64")
    params, feeds = model.init(), numbers.feeds_for(model, 0)
    _, norms = bptt.gradient_norms(model.graph, params, feeds)
    explainer = Explainer(model.graph)
    env = numbers.all_values(explainer, params, feeds)
    final = next(n for n in explainer.graph.nodes if n.op == "scan" and n.role == "forward").outputs[0]
    assert norms[-1, 0] == pytest.approx(np.linalg.norm(env[explainer.grads[final.uid].uid]), rel=1e-9)


# ---------------------------------------------------------------- HTML
class Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        assert tag not in ("script", "link", "img", "iframe")

    def handle_data(self, data):
        self.text.append(data)


def test_the_html_page_parses_and_holds_the_formulas(tmp_path):
    out = tmp_path / "explain.html"
    assert main(["explain", IRIS, "--param", "scores.b", "-o", str(out)]) == 0
    parser = Collect()
    parser.feed(out.read_text())
    parser.close()
    text = "".join(parser.text)
    assert "∂loss/∂scores = (softmax(scores) − one_hot(label)) / N" in text
    assert "= Σ" in text and "sub" in parser.tags and "var" in parser.tags
    report = build_report(nngraph.load(LONG, "rnn"), ["cell.wh"])
    Collect().feed(page(report))


# ---------------------------------------------------------------- every model, every parameter
def models_with_a_loss():
    for path in sorted(MODELS.glob("*.nn")):
        for m in load_program(str(path)).module.models:
            yield str(path), m.name


@pytest.mark.parametrize("path, name", list(models_with_a_loss()))
def test_every_model_explains_every_parameter(path, name):
    model = nngraph.load(path, name)
    if model.graph.loss is None:
        with pytest.raises(NNError, match="has no loss to explain"):
            explain_text(model)
        return
    text = explain_text(model)
    for p in model.graph.params:
        assert f"d {model.graph.loss} / d {p.name} = " in text
    assert "Traceback" not in text


def test_convolution_reads_as_a_correlation():
    text = explain_text(nngraph.load(str(MODELS / "cnn_digits.nn")), ["strokes.w"])
    assert "d loss / d strokes.w = correlate(image, ∂loss/∂strokes · 1[" in text


# ---------------------------------------------------------------- CLI errors
def test_unknown_parameter_is_a_diagnostic_with_a_hint(capsys):
    assert main(["explain", SQUIGGLE, "--param", "efficacy.bb"]) == 1
    err = capsys.readouterr().err
    assert "error: model `squiggle` has no parameter `efficacy.bb`" in err
    assert "hint: did you mean `efficacy.b`?" in err


def test_a_row_outside_the_data_points_at_the_data_line(capsys):
    assert main(["explain", SQUIGGLE, "--row", "7"]) == 1
    err = capsys.readouterr().err
    assert "squiggle.nn:17:12: error: --row 7 is outside the data, which has rows 0 to 2" in err


def test_a_model_without_a_loss_is_a_diagnostic(tmp_path, capsys):
    source = tmp_path / "noloss.nn"
    source.write_text("model plain {\n    input x: [N, 2]\n    output y = dense[1](x)\n}\n")
    assert main(["explain", str(source)]) == 1
    err = capsys.readouterr().err
    assert "noloss.nn:2:5: error: model `plain` has no loss to explain" in err


def test_gradient_norms_need_a_scan(capsys):
    assert main(["explain", SQUIGGLE, "--gradient-norms"]) == 1
    err = capsys.readouterr().err
    assert "error: model `squiggle` has no scan" in err and "squiggle.nn:7:" in err


def test_explain_writes_only_html(capsys):
    assert main(["explain", SQUIGGLE, "-o", "x.svg"]) == 2


# ---------------------------------------------------------------- the highlighted picture
def test_compile_highlights_the_path_to_one_gradient(tmp_path, capsys):
    out = tmp_path / "g.dot"
    assert main(["compile", SQUIGGLE, "--grad", "--highlight", "efficacy.b", "-o", str(out)]) == 0
    dot = out.read_text()
    assert dot.count("#dc2626") >= 5
    plain = tmp_path / "plain.dot"
    assert main(["compile", SQUIGGLE, "--grad", "-o", str(plain)]) == 0
    assert "#dc2626" not in plain.read_text()
    assert main(["compile", SQUIGGLE, "--grad", "--highlight", "efficacy.bx", "-o", str(out)]) == 1
    assert "did you mean `efficacy.b`?" in capsys.readouterr().err
    assert main(["compile", SQUIGGLE, "--highlight", "efficacy.b", "-o", str(out)]) == 2


def test_the_highlighted_path_is_the_gradients():
    from nngraph.explain.path import gradient_path
    graph = nngraph.load(SQUIGGLE).compile(grad=True)
    path = gradient_path(graph, "efficacy.b")
    ops = [n.op for n in graph.nodes if id(n) in path]
    assert "matmul" not in [n.op for n in graph.nodes if id(n) in path and n.role == "backward"]
    assert {"sub", "sum"} <= set(ops)
    assert graph.outputs["grad:efficacy.b"].uid in path
    assert not any(id(n) in path for n in graph.nodes if n.scope == "hidden")


def test_render_of_a_shared_square():
    model = nngraph.load(LONG, "rnn")
    step = bptt.StepExplainer(bptt.scans(model.graph)[0], ["state"], "loss")
    assert render(step.step_formula(step.carries_in[0])) == "(∂loss/∂state_t · (1 − state_t²)) × cell.whᵀ"


def test_attention_shows_the_softmax_jacobian():
    text = explain_text(nngraph.load(str(MODELS / "transformer.nn")), ["enc.attended.q.w"])
    # attention is one op (nngraph/ops/fused.py) whose VJP is softmax's Jacobian times dk^-1/2 = 0.25,
    # with the weights' gradient dP = ∂loss/∂out × vᵀ written out
    weights = "enc.attended.mixed.weights"
    grad = ("(transpose(∂loss/∂enc × enc.attended.out.wᵀ, [0, 2, 1, 3]) × transpose(enc.attended.v.add, [0, 2, 1, 3])ᵀ")
    assert f"0.25 · {weights} · {grad} − Σ_(axis 3) ({grad}) · {weights}))" in text


def test_the_lstms_long_memory_passes_back_through_the_forget_gate():
    text = explain_text(nngraph.load(LONG, "lstm"), ["memory.forget_h"])
    assert "∂loss/∂long_t−1 = (∂loss/∂long_t + ∂loss/∂short_t · memory.share · (1 − tanh(long_t)²)) · memory.keep" in text
