"""Graphviz pictures of the IR with pydot: one cluster per layer instance (nested for nested
layers), inputs, parameters, constants and outputs drawn distinctly, backward nodes in their own
colour, shapes on edges, and the .nn source line as each node's tooltip."""
from __future__ import annotations

import re
import shutil

import pydot

from nngraph.api import write_atomically
from nngraph.diagnostics import NNError
from nngraph.ir import Graph

COLOURS = {"forward": "#dbeafe", "backward": "#fde2e2", "optimizer": "#e9d5ff"}


def _label(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def to_dot(graph: Graph) -> pydot.Dot:
    dot = pydot.Dot(graph.name, graph_type="digraph", rankdir="TB", fontname="Helvetica")
    dot.set_node_defaults(fontname="Helvetica", fontsize="10")
    clusters: dict[str, pydot.Subgraph] = {}

    def cluster_for(scope: str):
        if not scope:
            return dot
        if scope not in clusters:
            parent = cluster_for(scope.rpartition(".")[0])
            clusters[scope] = pydot.Cluster(re.sub(r"\W", "_", scope), label=f'"{scope}"', style="rounded", color="#94a3b8")
            parent.add_subgraph(clusters[scope])
        return clusters[scope]

    for v in graph.inputs:
        role = "target" if v.name in graph.targets else "input"
        dot.add_node(pydot.Node(_ident(v.name), label=f"{role} {v.name}\n{v.type}", shape="ellipse",
                                style="filled", fillcolor="#dcfce7", tooltip=_where(v.span)))
    for p in graph.params:
        scope = p.name.rpartition(".")[0]
        cluster_for(scope).add_node(pydot.Node(_ident(p.name), label=f"{p.name}\n{p.type}", shape="box",
                                               style="filled", fillcolor="#fef9c3", tooltip=_where(p.span)))
    for node in graph.nodes:
        shapes = " ".join(_label(v.shape) for v in node.outputs)
        label = f"const {shapes}" if node.op == "constant" else f"{node.op}\n{shapes}"
        cluster_for(node.scope).add_node(pydot.Node(
            _node_id(node.outputs[0]), label=label, shape="plaintext" if node.op == "constant" else "box",
            style="rounded,filled", fillcolor=COLOURS.get(node.role, "#f1f5f9"), tooltip=_where(node.span)))
        for v in node.inputs:
            dot.add_edge(pydot.Edge(_node_id(v), _node_id(node.outputs[0]), label=_label(v.shape), fontsize="8"))
    for name, v in graph.outputs.items():
        dot.add_node(pydot.Node(_ident("out:" + name), label=name, shape="doubleoctagon", style="filled",
                                fillcolor="#fed7aa"))
        dot.add_edge(pydot.Edge(_node_id(v), _ident("out:" + name)))
    return dot


def _node_id(value) -> str:
    """A value is drawn as the node that makes it (named after its first output), or as itself."""
    return _ident(value.node.outputs[0].name if value.node is not None else value.name)


def _ident(name: str) -> str:
    return '"' + name.replace('"', "'") + '"'


def _where(span) -> str:
    if span is None:
        return ""
    return f'"{span.file}:{span.line}: {span.source.line(span.line).strip()}"'.replace("\\", "/")


def write_picture(graph: Graph, path: str) -> None:
    """.dot needs nothing more; .svg and .png need Graphviz's `dot` program."""
    dot = to_dot(graph)
    fmt = path.rsplit(".", 1)[-1].lower()
    if fmt == "dot":
        data = dot.to_string().encode()
    else:
        if shutil.which("dot") is None:
            raise NNError(f"drawing .{fmt} needs Graphviz's `dot` program, which is not installed",
                          hint="install it (apt-get install graphviz), or write a .dot file and render it elsewhere")
        data = dot.create(format=fmt)
    write_atomically(path, data)
