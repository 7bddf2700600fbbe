"""The NumPy backend: nngraph's reference semantics and its default runtime.

`evaluate` is the one door through which the rest of nngraph (constant folding, the ONNX
importer) computes an op's value at compile time. `BACKEND` is the runtime behind the backend
protocol (nngraph/runtime/__init__.py): a `Plan` per graph, run many times, with NumPy's BLAS
threads chosen deliberately (threads.py: the idle cores by default, NNGRAPH_THREADS, `threads=`).
"""
from __future__ import annotations

import numpy as np

from nngraph.ir.graph import Graph
from nngraph.runtime import require_support
from nngraph.runtime.numpy import kernels  # noqa: F401  (registers every kernel)
from nngraph.runtime.numpy.executor import NonFinite, Plan  # noqa: F401  (NonFinite: for check mode)
from nngraph.runtime.numpy.kernels.registry import KERNELS
from nngraph.runtime.numpy.threads import set_threads


def evaluate(op: str, inputs, attrs: dict):
    """The value of one op applied to arrays: an array, or a tuple for ops with several outputs."""
    return KERNELS[op](*(np.asarray(a) for a in inputs), **attrs)


class NumpyBackend:
    name = "numpy"

    def __init__(self, threads: int | str | None = None):
        """`threads`: NumPy's BLAS threads, a number or "auto" (None: $NNGRAPH_THREADS, else auto;
        threads.py), set when a graph is compiled."""
        self.threads = threads

    def supports(self, op: str) -> bool:
        return op in KERNELS

    def compile(self, graph: Graph, free: bool = True, check_finite: bool = False) -> Plan:
        """A Plan is the executable: `plan(feeds, params, outputs)`. `free=False` keeps every
        intermediate (a reference for measuring what liveness freeing saves); `check_finite`
        raises NonFinite at the first node that makes a NaN or infinity."""
        require_support(self, graph)
        set_threads(self.threads)
        return Plan(graph, free=free, check_finite=check_finite)


BACKEND = NumpyBackend()
