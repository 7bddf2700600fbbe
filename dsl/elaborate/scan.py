"""Elaborating `scan { }`: the body becomes a graph of its own, run by one `scan` node."""
from __future__ import annotations

from nngraph.diagnostics import NNError
from nngraph.dsl import ast
from nngraph.dsl.values import ScanFrame, Scope, describe
from nngraph.ir import Graph, Value
from nngraph.ir.registry import ShapeError


class ScanMixin:
    # ---- scans ----
    def scan(self, s: ast.Scan, scope: Scope):
        """Build the body as its own graph, then one `scan` node in the enclosing graph. Carry
        names are rebound to their final values; the result is the stacked yields (or, with no
        `yield`, the final carries)."""
        first: dict[str, ast.Name] = {}
        for name, _ in list(s.carries) + list(s.sequences):
            if name.id in first:    # one body input per name: a second would silently go unused
                raise NNError(f"`{name.id}` is named twice among this scan's carries and sequences", name.span,
                              notes=[("first named here", first[name.id].span)])
            first[name.id] = name
        inits = [(name, self.tensor_value(expr, scope, f"the initial value of the carry `{name.id}`"))
                 for name, expr in s.carries]
        sequences = [(name, self.tensor_value(expr, scope, f"the sequence `{name.id}` walks"))
                     for name, expr in s.sequences]
        for (name, seq), (_, expr) in zip(sequences, s.sequences):
            if seq.type.rank == 0:
                raise NNError(f"`{name.id}` cannot walk a scalar: a scanned sequence needs an axis", expr.span)
        length = None
        if s.steps is not None:
            length = self.expr(s.steps, scope)
            if not isinstance(length, int) or isinstance(length, bool) or length < 1:
                raise NNError(f"the number of steps must be a positive integer known at compile time, got "
                              f"{describe(length)}", s.steps.span)
        body = Graph(f"{scope.prefix or self.graph.name}.scan")
        frame = ScanFrame(body)
        inner = Scope({}, prefix=scope.prefix, parent=scope)
        for name, init in inits:
            inner.names[name.id] = body.add_input(name.id, init.type, name.span)
        for name, seq in sequences:
            inner.names[name.id] = body.add_input(name.id, seq.type.with_shape(seq.shape[1:]), name.span)
        frame.defined.update(v.uid for v in body.inputs)
        self.frames.append(frame)
        try:
            yields = self.scan_body(s, inner)
            for (name, init), (_, expr) in zip(inits, s.carries):
                new = inner.names[name.id]
                if not isinstance(new, Value):
                    raise NNError(f"the carry `{name.id}` must stay a tensor, but the scan body makes it "
                                  f"{describe(new)}", _assignment_span(s, name.id) or expr.span,
                                  hint="carry each tensor separately: `carry (a = ..., b = ...)`")
                new = self.localize(new)
                if new.type != init.type:
                    raise NNError(f"the carry `{name.id}` starts as {init.type} but one step makes it {new.type}; "
                                  "a carry must keep its type from step to step", expr.span)
                body.outputs[f"carry:{name.id}"] = new
            for i, value in enumerate(yields):
                body.outputs[f"yield:{i}"] = self.localize(value)
        finally:
            self.frames.pop()
        inputs = [v for _, v in inits] + [v for _, v in sequences] + frame.outer
        try:
            outs = self.apply("scan", inputs, {"body": body.prune(), "n_carry": len(inits), "n_seq": len(sequences),
                                               "reverse": s.reverse, "length": length}, s.span, scope)
        except ShapeError as err:      # the scan op's own checks: a diagnostic at the scan, never a traceback
            raise NNError(str(err), s.span) from None
        finals, stacked = outs[:len(inits)], outs[len(inits):]
        for (name, _), final in zip(inits, finals):
            scope.names[name.id] = final
        result = stacked or finals
        return result[0] if len(result) == 1 else tuple(result)

    def scan_body(self, s: ast.Scan, inner: Scope) -> list[Value]:
        yields = None
        for stmt in s.body:
            if isinstance(stmt, ast.Yield):
                if yields is not None:
                    raise NNError("a scan body yields once per step; yield several values as `yield a, b`",
                                  stmt.span)
                yields = [self.tensor_value(v, inner, "a yielded value") for v in stmt.values]
            elif isinstance(stmt, ast.Assign):
                self.assign(stmt, inner)
            else:
                what = type(stmt).__name__.replace("Decl", "").lower()
                raise NNError(f"a scan body holds assignments and `yield`, not {what} statements", stmt.span,
                              hint="declare parameters in the layer or model around the scan")
        if yields is None and not s.carries:
            raise NNError("a scan needs a carry or a `yield`, or it computes nothing", s.span)
        return yields or []

    def tensor_value(self, expr: ast.Expr, scope: Scope, what: str) -> Value:
        value = self.expr(expr, scope)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self.constant(value, self.float_dtype, expr.span, scope)
        if not isinstance(value, Value):
            raise NNError(f"{what} must be a tensor, got {describe(value)}", expr.span)
        return value


def _assignment_span(s: ast.Scan, name: str):
    """The span of the scan body's last assignment to `name`, if any."""
    spans = [stmt.span for stmt in s.body if isinstance(stmt, ast.Assign) and name in [t.id for t in stmt.targets]]
    return spans[-1] if spans else None
