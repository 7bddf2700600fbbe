"""Elaboration: from the AST to the graph IR.

It resolves names, instantiates layers (a layer called as `h = dense[2](x)` names its
parameters `h.w`, `h.b`; a layer bound once as `cell = dense[4]` and called twice shares them),
binds the dimension names of layer signatures to the actual shapes, and checks every shape at
compile time. Dimension names in a model's inputs are symbols (`N`) shared across the model.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nngraph.diagnostics import NNError, Span, did_you_mean
from nngraph.dsl import ast
from nngraph.dsl.builtins import REQUIRED, Builtin, dtype_name
from nngraph.ir import Dim, Graph, ParamInit, TensorType, Value
from nngraph.ops import ShapeError, fmt_shape
from nngraph.runtime.data import DataSource
from nngraph.runtime.train import TrainConfig
from nngraph.training import OPTIMIZERS, Optimizer

BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow", "@": "matmul",
              "<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal",
              "==": "equal", "!=": "not_equal"}
PYTHON_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt,
              ">=": operator.ge, "==": operator.eq, "!=": operator.ne}
INITIALIZERS = {"glorot": "glorot", "xavier": "glorot", "he": "he", "kaiming": "he",
                "normal": "normal", "uniform": "uniform", "constant": "constant", "zeros": "constant",
                "ones": "constant"}
INIT_PARAMS = {"normal": ("mean", "std"), "uniform": ("low", "high"), "constant": ("value",),
               "glorot": (), "he": ()}


# ---------------------------------------------------------------- compile-time values
@dataclass
class LayerTemplate:
    """A layer definition, not yet given its compile-time arguments."""
    defn: ast.LayerDef


@dataclass
class LayerInstance:
    """A layer with its compile-time arguments, owning the parameters it makes on first call."""
    template: LayerTemplate
    cargs: dict[str, Any]
    prefix: str | None = None
    params: dict[str, Value] = field(default_factory=dict)
    called: bool = False

    @property
    def name(self) -> str:
        return self.template.defn.name


def describe(value) -> str:
    if isinstance(value, Value):
        return f"a tensor of type {value.type}"
    if isinstance(value, (LayerTemplate, LayerInstance)):
        return f"the layer `{value.template.defn.name if isinstance(value, LayerInstance) else value.defn.name}`"
    if isinstance(value, Builtin):
        return f"the function `{value.name}`"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} values"
    return f"the {type(value).__name__} {value!r}"


@dataclass
class Scope:
    names: dict[str, Any]
    prefix: str                      # parameter-name prefix of the layer instance being built
    parent: Scope | None = None      # globals for a layer body

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        raise KeyError(name)

    def visible(self) -> set[str]:
        names, scope = set(), self
        while scope is not None:
            names |= set(scope.names)
            scope = scope.parent
        return names


class Call:
    """What a builtin sees: helpers to check its arguments and emit IR at the call's span."""

    def __init__(self, elab: Elaborator, name: str, span: Span, scope: Scope, arg_spans: dict[str, Span]):
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


@dataclass
class ScanFrame:
    """A scan body being elaborated: values of enclosing graphs used in it become inputs of the
    body (captured), passed to the scan node from outside."""
    graph: Graph
    defined: set[int] = field(default_factory=set)      # uids of the body's own values
    captured: dict[int, Value] = field(default_factory=dict)   # enclosing uid -> body input
    outer: list[Value] = field(default_factory=list)    # the captured values, in input order


# ---------------------------------------------------------------- the elaborator
class Elaborator:
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
        for stmt in defn.body:
            self.statement(stmt, scope, in_model=True)
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
        if not scope.prefix and "loss" in names:
            self.mark_loss(scope.names["loss"], stmt)

    # ---- scans ----
    def scan(self, s: ast.Scan, scope: Scope):
        """Build the body as its own graph, then one `scan` node in the enclosing graph. Carry
        names are rebound to their final values; the result is the stacked yields (or, with no
        `yield`, the final carries)."""
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
                new = self.localize(inner.names[name.id])
                if new.type != init.type:
                    raise NNError(f"the carry `{name.id}` starts as {init.type} but one step makes it {new.type}; "
                                  "a carry must keep its type from step to step", expr.span)
                body.outputs[f"carry:{name.id}"] = new
            for i, value in enumerate(yields):
                body.outputs[f"yield:{i}"] = self.localize(value)
        finally:
            self.frames.pop()
        inputs = [v for _, v in inits] + [v for _, v in sequences] + frame.outer
        outs = self.apply("scan", inputs, {"body": body.prune(), "n_carry": len(inits), "n_seq": len(sequences),
                                           "reverse": s.reverse, "length": length}, s.span, scope)
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

    def mark_loss(self, loss, stmt: ast.Assign):
        if not isinstance(loss, Value) or loss.type.rank != 0 or not loss.type.is_float:
            what = f"type {loss.type}" if isinstance(loss, Value) else describe(loss)
            raise NNError(f"the loss must be a float scalar, got {what}", stmt.value.span,
                          hint="reduce it to one number, e.g. with sum(...) or mean(...)")
        self.graph.outputs["loss"] = loss
        self.graph.loss = "loss"

    def param_prefix(self, scope: Scope, local: str) -> str:
        return f"{scope.prefix}.{local}" if scope.prefix else local

    def param(self, stmt: ast.ParamDecl, scope: Scope) -> Value:
        shape, dtype = self.shape(stmt.shape, scope, allow_symbols=False)
        if any(d < 1 for d in shape):
            raise NNError(f"parameter `{stmt.name}` would have shape {fmt_shape(shape)}; every size must be positive",
                          stmt.shape.span, hint="check the layer's compile-time arguments")
        init = self.initializer(stmt, scope)
        name = self.param_prefix(scope, stmt.name)
        if self.sharing:     # a layer called again: the layers inside it reuse their weights by name
            shared = next((p for p in self.graph.params if p.name == name), None)
            if shared is not None:
                if tuple(shared.shape) != shape:
                    raise NNError(f"`{name}` is shared between calls of its layer, but this call needs shape "
                                  f"{fmt_shape(shape)}, not {fmt_shape(shared.shape)}", stmt.span)
                return shared
        return self.graph.add_param(name, TensorType(dtype, shape), init, self.at_call_site(stmt.span))

    def initializer(self, stmt: ast.ParamDecl, scope: Scope) -> ParamInit:
        if stmt.init is None:
            return ParamInit("glorot")
        if stmt.init_kind == "=":
            value = self.expr(stmt.init, scope)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise NNError(f"a parameter's `=` initializer must be a number, got {describe(value)}",
                              stmt.init.span, hint="use `~ normal(std = 0.1)` for random values")
            return ParamInit("constant", {"value": value})
        node, args, kwargs = stmt.init, [], []
        if isinstance(node, ast.Call):
            node, args, kwargs = node.func, node.args, node.kwargs
        if not isinstance(node, ast.Name) or node.id not in INITIALIZERS:
            name = node.id if isinstance(node, ast.Name) else "that"
            raise NNError(f"unknown initializer `{name}`", node.span,
                          hint=did_you_mean(name, INITIALIZERS) or f"known: {', '.join(sorted(INITIALIZERS))}")
        kind = INITIALIZERS[node.id]
        names = INIT_PARAMS[kind]
        if len(args) > len(names):
            raise NNError(f"`{node.id}` takes {len(names)} argument(s) ({', '.join(names)}), got {len(args)}",
                          args[len(names)].span)
        settings = {"ones": {"value": 1.0}, "zeros": {"value": 0.0}}.get(node.id, {})
        for key, arg in list(zip(names, args)) + [(k.name, k.value) for k in kwargs]:
            if key not in names:
                raise NNError(f"`{node.id}` has no argument `{key}`", arg.span,
                              hint=did_you_mean(key, names) or f"it takes: {', '.join(names) or 'nothing'}")
            value = self.expr(arg, scope)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise NNError(f"argument `{key}` of `{node.id}` must be a number, got {describe(value)}", arg.span)
            settings[key] = float(value)
        return ParamInit(kind, settings)

    # ---- shapes ----
    def shape(self, shape: ast.ShapeExpr, scope: Scope, allow_symbols: bool) -> tuple[tuple[Dim, ...], str]:
        dims = []
        for dim in shape.dims:
            if isinstance(dim, ast.Ellipsis_):
                raise NNError("`...` stands for leading axes only in a layer's argument and result shapes", dim.span)
            dims.append(self.dim(dim, scope, allow_symbols))
        return tuple(dims), self.dtype(shape)

    def dtype(self, shape: ast.ShapeExpr) -> str:
        if shape.dtype is None or shape.dtype == "float":
            return self.float_dtype
        name = dtype_name(shape.dtype)
        if name is None:
            raise NNError(f"unknown dtype `{shape.dtype}`", shape.span, hint="use float, float32, float64, int, int64 or bool")
        return name

    def dim(self, expr: ast.Expr, scope: Scope, allow_symbols: bool) -> Dim:
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
            left, right = self.dim(expr.left, scope, False), self.dim(expr.right, scope, False)
            if expr.op == "/" and right == 0:
                raise NNError("division by zero in a dimension", expr.span)
            if expr.op == "/" and left % right:
                raise NNError(f"{left} / {right} is not a whole number of elements", expr.span)
            result = {"+": left + right, "-": left - right, "*": left * right, "/": left // right}[expr.op]
            if result < 0:
                raise NNError(f"a dimension cannot be negative ({result})", expr.span)
            return result
        raise NNError("a dimension must be an integer, a name or an integer expression", expr.span)

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
        written = "[" + ", ".join(d.span.text() for d in dims) + "]"
        if not ok:
            raise NNError(f"{what} must have shape {written}, got {value.type}", span)
        if self.dtype(expected) != value.dtype and expected.dtype is not None:
            raise NNError(f"{what} must be {self.dtype(expected)}, got {value.type}", span)
        for dim, got in pairs:
            if isinstance(dim, ast.Name) and dim.id not in bindings:
                bindings[dim.id] = got
                continue
            scope = Scope(bindings, prefix="", parent=None)
            want = self.dim(dim, scope, allow_symbols=False) if not isinstance(dim, ast.Name) else bindings[dim.id]
            if want != got:
                known = ", ".join(f"{k} = {v}" for k, v in bindings.items() if isinstance(v, (int, str)) and
                                  not isinstance(v, bool))
                raise NNError(f"{what} must have shape {written}{' with ' + known if known else ''}, "
                              f"got {value.type}", span)

    # ---- expressions ----
    def expr(self, e: ast.Expr, scope: Scope, bind_as: str | None = None):
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
            try:
                return PYTHON_OPS[e.op](left, right)
            except (ArithmeticError, ValueError) as err:
                raise NNError(f"cannot compute {e.span.text()}: {err}", e.span) from None
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
        from nngraph.ops import OPS
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

    def instantiate(self, template: LayerTemplate, args, kwargs, site: ast.Node, scope: Scope) -> LayerInstance:
        defn = template.defn
        spec = [(c.name, c.default if c.default is not None else REQUIRED) for c in defn.cparams]
        values = self.bind(f"layer `{defn.name}`", spec, args, kwargs, site.span, scope,
                           what="compile-time argument", evaluate=lambda expr: self.expr(expr, scope))
        for cparam in defn.cparams:
            self.check_ctype(cparam, values[cparam.name], site.span)
        return LayerInstance(template, values)

    def check_ctype(self, cparam: ast.CParam, value, span: Span):
        ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "bool": lambda v: isinstance(v, bool),
              "fn": lambda v: isinstance(v, (Builtin, LayerTemplate, LayerInstance)),
              None: lambda v: True}.get(cparam.type)
        if ok is None:
            raise NNError(f"unknown argument type `{cparam.type}`", cparam.span, hint="use int, float, bool or fn")
        if not ok(value):
            raise NNError(f"compile-time argument `{cparam.name}` must be {cparam.type}, got {describe(value)}", span)

    def bind(self, who: str, spec, args, kwargs, span: Span, scope: Scope, what: str, evaluate) -> dict:
        """Match positional and keyword arguments to a signature; evaluates each argument once."""
        names = [n for n, _ in spec]
        if len(args) > len(names):
            raise NNError(f"{who} takes {len(names)} {what}{'s' if len(names) != 1 else ''}"
                          f"{' (' + ', '.join(names) + ')' if names else ''}, got {len(args)}", args[len(names)].span)
        values = {name: evaluate(arg) for name, arg in zip(names, args)}
        for kw in kwargs:
            if kw.name not in names:
                raise NNError(f"{who} has no {what} `{kw.name}`", kw.span,
                              hint=did_you_mean(kw.name, names) or f"it takes: {', '.join(names) or 'none'}")
            if kw.name in values:
                raise NNError(f"{what} `{kw.name}` of {who} is given twice", kw.span)
            values[kw.name] = evaluate(kw.value)
        for name, default in spec:
            if name not in values:
                if default is REQUIRED:
                    raise NNError(f"{who} is missing its {what} `{name}`", span)
                values[name] = evaluate(default) if isinstance(default, ast.Expr) else default
        return values

    def call(self, e: ast.Call, scope: Scope, bind_as: str | None):
        callee = self.expr(e.func, scope)
        if isinstance(callee, Builtin):
            spans = {n: a.span for (n, _), a in zip(callee.params, e.args)} | {k.name: k.value.span for k in e.kwargs}
            values = self.bind(f"`{callee.name}`", callee.params, e.args, e.kwargs, e.span, scope, "argument",
                               evaluate=lambda expr: self.expr(expr, scope))
            return callee.build(Call(self, callee.name, e.span, scope, spans), **values)
        if isinstance(callee, LayerTemplate):
            missing = [c.name for c in callee.defn.cparams if c.default is None]
            if missing:
                raise NNError(f"layer `{callee.defn.name}` needs its compile-time argument{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(f'`{m}`' for m in missing)}", e.span,
                              hint=f"write {callee.defn.name}[{', '.join(missing)}](...), e.g. {callee.defn.name}[4](x)")
            callee = self.instantiate(callee, [], [], e, scope)
        if isinstance(callee, LayerInstance):
            if callee.prefix is None:      # an inline call names its parameters after the assignment
                callee.prefix = self.param_prefix(scope, bind_as or self.anonymous_name(callee.name))
            return self.apply_layer(callee, e, scope)
        what = e.func.span.text() if e.func.span else "that"
        raise NNError(f"`{what}` is {describe(callee)}, not a function or layer", e.func.span)

    def anonymous_name(self, base: str) -> str:
        self.anonymous += 1
        return f"{base}{self.anonymous}"

    def apply_layer(self, inst: LayerInstance, e: ast.Call, scope: Scope):
        defn = inst.template.defn
        spec = [(t.name, REQUIRED) for t in defn.tparams]
        args = self.bind(f"layer `{defn.name}`", spec, e.args, e.kwargs, e.span, scope, "argument",
                         evaluate=lambda expr: (self.expr(expr, scope), expr.span))
        bindings: dict[str, Any] = dict(inst.cargs)
        body = Scope(bindings, prefix=inst.prefix, parent=self.globals)
        for tparam in defn.tparams:
            value, span = args[tparam.name]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = self.constant(value, self.float_dtype, span, scope)
            if not isinstance(value, Value):
                raise NNError(f"argument `{tparam.name}` of layer `{defn.name}` must be a tensor, got {describe(value)}",
                              span)
            if tparam.shape is not None:
                self.match_shape(tparam.shape, value, bindings, f"argument `{tparam.name}` of layer `{defn.name}`", span)
            bindings[tparam.name] = value
        try:
            self.sharing += inst.called
            try:
                result = self.layer_body(inst, body, e.span)
            finally:
                self.sharing -= inst.called
        except NNError as err:
            # an error inside the layer also shows where the user called it, like a stack trace
            err.notes.append((f"in layer `{defn.name}` called here", e.span))
            raise
        inst.called = True
        if defn.result is not None:
            if not isinstance(result, Value):
                raise NNError(f"layer `{defn.name}` declares a result shape but returns {describe(result)}", defn.result.span)
            self.match_shape(defn.result, result, bindings, f"the result of layer `{defn.name}`", e.span)
        return result

    def layer_body(self, inst: LayerInstance, body: Scope, call: Span):
        defn = inst.template.defn
        self.calls.append((call, defn.name))
        try:
            for stmt in defn.body:
                if isinstance(stmt, ast.ParamDecl):
                    body.names[stmt.name] = self.layer_param(inst, stmt, body, call)
                    continue
                result = self.statement(stmt, body, in_model=False)
                if isinstance(stmt, ast.Return):
                    return result
        finally:
            self.calls.pop()
        raise NNError(f"layer `{defn.name}` ends without `return`", defn.span)

    def at_call_site(self, span: Span | None) -> Span | None:
        """`span` marked, inside a layer body, with the user's call of the outermost layer and the
        name of the layer it is in, so a picture of the graph can lead back to the model's line."""
        if span is None or not self.calls:
            return span
        return replace(span, call_site=self.calls[0][0], layer=self.calls[-1][1])

    def layer_param(self, inst: LayerInstance, stmt: ast.ParamDecl, body: Scope, call: Span) -> Value:
        if stmt.name not in inst.params:
            inst.params[stmt.name] = self.param(stmt, body)
            return inst.params[stmt.name]
        shared = inst.params[stmt.name]       # a second call of one instance: the same weights
        shape, _ = self.shape(stmt.shape, body, allow_symbols=False)
        if shape != tuple(shared.shape):
            raise NNError(f"layer `{inst.prefix}` shares its parameter `{shared.name}` of shape {fmt_shape(shared.shape)} "
                          f"between calls, but this call needs {fmt_shape(shape)}", call,
                          notes=[("the parameter is declared here", stmt.span)])
        return shared

    # ---- train blocks ----
    def train_config(self, defn: ast.TrainDef, base_dir: str) -> TrainConfig:
        config = TrainConfig()
        known = {"data", "optimizer", "epochs", "batch", "seed", "holdout"}
        scope = Scope({}, prefix="", parent=None)
        for stmt in defn.settings:
            key, span = stmt.targets[0].id, stmt.targets[0].span
            if key not in known:
                raise NNError(f"unknown training setting `{key}`", span,
                              hint=did_you_mean(key, known) or f"settings: {', '.join(sorted(known))}")
            if key == "data":
                config.data = self.data_source(stmt.value, base_dir)
            elif key == "optimizer":
                config.optimizer = self.optimizer(stmt.value, scope)
            else:
                value = self.expr(stmt.value, scope)
                if key == "holdout":
                    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
                        raise NNError(f"`holdout` is the fraction of rows kept for evaluation, a number in [0, 1); "
                                      f"got {value!r}", stmt.value.span)
                    config.holdout = float(value)
                else:
                    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
                        raise NNError(f"`{key}` must be a positive integer, got {value!r}", stmt.value.span)
                    setattr(config, key, value)
        return config

    def data_source(self, e: ast.Expr, base_dir: str) -> DataSource:
        import os
        if not isinstance(e, ast.Call) or not isinstance(e.func, ast.Name) or \
                e.func.id not in ("csv", "npz", "skipgram"):
            raise NNError("`data` must be csv(\"file.csv\", ...), npz(\"file.npz\") or "
                          "skipgram(\"corpus.txt\", window = 2, negatives = 5)", e.span)
        if len(e.args) != 1 or not isinstance(e.args[0], ast.String):
            raise NNError(f"{e.func.id}(...) takes the file's path as one string", e.span)
        if e.func.id == "skipgram":
            return self.skipgram_source(e, os.path.join(base_dir, e.args[0].value))
        columns = {}
        for kw in e.kwargs:
            value = self.expr(kw.value, Scope({}, ""))
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise NNError(f"`{kw.name}` must name a column or a list of columns", kw.value.span)
            columns[kw.name] = value
        return DataSource(e.func.id, os.path.join(base_dir, e.args[0].value), columns, e.span)

    def skipgram_source(self, e: ast.Call, path: str) -> DataSource:
        """skipgram("corpus.txt", window = 2, negatives = 5): (centre, context, negatives) word ids."""
        settings = {"window": 2, "negatives": 5}
        for kw in e.kwargs:
            if kw.name not in settings:
                raise NNError(f"skipgram(...) has no setting `{kw.name}`", kw.span,
                              hint=did_you_mean(kw.name, settings) or "settings: window, negatives")
            value = self.expr(kw.value, Scope({}, ""))
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise NNError(f"`{kw.name}` must be a positive integer, got {describe(value)}", kw.value.span)
            settings[kw.name] = value
        return DataSource("skipgram", path, span=e.span, settings=settings)

    def optimizer(self, e: ast.Expr, scope: Scope) -> Optimizer:
        func = e.func if isinstance(e, ast.Call) else e
        if not isinstance(func, ast.Name) or func.id not in OPTIMIZERS:
            name = func.id if isinstance(func, ast.Name) else e.span.text()
            raise NNError(f"unknown optimizer `{name}`", func.span,
                          hint=did_you_mean(name, OPTIMIZERS) or f"known: {', '.join(OPTIMIZERS)}")
        spec = [(name, None) for name in OPTIMIZERS[func.id]]
        args, kwargs = (e.args, e.kwargs) if isinstance(e, ast.Call) else ([], [])
        values = self.bind(f"`{func.id}`", spec, args, kwargs, e.span, scope, "setting",
                           evaluate=lambda expr: (self.expr(expr, scope), expr.span))
        settings = {}
        for key, item in values.items():
            if item is None:
                continue
            value, span = item
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise NNError(f"`{key}` must be a number, got {describe(value)}", span)
            settings[key] = float(value)
        return Optimizer(func.id, settings)


def _dotted(e: ast.Expr) -> str:
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Attribute):
        return f"{_dotted(e.base)}.{e.name}"
    return "?"
