"""Elaborating parameter declarations: their names, shapes, sharing, and initializers."""
from __future__ import annotations

from nngraph.diagnostics import NNError, did_you_mean
from nngraph.dsl import ast
from nngraph.dsl.values import Scope, describe
from nngraph.ir import ParamInit, TensorType, Value
from nngraph.ops.rules import fmt_shape

INITIALIZERS = {"glorot": "glorot", "xavier": "glorot", "he": "he", "kaiming": "he",
                "normal": "normal", "uniform": "uniform", "constant": "constant", "zeros": "constant",
                "ones": "constant"}
INIT_PARAMS = {"normal": ("mean", "std"), "uniform": ("low", "high"), "constant": ("value",),
               "glorot": (), "he": ()}


class ParamsMixin:
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
