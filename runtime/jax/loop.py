"""Training steps whose parameters and optimizer state stay on the device(s) between steps.

The same interface as the onnxruntime backend's StepLoop, so the training loop (nngraph/training/
loop.py) runs either without knowing which:

    loop = executable.loop(params, state)
    for batch in batches:
        out = loop.step(batch)                     # {name: array} for the outputs not carried over
    params, state = loop.params(), loop.state()    # NumPy copies

Every value X with an output `new:X` is carried: its buffer is donated to XLA, which writes the
new value into it, so a step costs no host round trip of the parameters and no second copy.
The NumPy copies are made in every process of a run on several machines (distributed.py).
"""
from __future__ import annotations

import numpy as np

from nngraph.runtime.jax.distributed import local_view, to_host

CARRIED_PREFIX = "new:"


class JaxStepLoop:
    def __init__(self, executable, params: dict, state: dict):
        self.executable = executable
        graph = executable.graph
        self._params = executable.device_put(params)
        self._state = executable.device_put(state)
        carried = {CARRIED_PREFIX + n for n in list(self._params) + list(self._state)}
        self.others = [name for name in graph.outputs if name not in carried]

    def step(self, batch: dict) -> dict:
        out = self.executable.run_step(batch, self._params | self._state)
        self._params = {p: out[CARRIED_PREFIX + p] for p in self._params}
        self._state = {s: out[CARRIED_PREFIX + s] for s in self._state}
        return {name: local_view(out[name]) for name in self.others}     # (readable in every process)

    def params(self) -> dict[str, np.ndarray]:
        return {k: to_host(v, copy=True) for k, v in self._params.items()}

    def state(self) -> dict[str, np.ndarray]:
        return {k: to_host(v, copy=True) for k, v in self._state.items()}
