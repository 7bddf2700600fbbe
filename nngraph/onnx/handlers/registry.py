"""The op table: ONNX op type -> the handler that imports a node of that type. Each family module
of this package registers its handlers with `@handles(...)` (or writes `HANDLERS` directly)."""
from __future__ import annotations

from typing import Callable

from nngraph.ir import Value
from nngraph.onnx.context import Ctx

# ================================================================ the op table
HANDLERS: dict[str, Callable[[Ctx], Value | list[Value]]] = {}


def handles(*op_types: str):
    def register(fn):
        for op_type in op_types:
            HANDLERS[op_type] = fn
        return fn
    return register
