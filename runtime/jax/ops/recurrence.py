"""`scan` as `jax.lax.scan`: the body Graph is lowered recursively into a step function (while the
enclosing graph is traced), so XLA compiles the loop once instead of unrolling it.

Layout of the outputs, as the NumPy kernel (runtime/numpy/kernels/recurrence.py): the final
carries, then each per-step result stacked along a new axis 0, then with `save_carries` the carry
each step STARTED from, stacked. lax.scan's `reverse=True` walks the steps from the last to the
first and still stacks step t's results at index t, which is the NumPy kernel's layout too.
"""
from __future__ import annotations

import numpy as np
from jax import lax

from nngraph.runtime.jax.lowering import lower
from nngraph.runtime.jax.ops.registry import impl


@impl("scan")
def scan(*inputs, body, n_carry, n_seq, reverse=False, length=None, save_carries=False,
         steps_of=()):     # steps_of: the names pictures give the loop
    step_fn = lower(body)
    nc, ns = n_carry, n_seq
    carries, seqs, captured = inputs[:nc], inputs[nc:nc + ns], list(inputs[nc + ns:])
    steps = seqs[0].shape[0] if seqs else int(length)
    if steps == 0:
        raise ValueError("a scan needs at least one step; the sequence is empty")
    # lax.scan needs a carry to keep its exact type (weak types included) from step to step
    carries = tuple(lax.convert_element_type(c, np.dtype(v.dtype)) for c, v in zip(carries, body.inputs))

    def step(carry, items):
        outs = step_fn(list(carry) + list(items) + captured)   # captured values are closed over
        saved = tuple(carry) if save_carries else ()
        return tuple(outs[:nc]), tuple(outs[nc:]) + saved

    final, stacked = lax.scan(step, carries, tuple(seqs), length=steps, reverse=reverse)
    return tuple(final) + tuple(stacked)
