"""Elaborating expressions: names, parameter attributes, operators, and subscripts (layer
arguments, tensor indexing, `zeros[...]`)."""
from __future__ import annotations

import operator

from nngraph.diagnostics import NNError, Span, did_you_mean
from nngraph.dsl import ast
from nngraph.dsl.values import Builtin, LayerInstance, LayerTemplate, Scope, describe
from nngraph.ir import Value
from nngraph.ir.registry import OPS, ShapeError

BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow", "@": "matmul",
              "<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal",
              "==": "equal", "!=": "not_equal"}
INT64_MAX = 2**63 - 1
PYTHON_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt,
              ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


class ExpressionsMixin:
    # ---- expressions ----
    def expr(self, e: ast.Expr, scope: Scope, bind_as: str | None = None):
        # The commonest nodes first, by exact type: this runs once per node of every expression.
        kind = type(e)
        if kind is ast.Name:
            return self.name(e, scope)
        if kind is ast.BinOp:
            return self.binop(e, scope)
        if kind is ast.Call:
            return self.call(e, scope, bind_as)
        if kind is ast.Number:
            return e.value
        if isinstance(e, ast.Name):
            return self.name(e, scope)
        if isinstance(e, ast.Number):
            return e.value
        if isinstance(e, (ast.String, ast.Bool)):
            return e.value
        if isinstance(e, ast.ListExpr):
            return [self.expr(item, scope) for item in e.items]
        if isinstance(e, ast.TupleExpr):
            return tuple(self.expr(item, scope) for item in e.items)
        if isinstance(e, ast.UnaryOp):
            operand = self.expr(e.operand, scope)
            if isinstance(operand, Value):
                return self.emit("neg", [operand], {}, e.span, scope)
            if isinstance(operand, (int, float)) and not isinstance(operand, bool):
                return -operand
            raise NNError(f"cannot negate {describe(operand)}", e.span)
        if isinstance(e, ast.BinOp):
            return self.binop(e, scope)
        if isinstance(e, ast.Subscript):
            return self.subscript(e, scope)
        if isinstance(e, ast.Call):
            return self.call(e, scope, bind_as)
        if isinstance(e, ast.Attribute):
            return self.attribute(e, scope)
        if isinstance(e, ast.Ellipsis_):
            raise NNError("`...` is only meaningful inside a shape or an index", e.span)
        raise NNError(f"unsupported expression {type(e).__name__}", e.span)

    def name(self, e: ast.Name, scope: Scope):
        try:
            return scope.lookup(e.id)
        except KeyError:
            raise NNError(f"unknown name `{e.id}`", e.span, hint=did_you_mean(e.id, scope.visible())) from None

    def attribute(self, e: ast.Attribute, scope: Scope):
        base = self.expr(e.base, scope)
        if isinstance(base, LayerInstance) and e.name in base.params:
            return base.params[e.name]
        dotted = _dotted(e)
        params = {p.name: p for p in self.graph.params}
        if dotted in params:
            return params[dotted]
        candidates = list(base.params) if isinstance(base, LayerInstance) else list(params)
        raise NNError(f"{describe(base)} has no parameter `{e.name}`", e.span, hint=did_you_mean(dotted, candidates))

    def binop(self, e: ast.BinOp, scope: Scope):
        left, right = self.expr(e.left, scope), self.expr(e.right, scope)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        if numbers and e.op in PYTHON_OPS:
            if e.op == "/" and right == 0:
                raise NNError("division by zero", e.span)
            too_big = NNError(f"cannot compute {e.span.text()}: the result does not fit in 64 bits (the largest "
                              f"integer is {INT64_MAX})", e.span)
            if e.op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 64:
                raise too_big      # (before computing it: `2 ** 10**17` would fill the memory)
            try:
                result = PYTHON_OPS[e.op](left, right)
            except (ArithmeticError, ValueError) as err:
                raise NNError(f"cannot compute {e.span.text()}: {err}", e.span) from None
            if isinstance(result, int) and not isinstance(result, bool) and not -INT64_MAX - 1 <= result <= INT64_MAX:
                raise too_big      # integers stay in 64 bits, as literals do: repeated `a = a * a` cannot grow
            return result
        for side in (left, right):
            if not isinstance(side, (Value, int, float)) or isinstance(side, bool):
                raise NNError(f"`{e.op}` needs tensors or numbers, got {describe(side)}", e.span)
        a, b = self.coerce_pair(left, right, e.span, scope)
        try:
            return self.apply(BINARY_OPS[e.op], [a, b], {}, e.span, scope)[0]
        except ShapeError as err:
            raise NNError(f"{err}: {e.left.span.text()} is {a.type}, {e.right.span.text()} is {b.type}", e.span) from None

    def subscript(self, e: ast.Subscript, scope: Scope):
        base = self.expr(e.base, scope)
        if isinstance(base, Builtin) and base.name in ("zeros", "ones"):
            return self.filled(1.0 if base.name == "ones" else 0.0, e, scope)
        if isinstance(base, LayerTemplate):
            args = [i for i in e.items if not isinstance(i, ast.Keyword)]
            kwargs = [i for i in e.items if isinstance(i, ast.Keyword)]
            return self.instantiate(base, args, kwargs, e, scope)
        if isinstance(base, Value):
            return self.index(base, e, scope)
        raise NNError(f"cannot index {describe(base)}", e.span)

    def index(self, x: Value, e: ast.Subscript, scope: Scope) -> Value:
        """`x[1:3]`, `x[:, -1]`, `x[::-1]`, `x[..., 0]`: as in NumPy, with indices known at compile
        time. One `slice` node takes every sliced axis; an integer index keeps one position and
        then drops its axis (a reshape)."""
        for item in e.items:
            if isinstance(item, ast.Keyword):
                raise NNError("a tensor index takes positions and slices, not keyword arguments", item.span)
        ellipses = [item for item in e.items if isinstance(item, ast.Ellipsis_)]
        if len(ellipses) > 1:
            raise NNError("an index may hold one `...`", ellipses[1].span)
        rank, count = x.type.rank, len(e.items) - len(ellipses)
        if count > rank:
            raise NNError(f"too many indices: {e.base.span.text()} is {x.type} with {rank} "
                          f"ax{'i' if rank == 1 else 'e'}s, indexed with {count}", e.span)
        slices, drops, axis = [], [], 0
        for item in e.items:
            if isinstance(item, ast.Ellipsis_):
                axis += rank - count
                continue
            size = x.shape[axis]
            if isinstance(item, ast.Slice):
                start, stop, step = (self.index_int(part, scope) for part in (item.start, item.stop, item.step))
                if step == 0:
                    raise NNError("a slice step cannot be zero", item.step.span)
                if (start, stop, step or 1) != (None, None, 1):
                    slices.append((axis, start, stop, step or 1))
            else:
                i = self.index_int(item, scope)
                if isinstance(size, int) and not -size <= i < size:
                    raise NNError(f"index {i} is out of range for axis {axis} of {e.base.span.text()}, which has "
                                  f"size {size} ({x.type})", item.span,
                                  hint=f"valid indices are 0 to {size - 1}, or -{size} to -1 from the end")
                slices.append((axis, i, i + 1 if i != -1 else None, 1))
                drops.append(axis)
            axis += 1
        if slices:
            attrs = {"axes": tuple(s[0] for s in slices), "starts": tuple(s[1] for s in slices),
                     "ends": tuple(s[2] for s in slices), "steps": tuple(s[3] for s in slices)}
            x = self.emit("slice", [x], attrs, e.span, scope)
        return self.drop_axes(x, drops, e.span, scope) if drops else x

    def index_int(self, expr: ast.Expr | None, scope: Scope) -> int | None:
        if expr is None:
            return None
        value = self.expr(expr, scope)
        if isinstance(value, bool) or not isinstance(value, int):
            hint = "to pick positions given by a tensor, use gather(x, indices, axis)" if isinstance(value, Value) else None
            raise NNError(f"an index must be an integer known at compile time, got {describe(value)}", expr.span,
                          hint=hint)
        return value

    def drop_axes(self, x: Value, drops: list[int], span: Span, scope: Scope) -> Value:
        """Remove size-1 axes: one reshape (0 copies the sizes before the first dropped axis, -1
        stands for one symbolic size after it), or with several symbolic sizes after it, a
        transpose moving the dropped axes to the end first."""
        kept = [d for i, d in enumerate(x.shape) if i not in drops]
        first = min(drops)
        rest = kept[first:]
        if sum(not isinstance(d, int) for d in rest) <= 1:
            shape = (0,) * first + tuple(d if isinstance(d, int) else -1 for d in rest)
            if OPS["reshape"].infer([x.type], {"shape": shape})[0].shape == tuple(kept):
                return self.emit("reshape", [x], {"shape": shape}, span, scope)
        perm = tuple(i for i in range(x.type.rank) if i not in drops) + tuple(drops)
        moved = self.emit("transpose", [x], {"perm": perm}, span, scope)
        return self.emit("reshape", [moved], {"shape": (0,) * len(kept)}, span, scope)

    def filled(self, number: float, e: ast.Subscript, scope: Scope) -> Value:
        """`zeros[B, 4]`: a symbolic size is read at run time from an input that has it."""
        dims, refs = [], []
        for item in e.items:
            dim = self.dim(item, scope, allow_symbols=True)
            if isinstance(dim, str):
                source = next(((v, axis) for v in self.graph.inputs for axis, d in enumerate(v.shape) if d == dim), None)
                if source is None:
                    raise NNError(f"no input of the model has the size `{dim}`, so it is not known here", item.span,
                                  hint="use sizes of the model's inputs, or zeros(x) for zeros shaped like x")
                if source[0] not in refs:
                    refs.append(source[0])
                dim = (refs.index(source[0]), source[1])
            dims.append(dim)
        return self.emit("fill", refs, {"dims": tuple(dims), "value": number, "dtype": self.float_dtype}, e.span, scope)


def _dotted(e: ast.Expr) -> str:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Attribute):
        return f"{_dotted(e.base)}.{e.name}"
    return "?"
