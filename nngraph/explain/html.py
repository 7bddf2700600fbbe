"""The explanation as one self-contained HTML page: formulas typeset with plain HTML (<var>,
<sub>, <sup>, Unicode operators) and a little inline CSS; no scripts, no fonts, nothing fetched."""
from __future__ import annotations

import html
import os

from nngraph.explain import LEGEND, Report, _loss_source
from nngraph.explain.render import HTML, render

_STYLE = """
body { font-family: Georgia, 'Times New Roman', serif; max-width: 60rem; margin: 2rem auto; line-height: 1.5;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ccc; }
.eq { font-size: 1.15rem; margin: .4rem 0 .4rem 1rem; } .eq.factor { margin-left: 2.5rem; }
.eq var { font-style: italic; } .note, .where { color: #666; font-size: .9rem; margin-left: .6rem; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .85rem; }
""".strip()


def page(report: Report) -> str:
    model = report.model
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>nngraph explain: {html.escape(model.name)}</title>", f"<style>\n{_STYLE}\n</style>",
             "</head>", "<body>",
             f"<h1>How <code>{html.escape(model.name)}</code> learns: the chain rule from its gradient graph</h1>",
             f"<p>{html.escape(_loss_source(report))}</p>", f"<p class=\"note\">{html.escape(LEGEND)}</p>"]
    for d in report.derivations:
        parts.append(f'<h2 id="{html.escape(d.param)}">∂{html.escape(d.loss)}/∂{html.escape(d.param)}</h2>')
        for i, eq in enumerate(d.equations):
            lhs = html.escape(eq.lhs) if eq.lhs else f"∂<var>{html.escape(d.loss)}</var>/∂<var>{html.escape(eq.name)}</var>"
            cls = "eq factor" if i else "eq"
            note = f'<span class="note">{html.escape(eq.note)}</span>' if eq.note else ""
            where = (f'<span class="where">{html.escape(os.path.basename(eq.span.file))}:{eq.span.line}</span>'
                     if eq.span and i else "")
            parts.append(f'<div class="{cls}">{lhs} = {render(eq.expr, HTML)}{note}{where}</div>')
            if eq.expanded is not None:
                parts.append(f'<div class="{cls}">= {render(eq.expanded, HTML)}</div>')
        if d.param in report.numbers:
            parts.append("<pre>" + html.escape("\n".join(report.numbers[d.param])) + "</pre>")
    for title, lines in (("Backpropagation through time", report.bptt), ("Gradient norm per time step", report.norms)):
        if lines:
            parts += [f"<h2>{title}</h2>", "<pre>" + html.escape("\n".join(lines)) + "</pre>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
