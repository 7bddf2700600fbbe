"""The onnxruntime backend: a graph is exported to ONNX in memory and run by one
`onnxruntime.InferenceSession`.

    backend = nngraph.runtime.get("onnxruntime")
    run = backend.compile(graph)                   # export + session, once
    outputs = run(feeds, params)                   # {output name: array}, like every backend

An op is supported iff it has an ONNX lowering (nngraph/onnx/lower/). Parameters are graph
inputs of the exported model (no initializers), so new parameters are fed on every call without
exporting again. Feeds are checked by nngraph.runtime.feeds, so a wrong feed is the same NNError
as on the NumPy backend; an error inside onnxruntime becomes an NNError at the .nn line of the op
it names (e.g. onnxruntime has no float64 Conv).

Settings, on a backend of one's own or per compile:

    OnnxruntimeBackend(threads=1, providers=["CPUExecutionProvider"]).compile(graph)
    BACKEND.compile(graph, threads=1)

`threads` is SessionOptions.intra_op_num_threads (default: onnxruntime's own choice);
`providers` defaults to CUDA then CPU, keeping those onnxruntime has, so a GPU is used when the
installed onnxruntime has CUDA.

Training keeps parameters and optimizer state inside onnxruntime between steps: the executable of
a training-step graph (nngraph.training.step.train_step_graph) makes a `StepLoop` (loop.py) that
binds each step's `new:NAME` outputs as the next step's `NAME` inputs with I/O binding:

    step = backend.compile(train_step_graph(graph, optimizer))
    loop = step.loop(params, initial_state(graph, optimizer))
    for batch in batches:                          # {input name: array}, the data inputs only
        loss = float(loop.step(batch)[graph.loss])
    params, state = loop.params(), loop.state()    # copies, as NumPy arrays

This is the one backend that depends on nngraph.onnx: it runs exported graphs.
"""
from __future__ import annotations

import onnxruntime as ort

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Graph
from nngraph.onnx.lower.registry import LOWERINGS
from nngraph.runtime import require_support
from nngraph.runtime.onnxruntime.executable import OrtExecutable, create_session, export_for_session
from nngraph.runtime.onnxruntime.loop import StepLoop

__all__ = ["BACKEND", "OnnxruntimeBackend", "OrtExecutable", "StepLoop", "DEFAULT_PROVIDERS"]

DEFAULT_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxruntimeBackend:
    name = "onnxruntime"

    def __init__(self, threads: int | None = None, providers=None):
        """`threads`: intra-op threads (None: onnxruntime's default). `providers`: execution
        providers in order of preference, names or (name, options) pairs (None: CUDA, then CPU)."""
        self.threads, self.providers = threads, providers

    def supports(self, op: str) -> bool:
        return op in LOWERINGS

    def compile(self, graph: Graph, threads: int | None = None, providers=None) -> OrtExecutable:
        """Export `graph` (parameters as inputs) and open one session on it; keyword arguments
        override the backend's settings for this graph."""
        require_support(self, graph)
        threads = self.threads if threads is None else threads
        chosen = choose_providers(self.providers if providers is None else providers)
        model = export_for_session(graph)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 4          # fatal only: errors are raised, as NNErrors
        session = create_session(graph, model, options, chosen)
        return OrtExecutable(graph, model, session, options)


def choose_providers(wanted=None) -> list:
    """The wanted providers (default CUDA, then CPU) that this onnxruntime has, in order."""
    wanted = list(DEFAULT_PROVIDERS if wanted is None else wanted)
    have = ort.get_available_providers()
    chosen = [p for p in wanted if (p[0] if isinstance(p, tuple) else p) in have]
    if not chosen:
        names = [p[0] if isinstance(p, tuple) else p for p in wanted]
        raise NNError(f"onnxruntime has none of the execution providers {', '.join(names)}",
                      hint=f"this onnxruntime has: {', '.join(have)}")
    return chosen


BACKEND = OnnxruntimeBackend()
