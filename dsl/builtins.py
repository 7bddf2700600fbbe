"""Functions every .nn file can call that map onto IR ops (layers written in .nn live in stdlib/).

Each builtin is a `Builtin(name, params, build)`: `params` is its signature (a default makes an
argument optional) and `build(call, **arguments)` emits the IR through `call.emit`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from nngraph.ir import DTYPES, Value

REQUIRED = object()


@dataclass
class Builtin:
    name: str
    params: tuple[tuple[str, object], ...]     # (name, default or REQUIRED)
    build: Callable
    doc: str = ""


BUILTINS: dict[str, Builtin] = {}


def builtin(name: str, *params: str | tuple[str, object], doc: str = ""):
    spec = tuple(p if isinstance(p, tuple) else (p, REQUIRED) for p in params)

    def register(fn):
        BUILTINS[name] = Builtin(name, spec, fn, doc)
        return fn
    return register


def _unary(op: str) -> None:
    builtin(op, "x")(lambda call, x: call.emit(op, call.tensor(x, "x")))


for _op in ("exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "softplus", "sign"):
    _unary(_op)


@builtin("identity", "x")
def _identity(call, x):
    return call.tensor(x, "x")


@builtin("matmul", "a", "b")
def _matmul(call, a, b):
    return call.emit("matmul", call.tensor(a, "a"), call.tensor(b, "b"))


for _op in ("softmax", "log_softmax"):
    builtin(_op, "x", ("axis", -1))(
        lambda call, x, axis, _op=_op: call.emit(_op, call.tensor(x, "x"), axis=call.int(axis, "axis")))


@builtin("argmax", "x", ("axis", -1), ("keepdims", False))
def _argmax(call, x, axis, keepdims):
    return call.emit("argmax", call.tensor(x, "x"), axis=call.int(axis, "axis"), keepdims=bool(keepdims))


for _op in ("sum", "mean", "max"):
    builtin(_op, "x", ("axis", None), ("keepdims", False))(
        lambda call, x, axis, keepdims, _op=_op: call.emit(
            _op, call.tensor(x, "x"), axes=call.axes(axis, "axis"), keepdims=bool(keepdims)))


@builtin("transpose", "x", ("perm", None))
def _transpose(call, x, perm):
    return call.emit("transpose", call.tensor(x, "x"), perm=call.axes(perm, "perm") if perm is not None else None)


@builtin("reshape", "x", "shape", doc="0 keeps the input's size on that axis, -1 infers one size")
def _reshape(call, x, shape):
    return call.emit("reshape", call.tensor(x, "x"), shape=call.axes(shape, "shape", sort=False))


@builtin("where", "condition", "a", "b")
def _where(call, condition, a, b):
    cond = call.tensor(condition, "condition")
    a, b = call.tensors(a, b)
    return call.emit("where", cond, a, b)


@builtin("one_hot", "labels", "depth")
def _one_hot(call, labels, depth):
    return call.emit("one_hot", call.tensor(labels, "labels"), depth=call.int(depth, "depth"), dtype=call.float_dtype)


@builtin("cast", "x", "dtype")
def _cast(call, x, dtype):
    return call.emit("cast", call.tensor(x, "x"), dtype=call.dtype(dtype, "dtype"))


@builtin("as_distribution", "target", "logits",
         doc="class indices become one-hot rows as wide as the logits; probabilities pass through")
def _as_distribution(call, target, logits):
    target, logits = call.tensor(target, "target"), call.tensor(logits, "logits")
    if target.type.is_float:
        return target
    depth = logits.shape[-1]
    if not isinstance(depth, int):
        call.fail(f"the number of classes (last axis of the logits, {depth}) must be known at compile time")
    return call.emit("one_hot", target, depth=depth, dtype=logits.dtype)


def dtype_name(text: str) -> str | None:
    aliases = {"float": None, "int": "int64"}
    if text in aliases:
        return aliases[text]
    return text if text in DTYPES else None


def constant_like(value, like: Value) -> np.ndarray:
    return np.asarray(value, dtype=like.dtype)


def _filled_like(value: float):
    def build(call, like):
        like = call.tensor(like, "like")
        return call.emit("broadcast_like", call.elab.constant(value, like.dtype, call.span, call.scope), like)
    return build


# `zeros(x)` is a tensor of zeros shaped like x; `zeros[B, 4]` (a shape in brackets) is handled by
# the elaborator, which finds where each symbolic size comes from
builtin("zeros", "like", doc="zeros shaped like a tensor, or zeros[d0, d1, ...]")(_filled_like(0.0))
builtin("ones", "like", doc="ones shaped like a tensor, or ones[d0, d1, ...]")(_filled_like(1.0))
