"""The kernel of `scan`: its body is planned once (a NumPy Plan of its own), then run once per step."""
from __future__ import annotations

import numpy as np

from nngraph.ir.graph import Graph
from nngraph.runtime.numpy.executor import Plan
from nngraph.runtime.numpy.kernels.registry import KERNELS, PREPARE


class ScanRunner:
    """The kernel of one scan node: its body is planned once, then run once per step."""

    def __init__(self, body: Graph, n_carry: int, n_seq: int, reverse: bool = False, length=None,
                 save_carries: bool = False, steps_of=()):     # steps_of: the names pictures give the loop
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
            if self.save:                # (else every step's carries would stay alive: a cache each step)
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
