"""Elaborating layers and calls: compile-time arguments, binding arguments to a signature,
calling builtins and layers, running a layer's body, and its (shared) parameters."""
from __future__ import annotations

from typing import Any

from nngraph.diagnostics import NNError, Span, did_you_mean
from nngraph.dsl import ast
from nngraph.dsl.elaborate.call import Call
from nngraph.dsl.values import REQUIRED, Builtin, LayerInstance, LayerTemplate, Scope, describe
from nngraph.ir import Value
from nngraph.ops.rules import fmt_shape

# Layers inside layers deeper than this are an error (each level recurses through the elaborator):
# real models nest a handful; a layer that calls itself would go on until the stack runs out.
MAX_LAYER_DEPTH = 24


class LayersMixin:
    def instantiate(self, template: LayerTemplate, args, kwargs, site: ast.Node, scope: Scope) -> LayerInstance:
        defn = template.defn
        spec = [(c.name, c.default if c.default is not None else REQUIRED) for c in defn.cparams]
        values = self.bind(f"layer `{defn.name}`", spec, args, kwargs, site.span, scope,
                           what="compile-time argument", evaluate=lambda expr: self.expr(expr, scope))
        for cparam in defn.cparams:
            self.check_ctype(cparam, values[cparam.name], site.span)
        given = [n for n, _ in spec[:len(args)]] + [kw.name for kw in kwargs]
        shown = [_carg(values[n]) if i < len(args) else f"{n} = {_carg(values[n])}" for i, n in enumerate(given)]
        return LayerInstance(template, values, label=f"{defn.name}[{', '.join(shown)}]" if shown else defn.name)

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
            if len(err.notes) < 8:     # a deep chain of calls shows its innermost ones
                err.notes.append((f"in layer `{defn.name}` called here", e.span))
            raise
        inst.called = True
        self.graph.scope_labels.setdefault(inst.prefix, inst.label or defn.name)
        if defn.result is not None:
            if not isinstance(result, Value):
                raise NNError(f"layer `{defn.name}` declares a result shape but returns {describe(result)}", defn.result.span)
            self.match_shape(defn.result, result, bindings, f"the result of layer `{defn.name}`", e.span)
        return result

    def layer_body(self, inst: LayerInstance, body: Scope, call: Span):
        defn = inst.template.defn
        if len(self.calls) >= MAX_LAYER_DEPTH:
            names = [name for _, name in self.calls]
            if defn.name in names:       # no `if` in the language: a layer that reaches itself never stops
                chain = " -> ".join(names[len(names) - 1 - names[::-1].index(defn.name):] + [defn.name])
                raise NNError(f"layer `{defn.name}` calls itself ({chain}), which never ends", call,
                              hint="a layer cannot be recursive; unroll it, or repeat it with `scan`")
            raise NNError(f"layers call layers more than {MAX_LAYER_DEPTH} deep here", call)
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
        # (Span's fields spelled out: dataclasses.replace cost more than the rest of this per node)
        return Span(span.source, span.line, span.column, span.end_line, span.end_column,
                    call_site=self.calls[0][0], layer=self.calls[-1][1])

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


def _carg(value) -> str:
    """A compile-time argument as the model would write it: 8, 1e-05, relu, dense[4]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, LayerInstance):
        return value.label or value.name
    if isinstance(value, LayerTemplate):
        return value.defn.name
    return value.name if isinstance(value, Builtin) else repr(value)
