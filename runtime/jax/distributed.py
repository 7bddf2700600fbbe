"""Training on several machines: one process per machine, joined by `jax.distributed` into one
set of global devices, over which each batch is split as over one machine's devices.

    # on machine 0 (address 10.0.0.1)                 # on machine 1
    nngraph train m.nn --backend jax \\               nngraph train m.nn --backend jax \\
        --coordinator 10.0.0.1:1234 \\                    --coordinator 10.0.0.1:1234 \\
        --num-processes 2 --process-id 0 -o w.npz        --num-processes 2 --process-id 1

Every process runs the same program on the same data (the training loop shuffles with a seeded
generator), so each holds the same GLOBAL batch at every step. The mesh spans every process's
devices, process 0's first; `devices` counts each process's own devices (None: one each, N, or
"all"), and every process must be given the same. A batch input is split along its rows: process
k of P puts only rows [k*n/P, (k+1)*n/P) on its devices (`make_array_from_process_local_data`),
and a batch whose rows do not divide evenly over the mesh is replicated instead, as on one
machine. Parameters and optimizer state are replicated. XLA inserts the cross-process
all-reduces (gloo over TCP on CPUs) that the graph's sums and means over the batch need.

Outputs come back to NumPy in every process: a replicated one (the loss, the new parameters) from
its local copy, a split one (predictions per row) gathered from all processes. Gathering is a
collective: every process must ask for the same outputs in the same order, which the shared
program guarantees.
"""
from __future__ import annotations

import zlib

import jax
import numpy as np
from jax.experimental import multihost_utils

from nngraph.diagnostics import NNError

_joined: tuple | None = None       # (coordinator, num_processes, process_id) this process joined with


def initialize(coordinator: str, num_processes: int | None, process_id: int | None) -> None:
    """Join the run coordinated at `coordinator` (HOST:PORT of process 0); once per process.
    Joining again with the same arguments (a second backend made with them) does nothing."""
    global _joined
    wanted = (coordinator, num_processes, process_id)
    if _joined == wanted:
        return
    if _joined is not None or jax.distributed.is_initialized():
        raise NNError("this process has already joined a jax.distributed run"
                      + (f" (coordinator {_joined[0]}, process {_joined[2]} of {_joined[1]})" if _joined else ""),
                      hint="a process joins one run: make its jax backend with --coordinator once")
    if num_processes is None or process_id is None:
        raise NNError("a coordinator needs the number of processes and this process's id",
                      hint="--coordinator HOST:PORT --num-processes P --process-id I")
    _use_cpu_collectives()
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    except Exception as err:      # jax raises RuntimeError, ValueError or its XlaRuntimeError
        raise NNError(f"cannot join the jax.distributed run at {coordinator}: {err}",
                      hint="make the jax backend before anything else runs on jax; every process needs "
                           "the same --coordinator (process 0's address) and --num-processes") from None
    _joined = wanted


def _use_cpu_collectives() -> None:
    """Without a CPU collectives library, XLA on CPU cannot all-reduce across processes. Recent jax
    uses gloo by default; older releases must be asked. A choice the user made (e.g. mpi) stands."""
    if hasattr(jax.config, "jax_cpu_collectives_implementation"):
        if jax.config.jax_cpu_collectives_implementation is None:
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
    elif hasattr(jax.config, "jax_cpu_enable_gloo_collectives"):        # older jax
        jax.config.update("jax_cpu_enable_gloo_collectives", True)


def active() -> bool:
    """Whether this process is one of several. (Asks jax nothing unless jax.distributed is
    initialized, so jax's backend is not started early in a single process.)"""
    return jax.distributed.is_initialized() and jax.process_count() > 1


def is_main_process() -> bool:
    return not active() or jax.process_index() == 0


def check_same(value, what: str) -> None:
    """An NNError unless every process passed the same `value`: meshes that differ between
    processes would make the first step wait forever instead of failing."""
    code = np.array([zlib.crc32(repr(value).encode())], np.int64)
    try:
        multihost_utils.assert_equal(code)
    except AssertionError:
        raise NNError(f"the processes were given different {what} (this one: {value})",
                      hint=f"pass the same {what} to every process") from None


def mesh_devices(devices) -> list:
    """The global devices of the mesh: each process's first `devices` devices (None: one, a
    count, or "all"), process 0's first. Grouping by process keeps each process's share of a
    batch one contiguous block of rows. A list of devices is taken as it is, in that order."""
    if not (devices is None or devices == "all" or isinstance(devices, int)):
        return sorted(devices, key=lambda d: (d.process_index, d.id))
    by_process: dict[int, list] = {}
    for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(device.process_index, []).append(device)
    count = 1 if devices is None else devices
    if count != "all" and count > min(len(ds) for ds in by_process.values()):
        fewest = min(len(ds) for ds in by_process.values())
        raise NNError(f"asked for {count} devices per process but a process has {fewest}",
                      hint="on a CPU, set XLA_FLAGS=--xla_force_host_platform_device_count=N in every "
                           "process before jax is imported")
    return [d for p in sorted(by_process) for d in (by_process[p] if count == "all" else by_process[p][:count])]


def global_array(array, sharding) -> jax.Array:
    """`array` (the same global value in every process) as a global array laid out by `sharding`;
    this process puts only its own share on its devices. A global array is resharded if need be."""
    if isinstance(array, jax.Array) and not array.is_fully_addressable:
        return array if array.sharding == sharding else jax.device_put(array, sharding)
    array = np.asarray(array)
    return jax.make_array_from_process_local_data(sharding, local_share(array, sharding), array.shape)


def local_share(array: np.ndarray, sharding) -> np.ndarray:
    """The rows of `array` this process's devices hold under `sharding`: all of them when it is
    replicated, [k*n/P, (k+1)*n/P) for process k of P when it is split along axis 0."""
    if array.ndim == 0 or sharding.is_fully_replicated:
        return array
    rows = {index[0].indices(len(array)) for index in sharding.addressable_devices_indices_map(array.shape).values()}
    start, stop = min(r[0] for r in rows), max(r[1] for r in rows)
    if sum(r[1] - r[0] for r in rows) != stop - start:         # (mesh_devices keeps them contiguous)
        raise NNError("this process's devices hold rows that are not one block", hint="order the devices by process")
    return array[start:stop]


def to_host(x, copy: bool = False) -> np.ndarray:
    """A NumPy array of an output, in every process: a replicated one from this process's own
    copy, a split one gathered from every process (a collective: all processes must call it)."""
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
        return np.array(x) if copy else np.asarray(x)
    if x.sharding.is_fully_replicated:
        return np.array(x.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def local_view(x):
    """An output this process can read: a replicated one as its local device copy (so reading a
    loss waits for nothing else), a split one gathered; a single process's arrays as they are."""
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
        return x
    if x.sharding.is_fully_replicated:
        return x.addressable_data(0)
    return to_host(x)
