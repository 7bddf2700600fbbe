"""Elaborating shapes: dimensions, dtypes, and matching a value to a layer signature's shape."""
from __future__ import annotations

from nngraph.diagnostics import NNError, Span
from nngraph.dsl import ast
from nngraph.dsl.builtins import dtype_name
from nngraph.dsl.values import Scope, describe
from nngraph.ir import Dim, Value, dims

INT64_MAX = 2**63 - 1


class ShapesMixin:
    # ---- shapes ----
    def shape(self, shape: ast.ShapeExpr, scope: Scope, allow_symbols: bool) -> tuple[tuple[Dim, ...], str]:
        dims = []
        for dim in shape.dims:
            if isinstance(dim, ast.Ellipsis_):
                raise NNError("`...` stands for leading axes only in a layer's argument and result shapes", dim.span)
            dims.append(self.dim(dim, scope, allow_symbols))
        elements = 1
        for dim, d in zip(shape.dims, dims):
            elements *= d if isinstance(d, int) else 1
            if elements > INT64_MAX:     # element counts and byte sizes are int64 everywhere downstream
                raise NNError(f"this shape has more than {INT64_MAX} elements: sizes must fit in 64 bits", dim.span)
        return tuple(dims), self.dtype(shape)

    def dtype(self, shape: ast.ShapeExpr) -> str:
        if shape.dtype is None or shape.dtype == "float":
            return self.float_dtype
        name = dtype_name(shape.dtype)
        if name is None:
            raise NNError(f"unknown dtype `{shape.dtype}`", shape.span, hint="use float, float32, float64, int, int64 or bool")
        return name

    def dim(self, expr: ast.Expr, scope: Scope, allow_symbols: bool, arithmetic: bool = False) -> Dim:
        """A dimension's value. `arithmetic`: + - * / may combine symbolic sizes (a layer signature
        checked against a value: `[2 * n]` with n = N is `2*N`, in nngraph/ir/dims.py's normal form)."""
        if isinstance(expr, ast.Name):
            try:
                value = scope.lookup(expr.id)
            except KeyError:
                if allow_symbols:
                    return expr.id        # a symbolic dimension
                raise NNError(f"the size `{expr.id}` is not known here", expr.span,
                              hint="parameter shapes are fixed at compile time: use integers or layer arguments")
            if isinstance(value, str) and allow_symbols:
                return value
            if isinstance(value, str):
                raise NNError(f"the size `{expr.id}` is the symbolic dimension {value}; parameter shapes must be "
                              "known at compile time", expr.span)
            if isinstance(value, bool) or not isinstance(value, int):
                raise NNError(f"a dimension must be an integer, but `{expr.id}` is {describe(value)}", expr.span)
            return value
        if isinstance(expr, ast.Number) and expr.is_int:
            return expr.value
        if isinstance(expr, ast.BinOp) and expr.op in ("+", "-", "*", "/"):
            left, right = (self.dim(side, scope, arithmetic, arithmetic) for side in (expr.left, expr.right))
            if isinstance(left, str) or isinstance(right, str):
                return self.symbolic_dim(expr, left, right)
            if expr.op == "/" and right == 0:
                raise NNError("division by zero in a dimension", expr.span)
            if expr.op == "/" and left % right:
                raise NNError(f"{left} / {right} is not a whole number of elements", expr.span)
            result = {"+": left + right, "-": left - right, "*": left * right, "/": left // right}[expr.op]
            if result < 0:
                raise NNError(f"a dimension cannot be negative ({result})", expr.span)
            return result
        raise NNError("a dimension must be an integer, a name or an integer expression", expr.span)

    def symbolic_dim(self, expr: ast.BinOp, left: Dim, right: Dim) -> Dim:
        if expr.op == "/" and not (isinstance(right, int) and right > 0):
            raise NNError("a symbolic size can be divided by a positive integer only", expr.span)
        if expr.op == "+":
            return dims.add(left, right)
        if expr.op == "-":
            return dims.add(left, dims.mul(-1, right))
        return dims.mul(left, right) if expr.op == "*" else dims.divide(left, right)

    def match_shape(self, expected: ast.ShapeExpr, value: Value, bindings: dict, what: str, span: Span):
        """Bind the dimension names of a layer signature to `value`'s shape, checking what is known."""
        dims = expected.dims
        ellipsis = [i for i, d in enumerate(dims) if isinstance(d, ast.Ellipsis_)]
        actual = list(value.shape)
        if ellipsis:
            before, after = dims[:ellipsis[0]], dims[ellipsis[0] + 1:]
            ok = len(actual) >= len(before) + len(after)
            pairs = list(zip(before, actual)) + list(zip(after, actual[len(actual) - len(after):])) if ok else []
        else:
            ok = len(actual) == len(dims)
            pairs = list(zip(dims, actual))
        def written():      # only for messages: reading the source text of each dim costs
            return "[" + ", ".join(d.span.text() for d in dims) + "]"
        if not ok:
            raise NNError(f"{what} must have shape {written()}, got {value.type}", span)
        if self.dtype(expected) != value.dtype and expected.dtype is not None:
            raise NNError(f"{what} must be {self.dtype(expected)}, got {value.type}", span)
        for dim, got in pairs:
            if isinstance(dim, ast.Name) and dim.id not in bindings:
                bindings[dim.id] = got
                continue
            scope = Scope(bindings, prefix="", parent=None)
            want = self.dim(dim, scope, allow_symbols=False, arithmetic=True) if not isinstance(dim, ast.Name) \
                else bindings[dim.id]
            if want != got:
                known = ", ".join(f"{k} = {v}" for k, v in bindings.items() if isinstance(v, (int, str)) and
                                  not isinstance(v, bool))
                raise NNError(f"{what} must have shape {written()}{' with ' + known if known else ''}, "
                              f"got {value.type}", span)
