"""The JAX backend: nngraph's IR compiled by XLA. It runs the same graphs as the NumPy reference
backend (runtime/numpy/), including nngraph's own symbolic gradient graphs and whole training
steps (nngraph.training.step.train_step_graph): every op is lowered to jax.numpy / jax.lax
(ops/<family>.py, mirroring runtime/numpy/kernels/), never differentiated by JAX itself.

    backend = nngraph.runtime.get("jax")
    run = backend.compile(graph)                 # or compile(graph, devices=4): data parallel
    outputs = run(feeds, params)                 # NumPy in and out
    out = run.run_device(feeds, params, donate=True)   # jax arrays kept on the device

    # one process of a run on several machines (distributed.py), made before jax runs anything
    backend = nngraph.runtime.get("jax", coordinator="10.0.0.1:1234", num_processes=2, process_id=0)

Importing this module turns on jax's 64-bit mode (`jax_enable_x64`, process-wide) so int64 and
float64 graphs keep their dtypes; every op then states its dtypes explicitly, so float32 graphs
stay float32.
"""
from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

from nngraph.diagnostics import NNError  # noqa: E402
from nngraph.ir.graph import Graph  # noqa: E402
from nngraph.runtime import require_support  # noqa: E402
from nngraph.runtime.jax import distributed, ops  # noqa: E402,F401  (ops registers every implementation)
from nngraph.runtime.jax.executable import JaxExecutable  # noqa: E402
from nngraph.runtime.jax.ops.registry import IMPLS  # noqa: E402


class JaxBackend:
    name = "jax"

    def __init__(self, devices=None, coordinator=None, num_processes=None, process_id=None):
        """`devices`: how many of jax's devices (or which) to split each batch over; None: one.
        `coordinator` (HOST:PORT of process 0), `num_processes`, `process_id`: join a run on
        several machines (distributed.py), before anything else runs on jax; `devices` then
        counts each process's own devices (None: one each) and must be the same in every one."""
        self.devices = devices
        if coordinator is not None:
            distributed.initialize(coordinator, num_processes, process_id)
            distributed.check_same(devices, "--devices")
        elif num_processes is not None or process_id is not None:
            raise NNError("num_processes and process_id need a coordinator", hint="--coordinator HOST:PORT")

    @property
    def is_main_process(self) -> bool:
        """False in every process of a run on several machines but process 0, which reports."""
        return distributed.is_main_process()

    def supports(self, op: str) -> bool:
        return op in IMPLS

    def compile(self, graph: Graph, devices=None) -> JaxExecutable:
        """An executable of `graph` (see executable.py). `devices`: a count or a list of jax
        devices over which to split the batch; None runs on jax's default device."""
        require_support(self, graph)
        return JaxExecutable(graph, self.devices if devices is None else devices)


BACKEND = JaxBackend()
