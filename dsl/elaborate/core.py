"""The `Elaborator` class: its state, IR emission at a span (into the model's graph or the
scan body being built), Python numbers beside tensors, models, and the statements of model
and layer bodies. The rest of its methods come from the mixins beside this file."""
from __future__ import annotations

from typing import Any

import numpy as np

from nngraph.diagnostics import NNError, Span
from nngraph.dsl import ast
from nngraph.dsl.elaborate.expressions import ExpressionsMixin
from nngraph.dsl.elaborate.layers import LayersMixin
from nngraph.dsl.elaborate.params import ParamsMixin
from nngraph.dsl.elaborate.scan import ScanMixin
from nngraph.dsl.elaborate.shapes import ShapesMixin
from nngraph.dsl.elaborate.train_block import TrainBlockMixin
from nngraph.dsl.gc_pause import gc_paused
from nngraph.dsl.values import LayerInstance, ScanFrame, Scope, describe
from nngraph.ir import Graph, TensorType, Value
from nngraph.ir.registry import ShapeError

# A model graph larger than this is refused (a 10,000-line file of transformer calls builds over a
# million nodes and several GB); `nngraph.dsl.elaborate.core.MAX_NODES` raises it.
MAX_NODES = 500_000


class Elaborator(ExpressionsMixin, LayersMixin, ShapesMixin, ScanMixin, ParamsMixin, TrainBlockMixin):
    def __init__(self, globals_: dict[str, Any], float_dtype: str = "float32"):
        self.globals = Scope(dict(globals_), prefix="")
        self.float_dtype = float_dtype
        self.graph: Graph | None = None        # the model's graph: inputs, params and outputs live here
        self.frames: list[ScanFrame] = []       # scan bodies being built, innermost last
        self.anonymous = 0
        self.sharing = 0                       # > 0 while a layer instance runs a second time
        self.calls: list[tuple[Span, str]] = []  # layer calls being elaborated (call span, layer), outermost first

    # ---- IR emission with spans ----
    def emit(self, op: str, inputs: list[Value], attrs: dict, span: Span, scope: Scope) -> Value:
        try:
            return self.apply(op, inputs, attrs, span, scope)[0]
        except ShapeError as err:
            raise NNError(str(err), span) from None

    def apply(self, op: str, inputs: list[Value], attrs: dict, span: Span, scope: Scope) -> list[Value]:
        """Add a node to the graph being built (a scan body, or the model's graph)."""
        span = self.at_call_site(span)
        if len(self.graph.nodes) >= MAX_NODES:     # memory grows with the graph: stop with a diagnostic first
            raise NNError(f"this model builds more than {MAX_NODES:,} nodes", span,
                          hint="a layer repeated thousands of times? use `scan` to repeat it")
        if not self.frames:
            return self.graph.apply(op, inputs, attrs, span=span, scope=scope.prefix)
        frame = self.frames[-1]
        outputs = frame.graph.apply(op, [self.localize(v) for v in inputs], attrs, span=span, scope=scope.prefix)
        frame.defined.update(v.uid for v in outputs)
        return outputs

    def localize(self, value: Value, depth: int | None = None) -> Value:
        """`value` as seen from the scan body at `depth` (default: the innermost one): a value
        of an enclosing graph becomes a captured input of each body between."""
        depth = len(self.frames) - 1 if depth is None else depth
        if depth < 0:
            return value
        frame = self.frames[depth]
        if value.uid in frame.defined:
            return value
        if value.uid not in frame.captured:
            outer = self.localize(value, depth - 1)
            inner = frame.graph.add_input(value.name, value.type, value.span)
            frame.defined.add(inner.uid)
            frame.captured[value.uid] = inner
            frame.outer.append(outer)
        return frame.captured[value.uid]

    def constant(self, number, dtype: str, span: Span, scope: Scope) -> Value:
        return self.emit("constant", [], {"value": np.asarray(number, dtype=dtype)}, span, scope)

    def coerce_pair(self, a, b, span: Span, scope: Scope) -> tuple[Value, Value]:
        """Python numbers beside a tensor take the tensor's dtype."""
        if isinstance(a, Value) and not isinstance(b, Value):
            b = self.number_as(b, a, span, scope)
        elif isinstance(b, Value) and not isinstance(a, Value):
            a = self.number_as(a, b, span, scope)
        elif not isinstance(a, Value):
            for literal in (a, b):
                if not _numbers_only(literal):
                    raise NNError(f"expected a tensor or a number, got {describe(literal)}", span)
            a = self.constant(a, self.float_dtype, span, scope)
            b = self.constant(b, self.float_dtype, span, scope)
        return a, b

    def number_as(self, number, like: Value, span: Span, scope: Scope) -> Value:
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise NNError(f"expected a tensor or a number, got {describe(number)}", span)
        if isinstance(number, float) and not like.type.is_float and like.dtype != "bool":
            raise NNError(f"cannot combine the float {number} with a tensor of {like.dtype}", span,
                          hint="cast the tensor first: cast(x, \"float\")")
        return self.constant(number, like.dtype, span, scope)

    # ---- models ----
    def model(self, defn: ast.ModelDef) -> Graph:
        self.graph = Graph(defn.name)
        scope = Scope({}, prefix="", parent=self.globals)
        try:
            with gc_paused():      # a large model's many new objects made the collector cost more than the work
                for stmt in defn.body:
                    self.statement(stmt, scope, in_model=True)
        except RecursionError:      # the limits on nesting and layer depth should come first; a net
            raise NNError(f"model `{defn.name}` nests expressions and layers too deeply to elaborate", defn.span,
                          hint="split long expressions over several statements") from None
        if not self.graph.outputs:
            raise NNError(f"model `{defn.name}` declares no output", defn.span,
                          hint="mark a result with `output NAME = expression`")
        return self.graph

    def statement(self, stmt: ast.Stmt, scope: Scope, in_model: bool):
        if isinstance(stmt, ast.InputDecl):
            if not in_model:
                raise NNError(f"`{stmt.kind}` declarations belong in a model, not a layer", stmt.span,
                              hint="a layer receives tensors as its ( ) arguments")
            self.define(scope, stmt.name, stmt.span)
            shape, dtype = self.shape(stmt.shape, scope, allow_symbols=True)
            scope.names[stmt.name] = self.graph.add_input(stmt.name, TensorType(dtype, shape), stmt.span,
                                                          target=stmt.kind == "target")
        elif isinstance(stmt, ast.ParamDecl):
            self.define(scope, stmt.name, stmt.span)
            scope.names[stmt.name] = self.param(stmt, scope)
        elif isinstance(stmt, ast.Assign):
            self.assign(stmt, scope)
        elif isinstance(stmt, ast.OutputDecl):
            if not in_model:
                raise NNError("`output` belongs in a model; a layer gives its result with `return`", stmt.span)
            if stmt.value is not None:
                self.assign(ast.Assign([ast.Name(stmt.name, span=stmt.span)], stmt.value, span=stmt.span), scope)
            value = self.name(ast.Name(stmt.name, span=stmt.span), scope)
            if not isinstance(value, Value):
                raise NNError(f"output `{stmt.name}` must be a tensor, got {describe(value)}", stmt.span)
            self.graph.outputs[stmt.name] = value
        elif isinstance(stmt, ast.Yield):
            raise NNError("`yield` gives one step's results inside a `scan { }` body", stmt.span)
        elif isinstance(stmt, ast.Return):
            if in_model:
                raise NNError("`return` belongs in a layer; a model marks results with `output`", stmt.span)
            values = tuple(self.expr(v, scope) for v in stmt.values)
            return values[0] if len(values) == 1 else values
        return None

    def define(self, scope: Scope, name: str, span: Span):
        if name in scope.names and isinstance(scope.names[name], Value) and \
                (scope.names[name] in self.graph.inputs or scope.names[name] in self.graph.params):
            raise NNError(f"`{name}` is already declared in this {'model' if not scope.prefix else 'layer'}", span)

    def assign(self, stmt: ast.Assign, scope: Scope):
        names = [t.id for t in stmt.targets]
        if isinstance(stmt.value, ast.Scan):
            value = self.scan(stmt.value, scope)
            if not names:
                return
            values = list(value) if len(names) > 1 and isinstance(value, tuple) else [value]
            if len(values) != len(names):
                raise NNError(f"cannot unpack {len(values)} value{'s' if len(values) != 1 else ''} into "
                              f"{len(names)} names", stmt.value.span)
            scope.names.update(zip(names, values))
            return
        if len(names) == 1:
            value = self.expr(stmt.value, scope, bind_as=names[0])
            if isinstance(value, LayerInstance) and value.prefix is None:
                value.prefix = self.param_prefix(scope, names[0])   # `cell = dense[4]`: shared weights
            values = [value]
        else:
            value = self.expr(stmt.value, scope, bind_as=".".join(names))
            if not isinstance(value, tuple) or len(value) != len(names):
                count = len(value) if isinstance(value, tuple) else 1
                raise NNError(f"cannot unpack {count} value{'s' if count != 1 else ''} into {len(names)} names",
                              stmt.value.span)
            values = list(value)
        for name, value in zip(names, values):
            scope.names[name] = value
        if not scope.prefix and not self.frames and "loss" in names:   # (in a scan body: one step's local name)
            self.mark_loss(scope.names["loss"], stmt)

    def mark_loss(self, loss, stmt: ast.Assign):
        if not isinstance(loss, Value) or loss.type.rank != 0 or not loss.type.is_float:
            what = f"type {loss.type}" if isinstance(loss, Value) else describe(loss)
            raise NNError(f"the loss must be a float scalar, got {what}", stmt.value.span,
                          hint="reduce it to one number, e.g. with sum(...) or mean(...)")
        self.graph.outputs["loss"] = loss
        self.graph.loss = "loss"


def _numbers_only(literal) -> bool:
    """A number, or a list of them nested evenly enough for NumPy (not a tensor inside a list)."""
    if isinstance(literal, bool) or not isinstance(literal, (int, float, list)):
        return False
    return all(_numbers_only(item) for item in literal) if isinstance(literal, list) else True
