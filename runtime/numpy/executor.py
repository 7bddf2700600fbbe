"""Executes an IR graph with NumPy. A `Plan` is made once per graph (kernel lookup, order,
liveness) and then run many times; each run binds the symbolic dimensions from the actual
inputs and checks them, and frees every intermediate array right after its last use.

Buffer reuse: a node whose input dies at the node (the node is its last reader) may write its
result into that input's array instead of a new one (inplace.py: elementwise ufuncs, fused formulas,
relu, index_add). Whether the array is really free is checked when the node runs: it must own
its memory and nothing else may hold it (no view of it, no caller's dict, no other value), which
CPython's reference count tells exactly. So a caller's feeds and parameters are never written:
they are referenced by the caller. Only a training loop that hands its parameters over
(`Plan.loop`, loop.py) lets a step update them in place, as PyTorch's optimizers do.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Graph
from nngraph.runtime.feeds import bindings_text, check_input
from nngraph.runtime.numpy.inplace import in_place
from nngraph.runtime.numpy.kernels.registry import KERNELS, bind

_refcount = sys.getrefcount


def _sole_owner_count() -> int:
    """The reference count of an array held only by `_execute`'s argument list, measured the way
    `_execute` measures it (the count an interpreter reports differs between Python versions)."""
    env = {0: np.empty(1)}
    args = [env[0]]
    del env[0]
    return _refcount(args[0])


_SOLE = _sole_owner_count()


@dataclass
class Step:
    kernel: object                # the op's kernel with the node's attributes bound
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    release: tuple[int, ...]      # values whose last use is this step
    reuse: tuple[int, ...] = ()   # input positions whose arrays the result may overwrite
    into: object = None           # positions found free -> the kernel that may overwrite them


class NonFinite(Exception):
    """A check-mode run met a NaN or infinity: `node` is the first node that produced one."""

    def __init__(self, node, value: np.ndarray):
        super().__init__(f"`{node.op}` produced a non-finite value")
        self.node, self.kind = node, "NaN" if np.isnan(value).any() else "infinity"


class Plan:
    def __init__(self, graph: Graph, free: bool = True, check_finite: bool = False):
        """`free=False` keeps every intermediate array until the run ends (no liveness freeing,
        no buffer reuse): a reference for measuring what freeing saves. Scan bodies free as
        always (their values live for one step). `check_finite` raises NonFinite at the first
        node whose float output holds a NaN or infinity (slow: to find where a training step
        went wrong)."""
        self.graph, self.free, self.check_finite = graph, free, check_finite
        missing = sorted({n.op for n in graph.nodes if n.op not in KERNELS})
        if missing:
            raise NotImplementedError(f"no NumPy kernel for ops {missing}")
        outputs = {v.uid for v in graph.outputs.values()}
        keep = outputs | {v.uid for v in graph.inputs + graph.params}
        last_use: dict[int, int] = {}
        for i, node in enumerate(graph.nodes):
            for v in node.inputs:
                last_use[v.uid] = i
        self.steps = []
        for i, node in enumerate(graph.nodes):
            uids = [v.uid for v in node.inputs]
            release = tuple({u for u in uids if last_use[u] == i and u not in keep})
            # an output nobody reads is dropped at once
            release += tuple(v.uid for v in node.outputs if v.uid not in last_use and v.uid not in keep)
            # graph inputs may be reused too: the reference count keeps a caller's arrays intact
            dead = {k for k, u in enumerate(uids) if last_use[u] == i and u not in outputs and uids.count(u) == 1}
            reuse = in_place(node, dead) if free else None
            if not free:
                release = ()
            step = Step(bind(node.op, node.attrs), tuple(uids), tuple(v.uid for v in node.outputs), release)
            if reuse is not None:
                step.reuse, step.into = reuse
                step.release = tuple(u for u in release if u not in {uids[k] for k in step.reuse})
            self.steps.append(step)
        self._program = [(s.kernel, s.inputs, s.outputs[0] if len(s.outputs) == 1 else s.outputs, s.release,
                          s.reuse, s.into) for s in self.steps]
        self.peak_live = self._peak_live()

    def _peak_live(self) -> int:
        """How many intermediate arrays are alive at once at most (a measure of memory reuse)."""
        live = peak = 0
        for step in self.steps:
            live += len(step.outputs)
            peak = max(peak, live)
            live -= len(step.release) + len(step.reuse)
        return peak

    def run(self, feeds: dict[str, np.ndarray], params: dict[str, np.ndarray] | None = None,
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        env: dict[int, np.ndarray] = {}
        bindings: dict[str, int] = {}
        params = params or {}
        for value in self.graph.inputs:
            env[value.uid] = check_input(value, feeds, bindings, "input")
        for value in self.graph.params:
            env[value.uid] = check_input(value, params, bindings, "parameter")
        self._execute(env, bindings)
        names = outputs if outputs is not None else list(self.graph.outputs)
        return {name: env[self.graph.outputs[name].uid] for name in names}

    __call__ = run          # a Plan is the NumPy backend's executable

    def loop(self, params: dict, state: dict):
        """A training loop that owns its parameters and state, so a step may update them in place."""
        from nngraph.runtime.numpy.loop import NumpyStepLoop
        return NumpyStepLoop(self, params, state)

    def run_positional(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Inputs then parameters by position, outputs in order, without checking the arrays:
        for a loop body, whose inputs the enclosing scan already shaped."""
        env = dict(zip(self._arg_uids, arrays)) if hasattr(self, "_arg_uids") else self._first_positional(arrays)
        self._execute(env, {})
        return [env[u] for u in self._out_uids]

    def _first_positional(self, arrays):
        self._arg_uids = [v.uid for v in self.graph.inputs + self.graph.params]
        self._out_uids = [v.uid for v in self.graph.outputs.values()]
        return dict(zip(self._arg_uids, arrays))

    def _execute(self, env: dict[int, np.ndarray], bindings: dict[str, int]) -> None:
        if self.check_finite:
            return self._execute_checked(env, bindings)
        i = 0
        try:
            for i, (kernel, inputs, out, release, reuse, into) in enumerate(self._program):
                args = [env[u] for u in inputs]
                if reuse:
                    for k in reuse:
                        del env[inputs[k]]      # dead after this node
                    # free to overwrite: owned memory, referenced by `args` alone (no view, no caller)
                    free = tuple(k for k in reuse if _refcount(args[k]) == _SOLE and type(args[k]) is np.ndarray
                                 and args[k].base is None and args[k].flags.writeable)
                    result = into(free)(*args) if free else kernel(*args)
                else:
                    result = kernel(*args)
                args = None
                if type(out) is int:
                    env[out] = result
                else:
                    env.update(zip(out, result))
                result = None               # (a reference here would stop the next node reusing it)
                for uid in release:
                    del env[uid]
        except (ValueError, IndexError) as err:
            self._failed(i, env, bindings, err)

    def _execute_checked(self, env: dict, bindings: dict) -> None:
        i = 0
        try:
            for i, step in enumerate(self.steps):
                result = step.kernel(*(env[u] for u in step.inputs))
                env.update(zip(step.outputs, (result,) if len(step.outputs) == 1 else result))
                self._check(step, env)
                for uid in step.release + tuple(step.inputs[k] for k in step.reuse):
                    env.pop(uid, None)
        except (ValueError, IndexError) as err:
            self._failed(i, env, bindings, err)

    def _failed(self, i: int, env: dict, bindings: dict, err: Exception):
        # sizes known only at run time (a symbolic reshape, say) can still disagree
        node, step = self.graph.nodes[i], self.steps[i]
        shapes = ", ".join(str(list(env[u].shape)) for u in step.inputs if u in env)
        raise NNError(f"`{node.op}` failed on inputs of shape {shapes} ({bindings_text(bindings)}): {err}",
                      node.span) from None

    def _check(self, step: Step, env: dict) -> None:
        for uid in step.outputs:
            value = np.asarray(env[uid])
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                raise NonFinite(self.graph.nodes[self.steps.index(step)], value)
