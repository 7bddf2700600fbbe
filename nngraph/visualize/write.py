"""Writing a picture of a graph to a file: .dot, .svg, .png, or the interactive .html page."""
from __future__ import annotations

from nngraph.diagnostics import NNError
from nngraph.files import write_atomically
from nngraph.ir import Graph
from nngraph.visualize.graphviz import picture
from nngraph.visualize.page import page
from nngraph.visualize.rendering import FORMATS, plan_for, render


def write_picture(graph: Graph, path: str, collapse: int | None = None, expand=(), highlight=None,
                  stats: dict[str, str] | None = None) -> None:
    """Write `graph` to a .dot, .svg, .png or .html file (the suffix picks). collapse: see
    `plan_for`; `expand` names layer instances to draw open; `highlight` holds id(node)s and value
    uids to draw in bold red; `stats` maps parameter names to a line of statistics for tooltips."""
    fmt = path.rsplit(".", 1)[-1].lower()
    if fmt not in FORMATS:
        raise NNError(f"cannot draw a .{fmt} file; use .svg, .png, .dot or .html")
    plan = plan_for(graph, collapse, expand)
    if fmt == "html":
        data = page(graph, plan, highlight=highlight, stats=stats).encode()
    else:
        dot = picture(graph, plan=plan, highlight=highlight, stats=stats)[0]
        data = dot.to_string().encode() if fmt == "dot" else render(dot, fmt)
    write_atomically(path, data)
