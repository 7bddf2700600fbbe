"""The op table. It knows no op: each op family in nngraph/ops/ registers its ops here with
`defop`, declaring its shape/type rule and its symbolic gradient (a VJP that *builds IR* through an
`Emitter`, never computes numbers). Backends and the ONNX exporter keep their own tables keyed by
the same op names.

A VJP has the signature ``vjp(e, node, grads, wants) -> [grad for each input]``: `grads` are
the gradients of the node's outputs (None where nothing flows back), `wants[i]` says whether
input i needs a gradient; return None for inputs that need none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nngraph.ir.types import TensorType


class ShapeError(Exception):
    """An op's inputs do not fit its type rule. The elaborator adds the source span."""


@dataclass
class OpDef:
    name: str
    infer: Callable[[list[TensorType], dict], list[TensorType]]
    vjp: Callable | None = None          # None: not differentiable (gradient is zero)
    arity: int | None = None             # number of tensor inputs, None when variadic


OPS: dict[str, OpDef] = {}


def defop(name: str, infer, vjp=None, arity: int | None = None) -> OpDef:
    assert name not in OPS, f"op {name} defined twice"
    OPS[name] = opdef = OpDef(name, infer, vjp, arity=arity)
    return opdef


def differentiable(opname: str) -> bool:
    return OPS[opname].vjp is not None
