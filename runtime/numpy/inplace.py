"""Kernels that may write their result into some of their inputs, for the executor's buffer reuse.

`in_place(node, dead)` gives (positions, make) when the node's result can overwrite an input at
one of `positions` (among `dead`, the inputs not read after the node): the input has the
result's exact type (no broadcasting into it). The executor checks at run time which of those
arrays are really free (runtime/numpy/executor.py) and calls `make(free)`, a kernel (cached per
set of free positions) that may overwrite the arrays at `free`. The value is the ordinary
kernel's, computed in the same order of operations.
"""
from __future__ import annotations

import functools

import numpy as np

from nngraph.runtime.numpy.kernels.fused import fused_into
from nngraph.runtime.numpy.kernels.indexing import index_add_into

_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
_UNARY = {"neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh}


def _binary(ufunc, free: tuple[int, ...]):
    if free[0] == 0:
        return lambda a, b: ufunc(a, b, out=a)
    return lambda a, b: ufunc(a, b, out=b)


def _unary(ufunc, free):
    return lambda x: ufunc(x, out=x)


def _relu(free):
    return lambda x: np.maximum(x, 0, out=x)


def _index_add(axis, free):
    return lambda base, *pairs: index_add_into(base, *pairs, axis=axis)


def _float(value) -> bool:
    return value.type.dtype.startswith("float")


def _leaf_reads(expr) -> list[int]:
    return [i for a in expr.args for i in ([a] if isinstance(a, int) else _leaf_reads(a))]


def in_place(node, dead: set[int]) -> tuple[tuple[int, ...], object] | None:
    out = node.outputs[0].type if len(node.outputs) == 1 else None
    if out is None or not dead:
        return None
    if node.op == "index_add":
        return ((0,), functools.lru_cache(None)(functools.partial(_index_add, node.attrs.get("axis", 0)))) \
            if 0 in dead else None
    fits = tuple(i for i, v in enumerate(node.inputs)
                 if i in dead and v.type.shape == out.shape and v.type.dtype == out.dtype and _float(v))
    if not fits:
        return None
    if node.op == "fused":
        expr = node.attrs["expr"]
        reads = _leaf_reads(expr)
        once = tuple(i for i in fits if reads.count(i) == 1)   # a value read twice must survive its first read
        return (once, functools.lru_cache(None)(functools.partial(fused_into, expr))) if once else None
    if node.op in _BINARY and len(node.inputs) == 2:
        return fits, functools.lru_cache(None)(functools.partial(_binary, _BINARY[node.op]))
    if fits == (0,) and node.op in _UNARY:
        return fits, functools.lru_cache(None)(functools.partial(_unary, _UNARY[node.op]))
    if fits == (0,) and node.op == "relu":
        return fits, functools.lru_cache(None)(_relu)
    return None
