"""The evaluable form of an explained derivative: a small expression tree whose operators are IR
ops (so the NumPy kernels evaluate it), whose leaves are values of the gradient graph under the
model's own names, and whose simplifications keep its value. The text and HTML are rendered from
it (nngraph/explain/render.py), so every printed formula can be checked against the graph.
"""
from __future__ import annotations

import numpy as np

from nngraph.runtime.numpy.kernels.registry import bind


class Expr:
    """`op` is an IR op name, or "leaf" (a graph value: `value`, shown as `label`), or "const"
    (`attrs["value"]`), or "grad" (the gradient of a named value, derived on its own line)."""
    __slots__ = ("op", "args", "attrs", "value", "label", "shape")

    def __init__(self, op: str, args=(), attrs=None, value=None, label: str = "", shape=()):
        self.op, self.args, self.attrs = op, tuple(args), dict(attrs or {})
        self.value, self.label, self.shape = value, label, tuple(shape)

    def __repr__(self) -> str:
        return f"Expr({self.op}, {self.label or ''}{list(self.args)})"

    @property
    def is_const(self) -> bool:
        return self.op == "const"

    def const_equals(self, number: float) -> bool:
        if not self.is_const:
            return False
        c = np.asarray(self.attrs["value"])
        return bool(c.size and np.all(c == number))

    def leaves(self) -> list[Expr]:
        """The leaves, each shared subtree visited once, left to right."""
        found, seen, stack = [], set(), [self]
        while stack:
            e = stack.pop()
            if id(e) in seen:
                continue
            seen.add(id(e))
            if e.op in ("leaf", "grad"):
                found.append(e)
            stack += reversed(e.args)
        return found


def leaf(value, label: str, kind: str = "leaf") -> Expr:
    return Expr(kind, value=value, label=label, shape=value.shape)


def const(number, dtype="float64") -> Expr:
    return Expr("const", attrs={"value": np.asarray(number, dtype=dtype)})


# ---------------------------------------------------------------- evaluation
def evaluate(expr: Expr, env: dict[int, np.ndarray], cache: dict | None = None) -> np.ndarray:
    """The value of `expr`, its leaves read from `env` (value uid -> array)."""
    cache = {} if cache is None else cache
    if id(expr) in cache:
        return cache[id(expr)]
    if expr.op in ("leaf", "grad"):
        result = env[expr.value.uid]
    elif expr.op == "const":
        result = np.asarray(expr.attrs["value"])
    else:
        args = [evaluate(a, env, cache) for a in expr.args]
        attrs = {k: v for k, v in expr.attrs.items() if not k.startswith("_")}    # _pick, _over: ours
        out = bind(expr.op, attrs)(*args)
        result = out[expr.attrs.get("_pick", 0)] if isinstance(out, (tuple, list)) else out
    cache[id(expr)] = result
    return result


# ---------------------------------------------------------------- simplification
_FOLD = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
# ops that only reshape or broadcast: around a scalar constant they change nothing one can read
_SHAPING = ("broadcast_like", "expand_dims", "reshape_like", "reshape")


def simplify(expr: Expr, _memo: dict | None = None) -> Expr:
    """Bottom-up rewrites that keep the value (up to broadcasting): fold constants, drop ·1 and
    ^1, move constants to the front of products, turn −(c·x) into (−c)·x. Shared subtrees stay
    shared (memo by identity)."""
    memo = {} if _memo is None else _memo
    if not expr.args:
        return expr
    if id(expr) not in memo:
        args = [simplify(a, memo) for a in expr.args]
        memo[id(expr)] = _rewrite(Expr(expr.op, args, expr.attrs, expr.value, expr.label, expr.shape))
    return memo[id(expr)]


def _rewrite(e: Expr) -> Expr:
    op, a = e.op, e.args
    if op in _SHAPING and a[0].is_const and np.asarray(a[0].attrs["value"]).ndim == 0:
        return a[0]
    if op in _SHAPING and a[0].is_const:
        return Expr(op, a, e.attrs)
    if op in _FOLD and a[0].is_const and a[1].is_const:
        return const(_FOLD[op](a[0].attrs["value"], a[1].attrs["value"]))
    if op == "neg" and a[0].is_const:
        return const(-np.asarray(a[0].attrs["value"]))
    if op == "neg" and a[0].op == "mul" and a[0].args[0].is_const:
        return _rewrite(Expr("mul", [const(-np.asarray(a[0].args[0].attrs["value"])), a[0].args[1]]))
    if op == "neg" and a[0].op == "neg":
        return a[0].args[0]
    if op == "pow" and a[1].const_equals(1):
        return a[0]
    if op == "mul":
        if a[0].const_equals(1) and _scalar(a[0]):
            return a[1]
        if a[1].const_equals(1) and _scalar(a[1]):
            return a[0]
        if a[1].is_const and not a[0].is_const:
            return _rewrite(Expr("mul", [a[1], a[0]]))
        if a[0].is_const and a[1].op == "mul" and a[1].args[0].is_const:
            c = np.asarray(a[0].attrs["value"]) * np.asarray(a[1].args[0].attrs["value"])
            return _rewrite(Expr("mul", [const(c), a[1].args[1]]))
        if a[0].const_equals(-1) and _scalar(a[0]):
            return Expr("neg", [a[1]])
        if not a[0].is_const and a[1].op == "mul" and a[1].args[0].is_const:   # x·(c·y) = c·(x·y)
            return _rewrite(Expr("mul", [a[1].args[0], _rewrite(Expr("mul", [a[0], a[1].args[1]]))]))
    if op == "div" and a[1].const_equals(1) and _scalar(a[1]):
        return a[0]
    if op in ("add", "sub") and a[1].const_equals(0) and _scalar(a[1]):
        return a[0]
    if op == "add" and a[0].const_equals(0) and _scalar(a[0]):
        return a[1]
    if op == "sub" and a[0].const_equals(0) and _scalar(a[0]):
        return Expr("neg", [a[1]])
    return e


def _scalar(e: Expr) -> bool:
    return np.asarray(e.attrs["value"]).ndim == 0


def size(expr: Expr, _memo: dict | None = None) -> int:
    """How many nodes the formula shows, shared subtrees counted every time they appear."""
    memo = {} if _memo is None else _memo
    if id(expr) not in memo:
        memo[id(expr)] = 1 + sum(size(a, memo) for a in expr.args)
    return memo[id(expr)]
