"""The pass pipeline. Each pass is a function Graph -> Graph with one job; -O0 runs none.

Two stages: passes in BEFORE_GRAD rewrite the model (with its loss) before autodiff, for
fusions whose own gradient beats the one autodiff would derive from the parts; PIPELINES run
on the graph that is executed or exported (inference, gradient, or training step).
"""
from __future__ import annotations

import time
from typing import Callable

from nngraph.ir import Graph
from nngraph.passes.accumulate import sum_scan_accumulations
from nngraph.passes.cleanup import common_subexpression_elimination, constant_folding, dead_code_elimination, shape_folding
from nngraph.passes.fusion import fuse_elementwise, fuse_gelu, fuse_matmul_bias, fuse_softmax_cross_entropy
from nngraph.passes.hoist import hoist_scan_invariants
from nngraph.passes.loops import count_nodes, nested_bodies, share_scan_forward  # noqa: F401  (count_nodes: for bench/)
from nngraph.passes.rewrite import redirect_outputs
from nngraph.passes.simplify import algebraic_simplification

CLEANUP = [constant_folding, shape_folding, algebraic_simplification, share_scan_forward, hoist_scan_invariants,
           sum_scan_accumulations, common_subexpression_elimination, dead_code_elimination]

# hoisting before autodiff: a projection moved out of a scan gets its weight gradient as one GEMM over time
BEFORE_GRAD = {0: [], 1: [hoist_scan_invariants], 2: [hoist_scan_invariants, fuse_softmax_cross_entropy, fuse_gelu]}

PIPELINES = {
    0: [],
    1: CLEANUP,
    # fusions need the cleaned graph (dead readers would block them), and leave dead nodes behind
    2: CLEANUP + [fuse_matmul_bias, fuse_elementwise, dead_code_elimination],
}

PASS_NAMES = sorted({p.__name__ for passes in list(PIPELINES.values()) + list(BEFORE_GRAD.values()) for p in passes})


def optimize(graph: Graph, level: int = 1, stats: list | None = None,
             observe: Callable[[str, Graph], None] | None = None, passes: list | None = None) -> Graph:
    """Run the level's passes (or `passes`). `stats`, if given, receives (pass, nodes before,
    nodes after, seconds) per pass; `observe(pass name, graph)` is called after each pass."""
    for run_pass in PIPELINES[level] if passes is None else passes:
        before, start = len(graph.nodes), time.perf_counter()
        graph = run_pass(graph)
        for body in nested_bodies(graph):       # a scan body is optimized like any graph
            run_pass(body)
        if stats is not None:
            stats.append((run_pass.__name__, before, len(graph.nodes), time.perf_counter() - start))
        if observe is not None:
            observe(run_pass.__name__, graph)
    return graph


def optimize_before_grad(graph: Graph, level: int = 1, stats: list | None = None, observe=None) -> Graph:
    return optimize(graph, level, stats, observe, passes=BEFORE_GRAD[level])


__all__ = ["PIPELINES", "BEFORE_GRAD", "PASS_NAMES", "optimize", "optimize_before_grad", "redirect_outputs",
           "constant_folding", "shape_folding", "algebraic_simplification", "common_subexpression_elimination",
           "dead_code_elimination", "share_scan_forward", "hoist_scan_invariants", "sum_scan_accumulations",
           "fuse_softmax_cross_entropy", "fuse_gelu", "fuse_matmul_bias", "fuse_elementwise"]
