"""What a picture says about each value and layer, in the model's own words: the name the `.nn`
file gives a value, a layer instance's layer and arguments (`dense[8, relu]`), shapes, and
tooltips that lead back to the source line (with value statistics when weights are given)."""
from __future__ import annotations

import re
from pathlib import Path

from nngraph.diagnostics import Span
from nngraph.dsl.loader import STDLIB
from nngraph.ir import Graph, Node, Value

_ASSIGNED = re.compile(r"^\s*(?:output\s+)?([A-Za-z_]\w*)\s*=\s*$")      # `keep = `, `output probs = `
_REST = re.compile(r"^\s*(#.*)?$")                          # nothing after it but a comment


def shape(value: Value) -> str:
    return "[" + ", ".join(str(d) for d in value.shape) + "]"


def assigned_name(span: Span | None) -> str | None:
    """`keep` when `span` is the whole right-hand side of `keep = ...` in its source file."""
    if span is None:
        return None
    try:
        before = span.source.line(span.line)[:span.column - 1]
        after = span.source.line(span.end_line)[span.end_column - 1:]
    except (IndexError, AttributeError):
        return None
    found = _ASSIGNED.match(before)
    return found.group(1) if found and _REST.match(after) else None


def named_nodes(nodes: list[Node]) -> dict[int, str]:
    """id(node) -> the `.nn` name of the value it makes. An expression that became several nodes
    (a builtin such as softmax) names the last of them, the one that makes the assigned value;
    gradient nodes, which keep the span of the node they differentiate, are not named."""
    last: dict[tuple, Node] = {}
    for node in nodes:
        s = node.span
        if s is not None and len(node.outputs) == 1 and node.role == "forward":
            last[(s.file, s.line, s.column, s.end_line, s.end_column)] = node
    named = {}
    for node in last.values():
        name = assigned_name(node.span)
        if name is not None:
            named[id(node)] = name
    return named


def node_label(node: Node, name: str | None) -> str:
    shapes = " ".join(shape(v) for v in node.outputs)
    if node.op == "constant":
        return f"{name}\nconst {shapes}" if name else f"const {shapes}"
    return f"{name}\n{node.op} {shapes}" if name else f"{node.op}\n{shapes}"


def scope_label(graph: Graph, scope: str, relative_to: str = "") -> str:
    """`hidden: dense[8, relu]`; the scope's path relative to an enclosing cluster."""
    local = scope.removeprefix(relative_to + ".") if relative_to else scope
    layer = graph.scope_labels.get(scope)
    return f"{local}: {layer}" if layer else local


def value_tooltip(value: Value, span: Span | None, stats: dict | None = None) -> dict[str, str]:
    """The value's name and type, its statistics when known, then the source line."""
    lines = [f"{value.name}: {value.type}"]
    if stats and value.name in stats:
        lines.append(stats[value.name])
    return _tooltip(span, lines)


def _tooltip(span: Span | None, first: list[str] | None = None) -> dict[str, str]:
    """`models/iris.nn:12: hidden = dense[8, relu](x)` and, for a node made inside a layer body,
    a line with the layer and its definition line."""
    lines = list(first or [])
    if span is not None:
        here = _where(span)
        if span.call_site is not None:
            here = f"{_where(span.call_site)}\n(in {span.layer}, {here})"
        lines.append(here)
    return {"tooltip": "\n".join(lines)} if lines else {}     # pydot quotes the value and escapes its quotes


def _where(span: Span) -> str:
    # Backslashes (Windows paths) would read as escapes in DOT; runs of spaces are alignment
    source = " ".join(span.source.line(span.line).split())
    return f"{_display_path(span.file)}:{span.line}: {source}".replace("\\", "/")


def _display_path(path: str) -> str:
    """A path that reads the same on every machine: stdlib/NAME for the standard library,
    relative to the working directory when below it."""
    p = Path(path).resolve()
    if p.parent == STDLIB.resolve():
        return f"stdlib/{p.name}"
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def value_statistics(params: dict) -> dict[str, str]:
    """name -> `mean 0.01  std 0.3  min -0.9  max 1.2` for each array of `params`."""
    import numpy as np
    out = {}
    for name, array in params.items():
        a = np.asarray(array, dtype=np.float64)
        if a.size:
            out[name] = f"mean {a.mean():.4g}  std {a.std():.4g}  min {a.min():.4g}  max {a.max():.4g}"
    return out
