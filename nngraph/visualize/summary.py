"""`Model.summary()`: a table of the model's layers in the order they first compute, each with
the type of its last value (its output) and how many trained numbers it holds, like Keras's."""
from __future__ import annotations

import numpy as np

from nngraph.ir import Graph


def summary_table(graph: Graph) -> str:
    counts: dict[str, int] = {}
    for p in graph.params:
        layer = p.name.split(".")[0] if "." in p.name else ""
        counts[layer] = counts.get(layer, 0) + int(np.prod(p.shape))
    layers: dict[str, str] = {}                       # top-level layer -> its last value's type
    for node in graph.nodes:
        if node.scope and node.outputs and node.scope.split(".")[0] != graph.loss:
            layers[node.scope.split(".")[0]] = str(node.outputs[-1].type)
    rows = [(name, layers[name], counts.get(name, 0)) for name in layers]
    rows += [(name, "(parameters)", n) for name, n in counts.items() if name and name not in layers]
    rows += [(f"output {name}", str(v.type), 0) for name, v in graph.outputs.items() if name != graph.loss]
    if counts.get(""):
        rows.append(("(model's own params)", "", counts[""]))
    width = max([5] + [len(r[0]) for r in rows])
    shape_width = max([12] + [len(r[1]) for r in rows])
    lines = [f"model {graph.name}", f"{'layer':<{width}}  {'output shape':<{shape_width}}  {'params':>9}",
             "-" * (width + shape_width + 13)]
    lines += [f"{name:<{width}}  {shape:<{shape_width}}  {n:>9,}" for name, shape, n in rows]
    total = sum(counts.values())
    lines += ["-" * (width + shape_width + 13), f"{'total':<{width}}  {'':<{shape_width}}  {total:>9,}"]
    return "\n".join(lines)
