"""The picture of a graph as a pydot (Graphviz) graph.

Each layer instance is a cluster labelled with its layer and arguments, nested for nested
layers, or one box (see blocks.Plan: the collapse depth, repeated blocks, opened names); inputs,
parameters, constants and outputs are drawn distinctly, backward nodes in their own colour,
shapes on edges, values named in the `.nn` file by that name, and `highlight` in bold red.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pydot

from nngraph.ir import Graph, Node, Value
from nngraph.ops.recurrence import scan_parts
from nngraph.visualize.blocks import Plan, find_repeats
from nngraph.visualize.labels import _tooltip, named_nodes, node_label, scope_label, shape, value_tooltip

COLOURS = {"forward": "#dbeafe", "backward": "#fde2e2", "optimizer": "#e9d5ff"}
INPUT, PARAM, OUTPUT, LAYER_BORDER = "#dcfce7", "#fef9c3", "#fed7aa", "#94a3b8"
HOT = {"color": "#dc2626", "penwidth": "3", "fontcolor": "#991b1b"}     # highlighted nodes and edges


def make_plan(graph: Graph, collapse: int = 0, expand=(), repeats: bool = False, bodies: bool = True) -> Plan:
    expand = frozenset(expand)
    return Plan(int(collapse), expand, find_repeats(graph, expand) if repeats else {}, bodies)


def to_dot(graph: Graph, collapse: int = 0, *, expand=(), repeats: bool = False, highlight=None,
           stats: dict[str, str] | None = None, plan: Plan | None = None) -> pydot.Dot:
    """The picture of `graph`; see `picture`."""
    return picture(graph, collapse, expand=expand, repeats=repeats, highlight=highlight, stats=stats, plan=plan)[0]


def picture(graph: Graph, collapse: int = 0, *, expand=(), repeats: bool = False, highlight=None,
            stats: dict[str, str] | None = None, plan: Plan | None = None) -> tuple[pydot.Dot, list[str]]:
    """The picture of `graph` and the layer instances it draws as boxes. collapse=0 draws every
    node, each layer instance a cluster; collapse=N draws each layer instance N levels deep (1: the
    model's own layers) as one box, with one edge to each neighbour; `expand` names layer instances to draw open; `repeats`
    draws a chain of identical blocks as one box "× N". `highlight` holds ids of nodes
    (id(node)) and uids of values to draw in bold red; `stats` maps a parameter's name to a
    line of statistics for its tooltip."""
    # newrank: dot's classic ranking fails ("trouble in init_rank") on clusters with edge labels,
    # e.g. on models/iris.nn --grad
    dot = pydot.Dot(graph.name, graph_type="digraph", rankdir="TB", fontname="Helvetica", newrank="true")
    dot.set_node_defaults(fontname="Helvetica", fontsize="10")
    dot.set_edge_defaults(fontname="Helvetica", fontsize="8")
    layers = _Layers(dot, graph, plan or make_plan(graph, collapse, expand, repeats), set(highlight or ()), stats)
    drawn: dict[int, str] = {}          # value uid -> id of the picture node that shows it

    for v in graph.inputs:
        role = "target" if v.name in graph.targets else "input"
        drawn[v.uid] = _ident(v.name)
        dot.add_node(pydot.Node(drawn[v.uid], label=f"{role} {v.name}\n{v.type}", shape="ellipse", style="filled",
                                fillcolor=INPUT, **layers.hot_style(drawn[v.uid], v.uid in layers.hot),
                                **value_tooltip(v, v.span)))
    for p in graph.params:
        drawn[p.uid] = layers.place_param(p) or _draw_param(layers, p)
    _draw_nodes(graph.nodes, layers, drawn, _Body(dot, "", ""))
    _draw_outputs(graph, layers, drawn)
    layers.draw_boxes()
    return dot, list(dict.fromkeys(box["scope"] for box in layers.boxes.values()))


def _draw_outputs(graph: Graph, layers: _Layers, drawn: dict[int, str]) -> None:
    """An output node per output; in a collapsed picture, the outputs one box or node makes
    (a layer's gradients, say) share one node when there are more than three of them."""
    by_source: dict[str, list[str]] = {}
    for name, v in graph.outputs.items():
        by_source.setdefault(drawn[v.uid], []).append(name)
    grouping = bool(layers.plan.depth or layers.plan.repeats)
    for source, names in by_source.items():
        values = [graph.outputs[n] for n in names]
        hot = any(v.uid in layers.hot for v in values)
        if grouping and len(names) > 3:
            ident = _ident("outs:" + source.strip('"'))
            layers.dot.add_node(pydot.Node(ident, label=f"{len(names)} outputs\n{names[0]}\n…\n{names[-1]}",
                                           shape="doubleoctagon", style="filled", fillcolor=OUTPUT,
                                           tooltip="\n".join(names), **layers.hot_style(ident, hot)))
            layers.connect(source, ident, values[0], hot=hot, label=False)
            continue
        for name, v in zip(names, values):
            ident = _ident("out:" + name)
            layers.dot.add_node(pydot.Node(ident, label=name, shape="doubleoctagon", style="filled", fillcolor=OUTPUT,
                                           **layers.hot_style(ident, v.uid in layers.hot)))
            layers.connect(source, ident, v, hot=v.uid in layers.hot, label=False)


@dataclass(frozen=True)
class _Body:
    """Where a graph's nodes are drawn: the model's graph at the top, or a scan body's cluster,
    whose nodes' identifiers carry `prefix` (a body reuses names such as `h`) and whose layer
    clusters nest relative to `scope`, the scope of the scan node."""
    cluster: pydot.Dot | pydot.Subgraph
    prefix: str
    scope: str

    def relative(self, scope: str) -> str:
        if not self.scope:
            return scope
        return "" if scope == self.scope else scope.removeprefix(self.scope + ".")


def _draw_nodes(nodes: list[Node], layers: _Layers, drawn: dict[int, str], where: _Body) -> None:
    names = named_nodes(nodes)
    for node in nodes:
        box = layers.place_node(node, where)
        ident = box or _draw_node(layers, node, where, names.get(id(node)))
        drawn.update((v.uid, ident) for v in node.outputs)
        if node.op == "scan" and box is None and layers.plan.bodies:
            _draw_scan_body(node, ident, layers, drawn, where)
            continue        # its inputs flow into the body's cluster, its body's results into it
        hot = layers.is_hot(node)
        for v in node.inputs:
            layers.connect(drawn[v.uid], ident, v, hot=hot and (v.uid in layers.hot or layers.is_hot(v.node)),
                           label=v.uid not in layers.weights)   # a weight's box shows its shape


def _draw_scan_body(scan: Node, scan_ident: str, layers: _Layers, drawn: dict[int, str], where: _Body) -> None:
    """A scan's body as a cluster of its own: the body's inputs fed by the values the scan gives
    them (the initial carries, one step of each sequence, captured values), its nodes, and its
    results, which flow into the scan node as the final carries and stacked outputs."""
    body, attrs = scan.attrs["body"], scan.attrs
    layers.scans += 1
    prefix = f"{where.prefix}scan{layers.scans}/"
    sequences = attrs.get("steps_of") or [v.name for v in scan_parts(body.inputs, attrs)[1]]
    steps = f"a step of {', '.join(sequences)}" if sequences else f"{attrs['length']} steps"
    label = f"scan body{' (reverse)' if attrs.get('reverse') else ''}: {steps}"
    cluster = pydot.Cluster(_cluster_name(prefix.rstrip("/")), label=label, style="dashed,rounded", color=LAYER_BORDER)
    layers.cluster(where.relative(scan.scope), where).add_subgraph(cluster)
    inner = _Body(cluster, prefix, scan.scope)
    carries, steps, captured = scan_parts(body.inputs, attrs)
    outer_carries, outer_steps, outer_captured = scan_parts(scan.inputs, attrs)
    # a captured value (a weight, say) is drawn once, where it is made, with edges into the body
    drawn.update((v.uid, drawn[outer.uid]) for outer, v in zip(outer_captured, captured))
    layers.weights.update(v.uid for outer, v in zip(outer_captured, captured) if outer.uid in layers.weights)
    for role, outer_values, body_inputs in (("carry", outer_carries, carries), ("step of", outer_steps, steps)):
        for outer, v in zip(outer_values, body_inputs):
            drawn[v.uid] = _ident(prefix + v.name)
            cluster.add_node(pydot.Node(drawn[v.uid], label=f"{role} {v.name}\n{v.type}", shape="ellipse",
                                        style="filled", fillcolor=INPUT, **value_tooltip(v, v.span)))
            layers.connect(drawn[outer.uid], drawn[v.uid], outer)
    _draw_nodes(body.nodes, layers, drawn, inner)
    for name, v in body.outputs.items():
        ident = _ident(prefix + "yield:" + name)
        cluster.add_node(pydot.Node(ident, label=f"yield {name}", shape="cds", style="filled", fillcolor=OUTPUT))
        layers.connect(drawn[v.uid], ident, v, label=False)
        layers.dot.add_edge(pydot.Edge(ident, scan_ident, style="dashed"))


def _cluster_name(name: str) -> str:
    """A Graphviz-safe name for pydot.Cluster (which prefixes `cluster_`)."""
    return re.sub(r"\W", "_", name)


def _draw_param(layers: _Layers, p: Value) -> str:
    ident = _ident(p.name)
    local = p.name.rpartition(".")[2]         # its layer's cluster says whose it is
    layers.cluster(_scope_of(p)).add_node(pydot.Node(
        ident, label=f"{local}\n{shape(p)}", shape="box", style="filled", fillcolor=PARAM, fontsize="8",
        **layers.hot_style(ident, p.uid in layers.hot), **value_tooltip(p, p.span, layers.stats)))
    return ident


def _draw_node(layers: _Layers, node: Node, where: _Body, name: str | None) -> str:
    ident = _ident(where.prefix + node.outputs[0].name)
    constant = node.op == "constant"
    layers.cluster(where.relative(node.scope), where).add_node(pydot.Node(
        ident, label=node_label(node, name), shape="plaintext" if constant else "box", style="rounded,filled",
        fillcolor=COLOURS.get(node.role, "#f1f5f9"), **layers.hot_style(ident, layers.is_hot(node)),
        **value_tooltip(node.outputs[0], node.span)))
    return ident


def _scope_of(param: Value) -> str:
    return param.name.rpartition(".")[0]


class _Layers:
    """Where each layer's nodes go: nested clusters, and for a collapsed layer instance one box,
    which absorbs the nodes and parameters inside it."""

    def __init__(self, dot: pydot.Dot, graph: Graph, plan: Plan, hot: set, stats: dict | None):
        self.dot, self.graph, self.plan, self.hot, self.stats = dot, graph, plan, hot, stats
        self.clusters: dict[str, pydot.Subgraph] = {}
        self.scans = 0                              # scan bodies drawn so far (names their clusters)
        self.boxes: dict[str, dict] = {}            # box ident -> what it holds
        self.box_edges: dict[tuple[str, str], dict] = {}   # (from, to) -> the values it carries
        self.hot_idents: set[str] = set()
        self.weights = {p.uid for p in graph.params}

    def is_hot(self, node: Node | None) -> bool:
        return node is not None and (id(node) in self.hot or any(v.uid in self.hot for v in node.outputs))

    def hot_style(self, ident: str, hot: bool) -> dict:
        if hot:
            self.hot_idents.add(ident)
        return HOT if hot else {}

    def cluster(self, scope: str, where: _Body | None = None):
        """The cluster of layer instance `scope` (`where`: inside a scan body's cluster)."""
        root, prefix = (where.cluster, where.prefix) if where is not None else (self.dot, "")
        if not scope:
            return root
        key = prefix + scope
        if key not in self.clusters:
            outer = scope.rpartition(".")[0]
            full = f"{where.scope}.{scope}" if where is not None and where.scope else scope
            self.clusters[key] = pydot.Cluster(_cluster_name(key), label=scope_label(self.graph, full, full.rpartition(".")[0]),
                                               style="rounded", color=LAYER_BORDER, id=f"scope:{full}")
            self.cluster(outer, where).add_subgraph(self.clusters[key])
        return self.clusters[key]

    def _box(self, scope: str, where: _Body) -> str:
        ident = _ident(f"{where.prefix}layer:{scope}")
        self.boxes.setdefault(ident, {"scope": scope, "where": where, "params": [], "forward": 0, "backward": 0,
                                      "span": None, "hot": False})
        return ident

    def place_param(self, p: Value) -> str | None:
        scope = self.plan.box(_scope_of(p))
        if scope is None:
            return None
        ident = self._box(scope, _Body(self.dot, "", ""))
        self.boxes[ident]["params"].append(p)
        self.boxes[ident]["hot"] |= p.uid in self.hot
        return ident

    def place_node(self, node: Node, where: _Body) -> str | None:
        scope = self.plan.box(node.scope)
        if scope is None:
            return None
        ident = self._box(scope, where)
        box = self.boxes[ident]
        box["backward" if node.role == "backward" else "forward"] += 1
        box["span"] = box["span"] or node.span
        box["hot"] |= self.is_hot(node)
        return ident

    def connect(self, src: str, dst: str, v: Value, hot: bool = False, label: bool = True) -> None:
        if src == dst:
            return          # inside one box
        if src in self.boxes or dst in self.boxes:
            # one edge between a box and each neighbour, however many values and nodes it stands for
            edge = self.box_edges.setdefault((src, dst), {"values": {}, "hot": False})
            edge["values"][v.uid] = v
            edge["hot"] |= hot
        else:
            self.dot.add_edge(pydot.Edge(src, dst, **({"label": shape(v)} if label else {}), **(HOT if hot else {})))

    def draw_boxes(self) -> None:
        for ident, box in self.boxes.items():
            scope, where = box["scope"], box["where"]
            repeated = scope in self.plan.repeats and len(self.plan.repeats[scope].members) > 1
            params = _param_lines(scope, box["params"], repeated)
            count = [_plural(box["forward"], "node") + (f" + {box['backward']} backward" if box["backward"] else "")]
            if not box["forward"] + box["backward"]:
                count = []      # only weights: a layer called inside a scan body lives in the scan node
            span = box["span"] or (box["params"][0].span if box["params"] else None)
            call = span.call_site if span is not None and span.call_site is not None else span
            outer = scope.rpartition(".")[0]
            self.cluster(where.relative(outer), where).add_node(pydot.Node(
                ident, label="\n".join([*self._title(scope, outer), *params, *count]), shape="box3d", style="filled",
                fillcolor=_box_colour(box), **{"color": LAYER_BORDER, **self.hot_style(ident, box["hot"])},
                **_tooltip(call, [f"click to open {scope}"])))
        for (src, dst), edge in self.box_edges.items():
            values = edge["values"]
            shapes = list(dict.fromkeys(shape(v) for v in values.values()))
            label = " ".join(shapes) if len(values) <= 2 else f"{len(values)} values"
            self.dot.add_edge(pydot.Edge(src, dst, label=label, **(HOT if edge["hot"] else {})))

    def _title(self, scope: str, outer: str) -> list[str]:
        repeat = self.plan.repeats.get(scope)
        if repeat is None or len(repeat.members) == 1:
            return [scope_label(self.graph, scope, outer)]
        local = [m.removeprefix(outer + ".") if outer else m for m in repeat.members]
        return [f"{repeat.layer} × {len(local)}", " → ".join(local)]


def _param_lines(scope: str, params: list[Value], repeated: bool) -> list[str]:
    """Each parameter's local name and shape; a count for a big or repeated layer, to keep its box readable."""
    if len(params) <= 4 and not repeated:
        return [f"{p.name[len(scope) + 1:]} {shape(p)}" for p in params]
    numbers = sum(math.prod(p.shape) for p in params)
    return [f"{len(params)} parameters, {numbers:,} numbers"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _box_colour(box: dict) -> str:
    if box["forward"]:
        return COLOURS["forward"]
    return COLOURS["backward"] if box["backward"] else PARAM


def _ident(name: str) -> str:
    return '"' + name.replace('"', "'") + '"'
