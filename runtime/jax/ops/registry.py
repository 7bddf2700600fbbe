"""The JAX op table: one implementation per op, under the op's name (nngraph/ops/), mirroring the
NumPy kernel table (runtime/numpy/kernels/registry.py). An implementation takes the input arrays
(jax arrays, traced inside `jax.jit`) and the node's attributes as keywords, and returns one
array, or a tuple for ops with several outputs.

Implementations only ever run while a graph is being traced, once per input-shape signature, so
attributes are plain Python values here (a scan body Graph, a fused Expr, a NumPy constant): they
are closed over by the traced function, never passed to jit as static arguments.
"""
from __future__ import annotations

IMPLS: dict = {}


def impl(name: str):
    """Register `fn(*arrays, **attrs)` as the implementation of op `name`."""
    def register(fn):
        IMPLS[name] = fn
        return fn
    return register


def simple_impls(table: dict) -> None:
    """Ops that are one jax.numpy function of their inputs, with no attributes."""
    for name, fn in table.items():
        IMPLS[name] = lambda *arrays, _fn=fn, **attrs: _fn(*arrays)
