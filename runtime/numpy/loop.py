"""The NumPy backend's training loop: a step that updates its parameters and optimizer state in place.

The same interface as the JAX and onnxruntime loops (nngraph/training/loop.py runs any of them):

    loop = plan.loop(params, state)
    for batch in batches:
        out = loop.step(batch)                     # {name: array} for the outputs not carried over
    params, state = loop.params(), loop.state()    # copies

Every value X with an output `new:X` is carried from step to step. The loop owns those arrays
(it copies the ones it is given once) and hands them to the step without keeping a reference,
so the executor may write a node's result into a carried array whose last reader that node is
(executor.py): an embedding's sparse SGD update (`index_add`) changes only the rows it touches,
as PyTorch's in-place optimizers do, instead of copying the whole table every step.
"""
from __future__ import annotations

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.runtime.feeds import check_input

CARRIED_PREFIX = "new:"


class NumpyStepLoop:
    def __init__(self, plan, params: dict, state: dict):
        self.plan = plan
        outputs = plan.graph.outputs
        given = dict(params) | dict(state)
        self._carried = {k: np.array(v, copy=True) for k, v in given.items() if CARRIED_PREFIX + k in outputs}
        self._fixed = {k: v for k, v in given.items() if k not in self._carried}     # read, never written
        self._param_names = list(params)
        self._state_names = list(state)
        self.others = [name for name in outputs if not (name.startswith(CARRIED_PREFIX)
                                                       and name[len(CARRIED_PREFIX):] in self._carried)]

    def step(self, batch: dict) -> dict:
        plan, env, bindings = self.plan, {}, {}
        sources = self._carried | self._fixed
        for value in plan.graph.inputs:        # a bad batch is reported before anything is handed over
            env[value.uid] = check_input(value, sources if value.name in sources else batch, bindings, "input")
        for value in plan.graph.params:
            env[value.uid] = check_input(value, sources, bindings, "parameter")
        self._carried = None
        del sources                          # the step's env holds the only references to the carried arrays
        plan._execute(env, bindings)         # (if it fails part way, the loop's arrays are lost: _current says so)
        outputs = plan.graph.outputs
        self._carried = {name: env[outputs[CARRIED_PREFIX + name].uid]
                         for name in self._param_names + self._state_names if CARRIED_PREFIX + name in outputs}
        return {name: env[outputs[name].uid] for name in self.others}

    def _current(self, names) -> dict[str, np.ndarray]:
        if self._carried is None:
            raise NNError("a step of this training loop failed part way, after updating some parameters in place; "
                          "its parameters are lost", hint="start again from the last checkpoint")
        return {k: np.array(self._carried[k] if k in self._carried else self._fixed[k], copy=True) for k in names}

    def params(self) -> dict[str, np.ndarray]:
        return self._current(self._param_names)

    def state(self) -> dict[str, np.ndarray]:
        return self._current(self._state_names)
