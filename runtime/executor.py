"""Executes an IR graph with NumPy. A `Plan` is made once per graph (kernel lookup, order,
liveness) and then run many times; each run binds the symbolic dimensions from the actual
inputs and checks them, and frees every intermediate array right after its last use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.ir import Graph, Value
from nngraph.ops import fmt_shape
from nngraph.runtime.kernels import KERNELS, PREPARE, bind


@dataclass
class Step:
    kernel: object                # the op's kernel with the node's attributes bound
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    release: tuple[int, ...]    # values whose last use is this step


class Plan:
    def __init__(self, graph: Graph, free: bool = True):
        """`free=False` keeps every intermediate array until the run ends (no liveness freeing):
        a reference for measuring what freeing saves. Scan bodies free as always (their values
        live for one step)."""
        self.graph, self.free = graph, free
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
                for uid in step.release:
                    del env[uid]
        except (ValueError, IndexError) as err:
            # sizes known only at run time (a symbolic reshape, say) can still disagree
            node = self.graph.nodes[self.steps.index(step)]
            shapes = ", ".join(str(list(env[u].shape)) for u in step.inputs if u in env)
            raise NNError(f"`{node.op}` failed on inputs of shape {shapes} ({bindings_text(bindings)}): {err}",
                          node.span) from None


class ScanRunner:
    """The kernel of one scan node: its body is planned once, then run once per step."""

    def __init__(self, body: Graph, n_carry: int, n_seq: int, reverse: bool = False, length=None,
                 save_carries: bool = False):
        self.plan, self.nc, self.ns = Plan(body), n_carry, n_seq
        self.reverse, self.length, self.save = reverse, length, save_carries
        self.ny = len(body.outputs) - n_carry

    def __call__(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        carries, seqs, captured = list(inputs[:self.nc]), inputs[self.nc:self.nc + self.ns], list(inputs[self.nc + self.ns:])
        steps = len(seqs[0]) if seqs else int(self.length)
        if steps == 0:
            raise ValueError("a scan needs at least one step; the sequence is empty")
        results, saved = [None] * steps, [None] * steps
        for t in (reversed(range(steps)) if self.reverse else range(steps)):
            saved[t] = carries
            outs = self.plan.run_positional(carries + [s[t] for s in seqs] + captured)
            carries, results[t] = outs[:self.nc], outs[self.nc:]
        stacked = [np.stack([r[k] for r in results]) for k in range(self.ny)]
        kept = [np.stack([c[k] for c in saved]) for k in range(self.nc)] if self.save else []
        outputs = carries + stacked + kept
        return outputs[0] if len(outputs) == 1 else tuple(outputs)     # as every single-output kernel


def _run_scan(*inputs, **attrs):
    return ScanRunner(**attrs)(*inputs)


KERNELS["scan"] = _run_scan            # (constant folding calls kernels unprepared)
PREPARE["scan"] = lambda attrs: ScanRunner(**attrs)


def bindings_text(bindings: dict[str, int]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in bindings.items()) or "no symbols"


def check_input(value: Value, feeds: dict, bindings: dict[str, int], what: str) -> np.ndarray:
    """The array fed for `value`, cast to its dtype, with its shape checked and its symbols bound."""
    if value.name not in feeds:
        raise NNError(f"no value given for {what} `{value.name}` of type {value.type}", value.span,
                      hint=f"given: {', '.join(sorted(feeds)) or 'nothing'}")
    array = np.asarray(feeds[value.name])
    declared = value.type
    if not _dtype_compatible(array.dtype, declared.dtype):
        raise NNError(f"{what} `{value.name}` must be {declared.dtype}, got an array of {array.dtype}", value.span)
    if array.ndim != declared.rank:
        raise NNError(f"{what} `{value.name}` must have shape {fmt_shape(declared.shape)} (rank {declared.rank}), "
                      f"got shape {fmt_shape(array.shape)} (rank {array.ndim})", value.span)
    for axis, (want, got) in enumerate(zip(declared.shape, array.shape)):
        if isinstance(want, str) and want not in bindings:
            bindings[want] = got
        expected = bindings[want] if isinstance(want, str) else want
        if got != expected:
            bound = f" ({want} = {expected} from an earlier input)" if isinstance(want, str) else ""
            raise NNError(f"{what} `{value.name}` must have shape {fmt_shape(declared.shape)}{bound}, "
                          f"got {fmt_shape(array.shape)}: axis {axis} is {got}, expected {expected}", value.span)
    return array.astype(declared.dtype, copy=False)


def _dtype_compatible(have: np.dtype, want: str) -> bool:
    if want.startswith("float"):
        return have.kind in "fiu"
    if want.startswith("int"):
        return have.kind in "iu"
    return have.kind == "b"
