"""Graphviz pictures of the IR with pydot.

Each layer instance is a cluster (nested for nested layers), or with `collapse` one box; inputs,
parameters, constants and outputs are drawn distinctly, backward nodes in their own colour, shapes
on edges, and each node's tooltip (in SVG) leads back to its `.nn` source line.

A .dot file needs nothing more. SVG and PNG need a `dot` program: Graphviz's own when installed,
else `graphviz-pure`, a self-contained port of it that pip installs with nngraph.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pydot

from nngraph.diagnostics import NNError, Span
from nngraph.dsl.loader import STDLIB
from nngraph.files import write_atomically
from nngraph.ir import Graph, Node, Value
from nngraph.ops.recurrence import scan_parts

COLOURS = {"forward": "#dbeafe", "backward": "#fde2e2", "optimizer": "#e9d5ff"}
INPUT, PARAM, OUTPUT, LAYER_BORDER = "#dcfce7", "#fef9c3", "#fed7aa", "#94a3b8"
FORMATS = ("dot", "svg", "png")
RENDERERS = ("dot", "graphviz-pure")    # Graphviz itself first; the PyPI port when it is absent


def to_dot(graph: Graph, collapse: int = 0) -> pydot.Dot:
    """The picture of `graph`. collapse=0 draws every node, each layer instance a cluster;
    collapse=N draws each layer instance N levels deep (1: the model's own layers) as one box,
    with one edge to each neighbour."""
    # newrank: dot's classic ranking fails ("trouble in init_rank") on clusters with edge labels,
    # e.g. on models/iris.nn --grad
    dot = pydot.Dot(graph.name, graph_type="digraph", rankdir="TB", fontname="Helvetica", newrank="true")
    dot.set_node_defaults(fontname="Helvetica", fontsize="10")
    dot.set_edge_defaults(fontname="Helvetica", fontsize="8")
    layers = _Layers(dot, collapse)
    drawn: dict[int, str] = {}          # value uid -> id of the picture node that shows it

    for v in graph.inputs:
        role = "target" if v.name in graph.targets else "input"
        drawn[v.uid] = _ident(v.name)
        dot.add_node(pydot.Node(drawn[v.uid], label=f"{role} {v.name}\n{v.type}", shape="ellipse",
                                style="filled", fillcolor=INPUT, **_tooltip(v.span)))
    for p in graph.params:
        drawn[p.uid] = layers.place_param(p) or _draw_param(layers, p)
    _draw_nodes(graph.nodes, layers, drawn, _Body(dot, "", ""))
    for name, v in graph.outputs.items():
        dot.add_node(pydot.Node(_ident("out:" + name), label=name, shape="doubleoctagon", style="filled",
                                fillcolor=OUTPUT))
        dot.add_edge(pydot.Edge(drawn[v.uid], _ident("out:" + name)))
    layers.draw_boxes()
    return dot


@dataclass(frozen=True)
class _Body:
    """Where a graph's nodes are drawn: the model's graph at the top, or a scan body's cluster,
    whose nodes' identifiers carry `prefix` (a body reuses names such as `h`) and whose layer
    scopes are read relative to `scope`, the scope of the scan node."""
    cluster: pydot.Dot | pydot.Subgraph
    prefix: str
    scope: str

    def relative(self, scope: str) -> str:
        if not self.scope:
            return scope
        return "" if scope == self.scope else scope.removeprefix(self.scope + ".")


def _draw_nodes(nodes: list[Node], layers: _Layers, drawn: dict[int, str], where: _Body) -> None:
    for node in nodes:
        box = layers.place_node(node) if not where.prefix else None
        ident = box or _draw_node(layers, node, where)
        drawn.update((v.uid, ident) for v in node.outputs)
        if node.op == "scan" and box is None and not layers.collapse:
            _draw_scan_body(node, ident, layers, drawn, where)
            continue        # its inputs flow into the body's cluster, its body's results into it
        for v in node.inputs:
            layers.connect(drawn[v.uid], ident, v)


def _draw_scan_body(scan: Node, scan_ident: str, layers: _Layers, drawn: dict[int, str], where: _Body) -> None:
    """A scan's body as a cluster of its own: the body's inputs fed by the values the scan gives
    them (the initial carries, one step of each sequence, captured values), its nodes, and its
    results, which flow into the scan node as the final carries and stacked outputs."""
    body, attrs = scan.attrs["body"], scan.attrs
    layers.scans += 1
    prefix = f"{where.prefix}scan{layers.scans}/"
    sequences = [v.name for v in scan_parts(body.inputs, attrs)[1]]
    steps = f"a step of {', '.join(sequences)}" if sequences else f"{attrs['length']} steps"
    label = f"scan body{' (reverse)' if attrs.get('reverse') else ''}: {steps}"
    cluster = pydot.Cluster(_cluster_name(prefix.rstrip("/")), label=label, style="dashed,rounded", color=LAYER_BORDER)
    layers.cluster(where.relative(scan.scope), where).add_subgraph(cluster)
    inner = _Body(cluster, prefix, scan.scope)
    roles = ("carry", "step of", "captured")
    for role, outer_values, body_inputs in zip(roles, scan_parts(scan.inputs, attrs), scan_parts(body.inputs, attrs)):
        for outer, v in zip(outer_values, body_inputs):
            drawn[v.uid] = _ident(prefix + v.name)
            cluster.add_node(pydot.Node(drawn[v.uid], label=f"{role} {v.name}\n{v.type}", shape="ellipse",
                                        style="filled", fillcolor=INPUT, **_tooltip(v.span)))
            layers.dot.add_edge(pydot.Edge(drawn[outer.uid], drawn[v.uid], label=_shape(outer)))
    _draw_nodes(body.nodes, layers, drawn, inner)
    for name, v in body.outputs.items():
        ident = _ident(prefix + "yield:" + name)
        cluster.add_node(pydot.Node(ident, label=f"yield {name}", shape="cds", style="filled", fillcolor=OUTPUT))
        layers.dot.add_edge(pydot.Edge(drawn[v.uid], ident))
        layers.dot.add_edge(pydot.Edge(ident, scan_ident, style="dashed"))


def _cluster_name(name: str) -> str:
    """A Graphviz-safe name for pydot.Cluster (which prefixes `cluster_`)."""
    return re.sub(r"\W", "_", name)


def _draw_param(layers: _Layers, p: Value) -> str:
    ident = _ident(p.name)
    layers.cluster(_scope_of(p)).add_node(pydot.Node(ident, label=f"{p.name}\n{p.type}", shape="box",
                                                     style="filled", fillcolor=PARAM, **_tooltip(p.span)))
    return ident


def _draw_node(layers: _Layers, node: Node, where: _Body) -> str:
    ident = _ident(where.prefix + node.outputs[0].name)
    shapes = " ".join(_shape(v) for v in node.outputs)
    constant = node.op == "constant"
    layers.cluster(where.relative(node.scope), where).add_node(pydot.Node(
        ident, label=f"const {shapes}" if constant else f"{node.op}\n{shapes}",
        shape="plaintext" if constant else "box", style="rounded,filled",
        fillcolor=COLOURS.get(node.role, "#f1f5f9"), **_tooltip(node.span)))
    return ident


def _scope_of(param: Value) -> str:
    return param.name.rpartition(".")[0]


class _Layers:
    """Where each layer's nodes go: nested clusters, and with `collapse` one box per layer
    instance at that depth, which absorbs the nodes and parameters inside it."""

    def __init__(self, dot: pydot.Dot, collapse: int):
        self.dot, self.collapse = dot, int(collapse)
        self.clusters: dict[str, pydot.Subgraph] = {}
        self.scans = 0                              # scan bodies drawn so far (names their clusters)
        self.boxes: dict[str, dict] = {}            # box scope -> what it holds
        self.box_idents: set[str] = set()
        self.box_edges: dict[tuple[str, str], dict[int, Value]] = {}   # (from, to) -> the values it carries

    def cluster(self, scope: str, where: _Body | None = None):
        """The cluster of layer instance `scope` (`where`: inside a scan body's cluster)."""
        root, prefix = (where.cluster, where.prefix) if where is not None else (self.dot, "")
        if not scope:
            return root
        key = prefix + scope
        if key not in self.clusters:
            parent = self.cluster(scope.rpartition(".")[0], where)
            self.clusters[key] = pydot.Cluster(_cluster_name(key), label=scope,
                                               style="rounded", color=LAYER_BORDER)
            parent.add_subgraph(self.clusters[key])
        return self.clusters[key]

    def box_scope(self, scope: str) -> str | None:
        """The collapsed layer instance that `scope` lies in, if any."""
        parts = scope.split(".") if scope else []
        if self.collapse <= 0 or len(parts) < self.collapse:
            return None
        return ".".join(parts[:self.collapse])

    def _box(self, scope: str) -> dict:
        self.box_idents.add(_box_ident(scope))
        return self.boxes.setdefault(scope, {"params": [], "forward": 0, "backward": 0, "span": None})

    def place_param(self, p: Value) -> str | None:
        scope = self.box_scope(_scope_of(p))
        if scope is None:
            return None
        self._box(scope)["params"].append(p)
        return _box_ident(scope)

    def place_node(self, node: Node) -> str | None:
        scope = self.box_scope(node.scope)
        if scope is None:
            return None
        box = self._box(scope)
        box["backward" if node.role == "backward" else "forward"] += 1
        box["span"] = box["span"] or node.span
        return _box_ident(scope)

    def connect(self, src: str, dst: str, v: Value) -> None:
        if src == dst:
            return          # inside one box
        if src in self.box_idents or dst in self.box_idents:
            # one edge between a box and each neighbour, however many values and nodes it stands for
            self.box_edges.setdefault((src, dst), {})[v.uid] = v
        else:
            self.dot.add_edge(pydot.Edge(src, dst, label=_shape(v)))

    def draw_boxes(self) -> None:
        for scope, box in self.boxes.items():
            params = _param_lines(scope, box["params"])
            count = [_plural(box["forward"], "node") + (f" + {box['backward']} backward" if box["backward"] else "")]
            if not box["forward"] + box["backward"]:
                count = []      # only weights: a layer called inside a scan body lives in the scan node
            span = box["span"] or (box["params"][0].span if box["params"] else None)
            call = span.call_site if span is not None and span.call_site is not None else span
            self.cluster(scope.rpartition(".")[0]).add_node(pydot.Node(
                _box_ident(scope), label="\n".join([scope, *params, *count]), shape="box3d", style="filled",
                fillcolor=_box_colour(box),
                color=LAYER_BORDER, **_tooltip(call)))
        for (src, dst), values in self.box_edges.items():
            shapes = list(dict.fromkeys(_shape(v) for v in values.values()))
            label = " ".join(shapes) if len(values) <= 2 else f"{len(values)} values"
            self.dot.add_edge(pydot.Edge(src, dst, label=label))


def _param_lines(scope: str, params: list[Value]) -> list[str]:
    """Each parameter's local name and shape; a count for a big layer, to keep its box readable."""
    if len(params) <= 6:
        return [f"{p.name[len(scope) + 1:]} {_shape(p)}" for p in params]
    numbers = sum(math.prod(p.shape) for p in params)
    return [f"{len(params)} parameters, {numbers:,} numbers"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _box_colour(box: dict) -> str:
    if box["forward"]:
        return COLOURS["forward"]
    return COLOURS["backward"] if box["backward"] else PARAM


def _box_ident(scope: str) -> str:
    return _ident("layer:" + scope)


def _shape(value: Value) -> str:
    return "[" + ", ".join(str(d) for d in value.shape) + "]"


def _ident(name: str) -> str:
    return '"' + name.replace('"', "'") + '"'


# ---------------------------------------------------------------- tooltips
def _tooltip(span: Span | None) -> dict[str, str]:
    """`models/iris.nn:12: hidden = dense[8, relu](x)` and, for a node made inside a layer body,
    a second line with the layer and its definition line."""
    if span is None:
        return {}
    here = _where(span)
    if span.call_site is not None:
        here = f"{_where(span.call_site)}\n(in {span.layer}, {here})"
    return {"tooltip": here}       # pydot quotes the value and escapes its quotes


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


# ---------------------------------------------------------------- rendering
def find_renderer() -> str | None:
    """Graphviz's `dot`, else graphviz-pure's; also looked for beside this Python's own scripts,
    where pip puts graphviz-pure even when that virtualenv is not activated."""
    search = os.pathsep.join(filter(None, [os.environ.get("PATH"), sysconfig.get_path("scripts")]))
    for program in RENDERERS:
        found = shutil.which(program, path=search)
        if found:
            return found
    return None


def render(dot: pydot.Dot, fmt: str) -> bytes:
    """SVG or PNG bytes of `dot` from the renderer `find_renderer` picks."""
    program = find_renderer()
    if program is None:
        raise NNError(f"drawing .{fmt} needs a Graphviz `dot` program, and neither Graphviz's `dot` nor "
                      "`graphviz-pure` is installed",
                      hint="install one: apt-get install graphviz (or brew install graphviz), or "
                           "pip install graphviz-pure; or write a .dot file and render it elsewhere")
    done = subprocess.run([program, f"-T{fmt}"], input=dot.to_string().encode(), capture_output=True)
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise NNError(f"{os.path.basename(program)} could not draw the graph: "
                      f"{message[0] if message else f'exit code {done.returncode}'}",
                      hint="write a .dot file to see what was sent to it")
    return done.stdout


def write_picture(graph: Graph, path: str, collapse: int = 0) -> None:
    """Write `graph` to a .dot, .svg or .png file (the suffix picks); see `to_dot` for `collapse`."""
    fmt = path.rsplit(".", 1)[-1].lower()
    if fmt not in FORMATS:
        raise NNError(f"cannot draw a .{fmt} file; use .svg, .png or .dot")
    dot = to_dot(graph, collapse)
    data = dot.to_string().encode() if fmt == "dot" else render(dot, fmt)
    write_atomically(path, data)
