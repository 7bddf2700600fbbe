"""`Call`: what a builtin function sees of the elaborator when the .nn code calls it."""
from __future__ import annotations

from nngraph.diagnostics import NNError, Span
from nngraph.dsl.builtins import dtype_name
from nngraph.dsl.values import Scope, describe
from nngraph.ir import Value


class Call:
    """What a builtin sees: helpers to check its arguments and emit IR at the call's span. `elab`
    is the Elaborator (not imported here: it imports this module)."""

    def __init__(self, elab, name: str, span: Span, scope: Scope, arg_spans: dict[str, Span]):
        self.elab, self.name, self.span, self.scope, self.arg_spans = elab, name, span, scope, arg_spans
        self.float_dtype = elab.float_dtype

    def fail(self, message: str, arg: str | None = None, hint: str | None = None):
        raise NNError(message, self.arg_spans.get(arg, self.span), hint)

    def emit(self, op: str, *inputs: Value, **attrs) -> Value:
        return self.elab.emit(op, list(inputs), attrs, self.span, self.scope)

    def tensor(self, value, arg: str) -> Value:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self.elab.constant(value, self.float_dtype, self.span, self.scope)
        if not isinstance(value, Value):
            self.fail(f"argument `{arg}` of `{self.name}` must be a tensor, got {describe(value)}", arg)
        return value

    def tensors(self, a, b) -> tuple[Value, Value]:
        return self.elab.coerce_pair(a, b, self.span, self.scope)

    def int(self, value, arg: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(f"argument `{arg}` of `{self.name}` must be an integer, got {describe(value)}", arg)
        return value

    def axes(self, value, arg: str, sort: bool = True):
        if value is None:
            return None
        items = [value] if isinstance(value, int) else value
        if not isinstance(items, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
            self.fail(f"argument `{arg}` of `{self.name}` must be an integer or a list of integers, "
                      f"got {describe(value)}", arg)
        return tuple(items)

    def dtype(self, value, arg: str) -> str:
        name = dtype_name(value) if isinstance(value, str) else None
        if isinstance(value, str) and value == "float":
            return self.float_dtype
        if name is None:
            self.fail(f"argument `{arg}` of `{self.name}` must name a dtype such as \"float32\" or \"int64\"", arg)
        return name
