"""Checking and binding the arrays fed to a graph, shared by every backend: each input's dtype
and rank, and its symbolic dimensions bound from the actual shapes and checked for agreement."""
from __future__ import annotations

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.ir.graph import Value
from nngraph.ops.rules import fmt_shape


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
