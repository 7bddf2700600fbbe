"""`nngraph explain`: the chain rule that the symbolic gradient graph encodes, written out in the
model's own names (derive.py), with numbers and the gradient-descent step (numbers.py), as
backpropagation through time for scans (bptt.py), and as an HTML page (html.py).

    model = nngraph.load("models/squiggle.nn")
    print(explain_text(model, ["efficacy.b"]))
"""
from __future__ import annotations

import os

from nngraph.api import Model
from nngraph.explain import bptt, numbers
from nngraph.explain.derive import Derivation, Equation, Explainer
from nngraph.explain.render import TEXT, render

__all__ = ["Derivation", "Equation", "Explainer", "Report", "build_report", "explain_text"]


class Report:
    """What `explain` shows: the derivations, and the optional BPTT, numbers and norms sections."""

    def __init__(self, model: Model, explainer: Explainer):
        self.model, self.explainer = model, explainer
        self.derivations: list[Derivation] = []
        self.numbers: dict[str, list[str]] = {}      # param -> lines
        self.bptt: list[str] = []
        self.norms: list[str] = []
        self.norm_values = None


def build_report(model: Model, params: list[str] | None = None, weights: str | None = None,
                 row: int | None = None, with_numbers: bool = False, norms: bool = False) -> Report:
    explainer = Explainer(model.graph)
    names = params or [p.name for p in model.graph.params]
    for name in names:
        explainer.check_param(name)
    report = Report(model, explainer)
    report.derivations = [explainer.derive(name) for name in names]
    for scan in bptt.scans(explainer.graph):
        through = [d.param for d in report.derivations if _through_scan(d)]
        if through:
            report.bptt += bptt.bptt_text(explainer, scan, through, render)
    if with_numbers or norms:
        values = numbers.load_params(model, weights)
        feeds = numbers.feeds_for(model, row)
        where = f"data row {row}" if row is not None else f"the whole batch of {len(next(iter(feeds.values())))} rows"
        where += f", weights {os.path.basename(weights)}" if weights else ", untrained weights (seeded init)"
        if with_numbers:
            env = numbers.all_values(explainer, values, feeds)
            for d in report.derivations:
                report.numbers[d.param] = numbers.numbers_text(model, explainer, d, env, where)
        if norms:
            carry_names, report.norm_values = bptt.gradient_norms(model.graph, values, feeds)
            report.norms = [f"on {where}:"] + bptt.norms_text(carry_names, report.norm_values, explainer.loss)
    return report


def _through_scan(d: Derivation) -> bool:
    return any(x.op == "leaf" and x.label.startswith("Σ_t BPTT") for eq in d.equations for x in eq.expr.leaves())


def explain_text(model: Model, params: list[str] | None = None, **options) -> str:
    return report_text(build_report(model, params, **options))


def report_text(report: Report) -> str:
    lines = [f"model {report.model.name}, {_loss_source(report)}", LEGEND]
    for d in report.derivations:
        lines.append("")
        lines += derivation_lines(d)
        lines += report.numbers.get(d.param, [])
    if report.bptt:
        lines += [""] + report.bptt
    if report.norms:
        lines += [""] + report.norms
    return "\n".join(lines)


LEGEND = "(· multiplies elementwise, × is the matrix product, ᵀ transposes, Σ_N sums over N, 1[x > 0] is 1 where x > 0)"


def derivation_lines(d: Derivation, style=TEXT) -> list[str]:
    lines = []
    for i, eq in enumerate(d.equations):
        lhs = eq.lhs or (f"∂{d.loss}/∂{eq.name}" if i else f"d {d.loss} / d {eq.name}")
        indent = "" if i == 0 else "  "
        where = f"   [{os.path.basename(eq.span.file)}:{eq.span.line}]" if eq.span and i else ""
        note = f"   ({eq.note})" if eq.note else ""
        lines.append(f"{indent}{lhs} = {render(eq.expr, style)}{note}{where}")
        if eq.expanded is not None:
            lines.append(f"{indent}{' ' * len(lhs)} = {render(eq.expanded, style)}")
    return lines


def _loss_source(report: Report) -> str:
    node = report.explainer.graph.outputs[report.explainer.loss].node
    span = node.span if node is not None else None
    site = span.call_site or span if span else None
    if site is None:
        return f"loss `{report.explainer.loss}`"
    text = site.source.line(site.line).split("#")[0].strip()
    return f"{text}   [{os.path.basename(site.file)}:{site.line}]"
