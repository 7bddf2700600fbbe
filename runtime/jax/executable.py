"""The JAX backend's executable: a graph lowered once (lowering.py) and `jax.jit`-compiled, once
per set of requested outputs (and donation choice); jit's own cache then compiles once per input
shape signature, so symbolic dimensions are bound anew for each new batch size.

Two ways to call it:

    run = BACKEND.compile(graph)
    outputs = run(feeds, params)                  # NumPy in, NumPy out (the backend protocol)

    # a stateful training loop: keep parameters and optimizer state on the device
    params = run.device_put(params)              # jax arrays (replicated over the devices)
    state = run.device_put(state)
    for batch in batches:
        out = run.run_device(batch | state, params, donate=True)     # jax arrays, no host copy
        params = {p: out[f"new:{p}"] for p in params}
        state = {s: out[f"new:{s}"] for s in state}

`run_device(..., donate=True)` hands the buffers of every parameter and input NAME that the
graph also returns as `new:NAME` (a train step's parameters and optimizer state) to XLA, which
writes the new values into them: the caller must not use the old arrays again.

With `devices=N` the batch is split over a 1-D mesh of N devices: every graph input whose first
dimension is symbolic (the batch, `N`) is sharded along axis 0 (`P("batch")`), everything else
(parameters, optimizer state) is replicated (`P()`), and XLA's partitioner inserts the
all-reduces the graph's sums and means over the batch need. An input whose batch does not divide
evenly over the devices is replicated instead (correct, merely not split).

In a run on several machines (distributed.py) the mesh spans every process's devices, each
process places only its own share of a batch, and outputs are brought back from their local
copies or gathered from every process.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Graph
from nngraph.runtime.feeds import check_input
from nngraph.runtime.jax import distributed
from nngraph.runtime.jax.loop import JaxStepLoop
from nngraph.runtime.jax.lowering import lower

CARRIED_PREFIX = "new:"          # a train step's output for its input NAME is `new:NAME`


class JaxExecutable:
    def __init__(self, graph: Graph, devices=None):
        self.graph = graph
        self.lowered = lower(graph)
        self.args = graph.inputs + graph.params
        self.carried = {v.name for v in self.args if CARRIED_PREFIX + v.name in graph.outputs}
        self._carried_at = tuple(i for i, v in enumerate(self.args) if v.name in self.carried)
        self.processes = distributed.active()      # several processes: every array is a global one
        self.mesh = _mesh(devices, self.processes)
        self._jitted: dict[tuple, object] = {}

    # ---- the backend protocol ----
    def __call__(self, feeds: dict, params: dict | None = None, outputs: list[str] | None = None) -> dict:
        """{output name: NumPy array}, as every backend's executable."""
        return {k: distributed.to_host(v) for k, v in self.run_device(feeds, params, outputs).items()}

    def loop(self, params: dict, state: dict):
        """A training loop that keeps `params` and `state` on the device(s) (loop.py)."""
        return JaxStepLoop(self, params, state)

    # ---- on the device ----
    def run_device(self, feeds: dict, params: dict | None = None, outputs: list[str] | None = None,
                   donate: bool = False) -> dict:
        """{output name: jax array}, left on the device(s). Feeds and params may be NumPy or jax
        arrays; jax arrays are checked by shape and dtype without being copied to the host."""
        names = tuple(outputs) if outputs is not None else tuple(self.graph.outputs)
        for name in names:
            self.graph.outputs[name]           # an unknown output is a KeyError, as with NumPy
        arrays, bindings = self._bind(feeds, params or {})
        self.lowered.bindings = bindings      # (read only by error messages while tracing)
        donated = self._carried_at if donate else ()
        fn, kept = self._function(names, donated)
        results = fn(tuple(arrays[i] for i in kept), tuple(arrays[i] for i in donated))
        return dict(zip(names, results))

    def run_step(self, batch: dict, carried: dict) -> dict:
        """A training loop's step (loop.py): `carried` holds the parameters and state this
        executable placed (device_put) or returned itself, so they are passed on unchecked and
        donated; only the batch is checked. {output name: jax array}."""
        bindings: dict[str, int] = {}
        arrays = []
        for value in self.args:
            array = carried.get(value.name)
            if array is None:
                array = _checked(value, batch, bindings, "input")
                if self.mesh is not None:
                    array = self._place(value, array)
            arrays.append(array)
        self.lowered.bindings = bindings
        names = tuple(self.graph.outputs)
        fn, kept = self._function(names, self._carried_at)
        results = fn(tuple(arrays[i] for i in kept), tuple(arrays[i] for i in self._carried_at))
        return dict(zip(names, results))

    def device_put(self, arrays: dict) -> dict:
        """Parameters, optimizer state or a batch (by graph input/parameter name) put on the
        device(s) the way run_device wants them: checked and cast to the graph's dtypes, batch
        inputs split over the mesh, the rest replicated. Names the graph does not know are put
        as they are, replicated."""
        by_name = {v.name: v for v in self.args}
        placed = {}
        for name, array in arrays.items():
            value = by_name.get(name)
            what = "parameter" if value in self.graph.params else "input"
            checked = _checked(value, arrays, {}, what) if value is not None else array
            placed[name] = self._place(value, checked)
        return placed

    # ---- internals ----
    def _bind(self, feeds: dict, params: dict) -> tuple[list, dict]:
        bindings: dict[str, int] = {}
        arrays = [_checked(v, feeds, bindings, "input") for v in self.graph.inputs]
        arrays += [_checked(v, params, bindings, "parameter") for v in self.graph.params]
        if self.mesh is not None:
            arrays = [self._place(v, a) for v, a in zip(self.args, arrays)]
        return arrays, bindings

    def _place(self, value, array):
        if self.mesh is None:
            return jax.device_put(array)
        split = (value is not None and value in self.graph.inputs and value.type.rank >= 1
                 and isinstance(value.shape[0], str) and np.shape(array)[0] % self.mesh.size == 0)
        sharding = NamedSharding(self.mesh, P("batch") if split else P())
        return distributed.global_array(array, sharding) if self.processes else jax.device_put(array, sharding)

    def _function(self, names: tuple[str, ...], donated: tuple[int, ...]):
        key = (names, donated)
        if key not in self._jitted:
            kept = [i for i in range(len(self.args)) if i not in donated]

            def run(kept_arrays, donated_arrays):
                arrays = [None] * len(self.args)
                for i, a in zip(kept, kept_arrays):
                    arrays[i] = a
                for i, a in zip(donated, donated_arrays):
                    arrays[i] = a
                return self.lowered(arrays, names)

            self._jitted[key] = jax.jit(run, donate_argnums=(1,) if donated else ()), kept
        return self._jitted[key]


def _checked(value, given: dict, bindings: dict, what: str):
    """check_input's diagnostics for NumPy and jax arrays alike. A jax array never leaves the
    device: a well-formed one is checked by its shape and dtype alone (the fast path of a training
    loop), any other through a zero-size NumPy stand-in of its shape and dtype."""
    array = given.get(value.name)
    if not isinstance(array, jax.Array):
        return check_input(value, given, bindings, what)
    if array.dtype == np.dtype(value.dtype) and _fits(value.shape, array.shape, bindings):
        return array
    stand_in = np.broadcast_to(np.zeros((), array.dtype), array.shape)
    check_input(value, {value.name: stand_in}, bindings, what)
    return array.astype(value.dtype)


def _fits(declared: tuple, shape: tuple, bindings: dict) -> bool:
    """Whether `shape` has the declared rank and sizes, binding new symbols as check_input would."""
    if len(declared) != len(shape):
        return False
    for want, got in zip(declared, shape):
        if isinstance(want, str):
            want = bindings.setdefault(want, got)
        if got != want:
            return False
    return True


def _mesh(devices, processes: bool = False) -> Mesh | None:
    """A 1-D mesh named "batch" over `devices` (a count, "all", or a list of jax devices); None for one.
    With several processes, always a mesh, over `devices` of each process's devices."""
    if processes:
        return Mesh(np.array(distributed.mesh_devices(devices)), ("batch",))
    if devices is None:
        return None
    if devices == "all":
        devices = jax.devices()
    if isinstance(devices, int):
        available = jax.devices()
        if devices > len(available):
            raise NNError(f"asked for {devices} devices but jax sees {len(available)} ({available[0].platform})",
                          hint="on a CPU, set XLA_FLAGS=--xla_force_host_platform_device_count=N before "
                               "jax is imported")
        devices = available[:devices]
    return Mesh(np.array(list(devices)), ("batch",))
