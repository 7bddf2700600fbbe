"""Lowering: an IR Graph becomes a pure Python function of jax arrays, by walking its nodes in
topological order and calling each op's implementation (ops/registry.py). The function is meant
to run under `jax.jit`: it is traced once per input-shape signature, at which point every
symbolic dimension is a concrete size, and XLA compiles the whole graph (forward, nngraph's own
symbolic gradient and the optimizer update alike) into one program. Scan bodies are lowered the
same way, recursively, by the `scan` implementation.
"""
from __future__ import annotations

import numpy as np
from jax import lax

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Graph
from nngraph.runtime.feeds import bindings_text
from nngraph.runtime.jax.ops.registry import IMPLS


class Lowered:
    """`graph` as a function: ``lowered(arrays)`` takes the inputs then the parameters by position
    and returns the outputs in order (or those named by `names`), each of its declared dtype."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.bindings: dict[str, int] = {}      # the run's symbol sizes, for error messages

    def __call__(self, arrays, names: tuple[str, ...] | None = None) -> list:
        graph = self.graph
        env = {v.uid: a for v, a in zip(graph.inputs + graph.params, arrays)}
        wanted = [graph.outputs[n] for n in names] if names is not None else list(graph.outputs.values())
        for node in _needed(graph, wanted):
            args = [env[v.uid] for v in node.inputs]
            try:
                result = IMPLS[node.op](*args, **node.attrs)
            except (ValueError, IndexError, TypeError) as err:
                # sizes known only at run time (a symbolic reshape, say) can still disagree
                shapes = ", ".join(str(list(a.shape)) for a in args)
                raise NNError(f"`{node.op}` failed on inputs of shape {shapes} ({bindings_text(self.bindings)}): "
                              f"{err}", node.span) from None
            results = result if isinstance(result, (tuple, list)) else (result,)
            for value, array in zip(node.outputs, results):
                env[value.uid] = _as_declared(array, value.dtype)
        return [env[v.uid] for v in wanted]


def lower(graph: Graph) -> Lowered:
    return Lowered(graph)


def _as_declared(array, dtype: str):
    """The array in the IR's declared dtype (a no-op when jax.numpy already kept it)."""
    if str(array.dtype) == dtype and not getattr(array, "weak_type", False):
        return array
    return lax.convert_element_type(array, np.dtype(dtype))


def _needed(graph: Graph, wanted: list) -> list:
    """The nodes the wanted values depend on, in order (tracing the rest would only cost time)."""
    live = {v.uid for v in wanted}
    kept = []
    for node in reversed(graph.nodes):
        if any(v.uid in live for v in node.outputs):
            kept.append(node)
            live.update(v.uid for v in node.inputs)
    return kept[::-1]
