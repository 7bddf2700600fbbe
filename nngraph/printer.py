"""A readable textual dump of the IR, for people and for golden tests.

    graph squiggle(dose: float32[N, 1], observed: float32[N, 1] target)
      param h.w: float32[1, 2] ~ glorot
      %h.matmul = matmul(%dose, %h.w) : float32[N, 2]            # squiggle.nn:6 h
      ...
      return efficacy = %efficacy, loss = %loss
"""
from __future__ import annotations

import numpy as np

from nngraph.ir import Graph, Node


def format_attr(value) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 4:
            return np.array2string(value, separator=", ") if value.ndim else repr(value.item())
        return f"<{value.dtype}{list(value.shape)}>"
    if isinstance(value, Graph):
        return f"<graph {value.name}>"
    return repr(value)


def format_node(node: Node) -> str:
    outs = ", ".join(f"%{v.name}" for v in node.outputs)
    args = ", ".join(f"%{v.name}" for v in node.inputs)
    attrs = ", ".join(f"{k}={format_attr(v)}" for k, v in sorted(node.attrs.items()))
    call = f"{node.op}({args}{', ' if args and attrs else ''}{attrs})"
    types = ", ".join(str(v.type) for v in node.outputs)
    line = f"{outs} = {call} : {types}"
    where = []
    if node.span is not None:
        where.append(f"{node.span.file.split('/')[-1]}:{node.span.line}")
    if node.scope:
        where.append(node.scope)
    if node.role != "forward":
        where.append(node.role)
    return f"{line:<72}  # {' '.join(where)}" if where else line


def format_graph(graph: Graph, indent: str = "") -> str:
    ins = ", ".join(f"{v.name}: {v.type}{' target' if v.name in graph.targets else ''}" for v in graph.inputs)
    lines = [f"{indent}graph {graph.name}({ins}) {{"]
    for p in graph.params:
        init = graph.param_init.get(p.name)
        how = f" ~ {init.kind}" if init else ""
        lines.append(f"{indent}  param {p.name}: {p.type}{how}")
    for node in graph.nodes:
        lines.append(f"{indent}  {format_node(node)}")
        for key, sub in node.attrs.items():
            if isinstance(sub, Graph):
                lines.append(format_graph(sub, indent + "    "))
    outs = ", ".join(f"{k} = %{v.name}" for k, v in graph.outputs.items())
    lines.append(f"{indent}  return {outs}")
    lines.append(f"{indent}}}")
    return "\n".join(lines)
