"""Executes an IR graph with NumPy. A `Plan` is made once per graph (kernel lookup, order,
liveness) and then run many times; each run binds the symbolic dimensions from the actual
inputs and checks them, and frees every intermediate array right after its last use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Graph
from nngraph.runtime.feeds import bindings_text, check_input
from nngraph.runtime.numpy.kernels.registry import KERNELS, bind


@dataclass
class Step:
    kernel: object                # the op's kernel with the node's attributes bound
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    release: tuple[int, ...]    # values whose last use is this step


class NonFinite(Exception):
    """A check-mode run met a NaN or infinity: `node` is the first node that produced one."""

    def __init__(self, node, value: np.ndarray):
        super().__init__(f"`{node.op}` produced a non-finite value")
        self.node, self.kind = node, "NaN" if np.isnan(value).any() else "infinity"


class Plan:
    def __init__(self, graph: Graph, free: bool = True, check_finite: bool = False):
        """`free=False` keeps every intermediate array until the run ends (no liveness freeing):
        a reference for measuring what freeing saves. Scan bodies free as always (their values
        live for one step). `check_finite` raises NonFinite at the first node whose float output
        holds a NaN or infinity (slow: to find where a training step went wrong)."""
        self.graph, self.free, self.check_finite = graph, free, check_finite
        missing = sorted({n.op for n in graph.nodes if n.op not in KERNELS})
        if missing:
            raise NotImplementedError(f"no NumPy kernel for ops {missing}")
        keep = {v.uid for v in graph.outputs.values()} | {v.uid for v in graph.inputs + graph.params}
        last_use: dict[int, int] = {}
        for i, node in enumerate(graph.nodes):
            for v in node.inputs:
                last_use[v.uid] = i
        self.steps = []
        for i, node in enumerate(graph.nodes):
            release = tuple({v.uid for v in node.inputs if last_use[v.uid] == i and v.uid not in keep})
            # an output nobody reads is dropped at once
            release += tuple(v.uid for v in node.outputs if v.uid not in last_use and v.uid not in keep)
            if not free:
                release = ()
            self.steps.append(Step(bind(node.op, node.attrs), tuple(v.uid for v in node.inputs),
                                   tuple(v.uid for v in node.outputs), release))
        self.peak_live = self._peak_live()

    def _peak_live(self) -> int:
        """How many intermediate arrays are alive at once at most (a measure of memory reuse)."""
        live = peak = 0
        for step in self.steps:
            live += len(step.outputs)
            peak = max(peak, live)
            live -= len(step.release)
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

    def run_positional(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Inputs then parameters by position, outputs in order, without checking the arrays:
        for a loop body, whose inputs the enclosing scan already shaped."""
        env = {v.uid: a for v, a in zip(self.graph.inputs + self.graph.params, arrays)}
        self._execute(env, {})
        return [env[v.uid] for v in self.graph.outputs.values()]

    def _execute(self, env: dict[int, np.ndarray], bindings: dict[str, int]) -> None:
        try:
            for step in self.steps:
                result = step.kernel(*(env[u] for u in step.inputs))
                if len(step.outputs) == 1:
                    env[step.outputs[0]] = result
                else:
                    env.update(zip(step.outputs, result))
                if self.check_finite:
                    self._check(step, env)
                for uid in step.release:
                    del env[uid]
        except (ValueError, IndexError) as err:
            # sizes known only at run time (a symbolic reshape, say) can still disagree
            node = self.graph.nodes[self.steps.index(step)]
            shapes = ", ".join(str(list(env[u].shape)) for u in step.inputs if u in env)
            raise NNError(f"`{node.op}` failed on inputs of shape {shapes} ({bindings_text(bindings)}): {err}",
                          node.span) from None

    def _check(self, step: Step, env: dict) -> None:
        for uid in step.outputs:
            value = np.asarray(env[uid])
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                raise NonFinite(self.graph.nodes[self.steps.index(step)], value)
