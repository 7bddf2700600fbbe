"""Training steps that keep their state inside onnxruntime, with I/O binding.

A training-step graph (nngraph.training.step.train_step_graph) reads parameters `P`, optimizer
state `m:P`, `v:P`, `velocity:P`, `step` and a batch, and returns `new:P`, `new:m:P`, ...,
`new:step` and the loss. A `StepLoop` binds every value `X` that has an output `new:X` to an
onnxruntime buffer, and the output `new:X` to a second buffer of the same shape; after a step the
two swap roles (two I/O bindings, one per parity, made once). So parameters and state never go
through NumPy between steps (on a GPU they stay in device memory); only the batch goes in and the
other outputs (the loss) come out.

    loop = executable.loop(params, state)          # params: graph parameters, state: other fixed inputs
    for batch in batches:
        out = loop.step(batch)                     # {name: array} for the outputs not carried over
    params, state = loop.params(), loop.state()    # NumPy copies of the current values

Inputs named in `params` or `state` without a `new:` output stay fixed for the whole loop; the
graph's other inputs are fed by each `step(batch)`, checked like any feed (nngraph.runtime.feeds).
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from nngraph.runtime.feeds import check_input


def _new(name: str) -> str:
    return f"new:{name}"          # nngraph.training.step.new_name (the runtime does not import training)


class StepLoop:
    def __init__(self, executable, params: dict[str, np.ndarray], state: dict[str, np.ndarray]):
        graph = self.graph = executable.graph
        self.executable, self.session = executable, executable.session
        self._symbols: dict[str, int] = {}
        fixed = {v.name: check_input(v, params, self._symbols, "parameter") for v in graph.params}
        fixed |= {v.name: check_input(v, state, self._symbols, "input") for v in graph.inputs if v.name in state}
        self._param_names = [v.name for v in graph.params]
        self._state_names = [v.name for v in graph.inputs if v.name in state]
        self._batch = [v for v in graph.inputs if v.name not in state]
        self.carried = [name for name in fixed if _new(name) in graph.outputs]
        carried_out = {_new(name) for name in self.carried}
        self.others = [name for name in graph.outputs if name not in carried_out]

        device, device_id = _device(self.session)
        self._buffers = ({}, {})      # parity -> carried name -> OrtValue; step k reads [k % 2], writes the other
        constants = {}
        for name, array in fixed.items():
            array = _contiguous(array)
            if name in self.carried:
                self._buffers[0][name] = ort.OrtValue.ortvalue_from_numpy(array, device, device_id)
                self._buffers[1][name] = ort.OrtValue.ortvalue_from_shape_and_type(
                    array.shape, array.dtype, device, device_id)
            else:
                constants[name] = ort.OrtValue.ortvalue_from_numpy(array, device, device_id)
        self._bindings = []
        for parity in (0, 1):
            io = self.session.io_binding()
            for name in self.carried:
                io.bind_ortvalue_input(name, self._buffers[parity][name])
                io.bind_ortvalue_output(_new(name), self._buffers[1 - parity][name])
            for name, value in constants.items():
                io.bind_ortvalue_input(name, value)
            for name in self.others:             # after the carried ones: get_outputs keeps this order
                io.bind_output(name, "cpu")
            self._bindings.append(io)
        self._constants = constants
        self._parity = 0
        self.steps = 0

    def step(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One run: the batch in, the carried values updated in place (in onnxruntime), the
        outputs that are not carried (the loss) returned as NumPy arrays."""
        io = self._bindings[self._parity]
        symbols = dict(self._symbols)
        arrays = [_contiguous(check_input(v, batch, symbols, "input")) for v in self._batch]
        for v, array in zip(self._batch, arrays):
            io.bind_cpu_input(v.name, array)
        try:
            self.session.run_with_iobinding(io)
        except Exception as err:
            raise self.executable.error(err, symbols) from None
        results = io.get_outputs()[len(self.carried):]
        self._parity ^= 1
        self.steps += 1
        dtypes = self.executable.dtypes
        # copies: a CPU OrtValue's .numpy() shares its buffer, which the next run may reuse
        return {name: np.array(value.numpy(), dtype=dtypes[name]) for name, value in zip(self.others, results)}

    def values(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """The carried and fixed values as they are now (NumPy copies), by input name."""
        current = self._buffers[self._parity] | self._constants
        names = list(current) if names is None else names
        return {name: np.array(current[name].numpy()) for name in names}

    def params(self) -> dict[str, np.ndarray]:
        return self.values(self._param_names)

    def state(self) -> dict[str, np.ndarray]:
        return self.values(self._state_names)


def _contiguous(array: np.ndarray) -> np.ndarray:
    # not np.ascontiguousarray, which makes a 0-d array (Adam's `step`) 1-d
    return array if array.flags.c_contiguous else array.copy(order="C")


def _device(session: ort.InferenceSession) -> tuple[str, int]:
    """Where carried values live: the first provider's device (a GPU for CUDA), else the CPU."""
    provider = session.get_providers()[0]
    if provider == "CUDAExecutionProvider":
        options = session.get_provider_options().get(provider, {})
        return "cuda", int(options.get("device_id", 0))
    return "cpu", 0
