"""The NumPy kernel table: one kernel per op, under the op's name (nngraph/ops/). A kernel takes
the input arrays and the node's attributes and returns one array (or a tuple for ops with several
outputs). Kernels are short and numerically careful."""
from __future__ import annotations

import functools

KERNELS: dict = {}


def kernel(name: str):
    def register(fn):
        KERNELS[name] = fn
        return fn
    return register


def simple_kernels(table: dict) -> None:
    """Ops that are one NumPy function of their inputs, with no attributes."""
    for name, fn in table.items():
        KERNELS[name] = lambda *arrays, _fn=fn, **attrs: _fn(*arrays)


# ops whose kernel is prepared once per node from its attributes (a fused formula compiled to
# closures, a scan body planned) rather than re-read on every call
PREPARE: dict = {}


def bind(op: str, attrs: dict):
    """The kernel of `op` with its attributes bound, made once per node when a graph is planned."""
    if op in PREPARE:
        return PREPARE[op](attrs)
    return functools.partial(KERNELS[op], **attrs) if attrs else KERNELS[op]


