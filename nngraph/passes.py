"""The pass pipeline. Each pass is a function Graph -> Graph with one job."""
from __future__ import annotations

from nngraph.ir import Graph


def dead_code_elimination(graph: Graph) -> Graph:
    """Drop nodes no output depends on."""
    return graph.prune()


PIPELINES = {0: [], 1: [dead_code_elimination], 2: [dead_code_elimination]}


def optimize(graph: Graph, level: int = 1) -> Graph:
    for p in PIPELINES[level]:
        graph = p(graph)
    return graph
