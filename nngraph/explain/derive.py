"""The chain rule read back from the symbolic gradient graph.

The gradient graph is built here the way `nngraph.autodiff.grad` builds it (the same `backprop`
walk over the same VJPs), but keeping the map forward value -> its gradient value. That map is
what makes the formula factorised: walking back from ``grad:PARAM``, the walk stops at the
gradient of every value the .nn file names (an output, an assignment, a layer instance's result,
a scan carry) and writes that gradient as a factor ``∂loss/∂NAME``, derived on its own line. The
backward nodes in between become an `Expr` (nngraph/explain/expr.py), simplified and rendered.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from nngraph.autodiff import grad_name
from nngraph.diagnostics import NNError, Span, did_you_mean
from nngraph.explain.expr import Expr, const, leaf, simplify, size
from nngraph.ir.backprop import backprop, on_path, zeros_like
from nngraph.ir.emit import Emitter
from nngraph.ir.graph import Graph, Value

# forward ops shown inline (as formulas of their inputs) when a gradient reads an unnamed value
_INLINE = {"reshape", "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "sigmoid", "tanh", "relu",
           "softplus", "matmul", "transpose", "one_hot", "constant", "softmax"}
_INLINE_DEPTH = 2
_EXPAND_LIMIT = 24        # a factorised formula is also shown expanded if that stays this small
_FORMULA_LIMIT = 40       # a backward subexpression bigger than this becomes a factor δk of its own
_ASSIGNMENT = re.compile(r"^\s*(?:output\s+)?([A-Za-z_]\w*)\s*=")


@dataclass
class Equation:
    """``∂loss/∂name = expr``; `target` is the gradient graph's value it equals."""
    name: str
    expr: Expr
    target: Value
    about: Value
    expanded: Expr | None = None
    raw: Expr | None = None           # before simplification, for the tests
    note: str = ""
    span: Span | None = None
    lhs: str = ""                     # set for an intermediate δk: its label instead of ∂loss/∂name


@dataclass
class Derivation:
    param: str
    loss: str
    equations: list[Equation] = field(default_factory=list)


class Explainer:
    """One model's gradient graph, named for reading; `derive(param)` explains one parameter."""

    def __init__(self, graph: Graph):
        if graph.loss is None:
            raise NNError(f"model `{graph.name}` has no loss to explain",
                          next((v.span for v in graph.inputs if v.span), None), hint="add `loss = ...` to the model")
        self.model = graph
        self.loss = graph.loss
        self.graph, self.grads = gradient_graph(graph)
        self.names = display_names(self.graph)
        self.owner: dict[int, Value] = {}          # gradient value uid -> the named value it is the gradient of
        for uid, name in self.names.items():
            g = self.grads.get(uid)
            if g is not None and g.uid not in self.owner and name != self.loss:
                self.owner[g.uid] = self._value(uid)
        self._memo: dict[int, Expr] = {}
        self.intermediate: dict[int, str] = {}     # backward value uid -> its label δk

    def _value(self, uid: int) -> Value:
        if not hasattr(self, "_by_uid"):
            self._by_uid = {v.uid: v for v in self.graph.inputs + self.graph.params}
            self._by_uid.update((v.uid, v) for n in self.graph.nodes for v in n.outputs)
        return self._by_uid[uid]

    def check_param(self, name: str) -> Value:
        params = {p.name: p for p in self.graph.params}
        if name not in params:
            raise NNError(f"model `{self.model.name}` has no parameter `{name}`",
                          hint=did_you_mean(name, params) or f"its parameters: {', '.join(params)}")
        return params[name]

    def derive(self, param: str) -> Derivation:
        """The equations for ∂loss/∂param: first the parameter's, then each named factor it uses."""
        p = self.check_param(param)
        out = Derivation(param, self.loss)
        target = self.graph.outputs[grad_name(param)]
        todo, seen = [(p, target)], set()
        while todo:
            about, value = todo.pop(0)
            if value.uid in seen:
                continue
            seen.add(value.uid)
            eq = self.equation(about, value)
            out.equations.append(eq)
            todo += [(self.owner.get(x.value.uid, x.value), x.value) for x in eq.expr.leaves()
                     if x.op == "grad"]
        for eq in out.equations:
            eq.expanded = self._expand(eq.expr, out.equations)
        return out

    def equation(self, about: Value, value: Value) -> Equation:
        name = self.names.get(about.uid, about.name)
        raw = self.expr_of(value, root=value.uid)
        if value.uid in self.intermediate and value.uid not in self.owner:
            return Equation(name, simplify(raw), value, about, raw=raw, span=_span_of(about),
                            lhs=self.intermediate[value.uid])
        special = self._softmax_cross_entropy(about, value)
        note = ""
        if special is not None:
            expr, note = special, "softmax with cross entropy: the prediction minus the truth"
        else:
            expr = simplify(raw)
        return Equation(name, expr, value, about, raw=raw, note=note, span=_span_of(about))

    # ---- backward nodes -> Expr
    def expr_of(self, v: Value, root: int) -> Expr:
        if v.uid != root and v.uid in self.owner:
            return leaf(v, f"∂{self.loss}/∂{self.names[self.owner[v.uid].uid]}", kind="grad")
        if v.uid != root and v.uid in self.intermediate:
            return leaf(v, self.intermediate[v.uid], kind="grad")
        if v.uid in self._memo and v.uid != root:
            return self._memo[v.uid]
        node = v.node
        if node is None or node.role == "forward":
            result = self.forward_expr(v, _INLINE_DEPTH)
        elif node.op == "constant":
            result = const(node.attrs["value"])
        elif node.op == "scan":
            result = leaf(v, _bptt_label(self, node, v))
        else:
            attrs = dict(node.attrs)
            if len(node.outputs) > 1:
                attrs["_pick"] = node.outputs.index(v)
            if node.op in ("sum", "mean", "dim_size"):
                attrs["_over"] = _axes_names(node.inputs[0].shape, node.attrs.get("axes"), node.op == "dim_size")
            result = Expr(node.op, [self.expr_of(i, root) for i in node.inputs], attrs, shape=v.shape)
            result.value = v
            if v.uid != root and size(result) > _FORMULA_LIMIT:
                self.intermediate[v.uid] = f"δ{len(self.intermediate) + 1}"
                result = leaf(v, self.intermediate[v.uid], kind="grad")
        self._memo[v.uid] = result
        return result

    def forward_expr(self, v: Value, depth: int) -> Expr:
        if v.uid in self.names:
            return leaf(v, self.names[v.uid])
        node = v.node
        if node is None:
            return leaf(v, v.name)
        if node.op == "constant":
            return const(node.attrs["value"])
        if node.op in _INLINE and depth > 0 and len(node.outputs) == 1:
            e = Expr(node.op, [self.forward_expr(i, depth - 1) for i in node.inputs], node.attrs, shape=v.shape)
            e.value = v
            return e
        return leaf(v, v.name)

    def _expand(self, expr: Expr, equations: list[Equation]) -> Expr | None:
        """The formula with every factor ∂loss/∂X replaced by its own, if that stays short."""
        if not any(x.op == "grad" for x in expr.leaves()):
            return None
        by_target = {eq.target.uid: eq for eq in equations}

        memo: dict[int, Expr] = {}

        def sub(e: Expr) -> Expr:
            if id(e) not in memo:
                if e.op == "grad" and e.value.uid in by_target:
                    memo[id(e)] = sub(by_target[e.value.uid].expr)
                else:
                    memo[id(e)] = Expr(e.op, [sub(a) for a in e.args], e.attrs, e.value, e.label, e.shape) \
                        if e.args else e
            return memo[id(e)]
        full = sub(expr)
        if size(full) > 2 * _EXPAND_LIMIT:
            return None
        full = simplify(full)
        return full if size(full) <= _EXPAND_LIMIT else None

    # ---- recognised patterns
    def _softmax_cross_entropy(self, about: Value, value: Value) -> Expr | None:
        """∂loss/∂logits of `cross_entropy` (log_softmax, times the target distribution, summed,
        negated, averaged) is (softmax(logits) − target) / count, when the loss is nothing else."""
        loss_node = self.graph.outputs[self.loss].node
        scope = loss_node.scope if loss_node else None
        if not scope:
            return None
        forward = [n for n in self.graph.nodes if n.role == "forward" and n.scope == scope]
        ops = [n.op for n in forward]
        log_sm = next((n for n in forward if n.op == "log_softmax" and n.inputs[0] is about), None)
        if log_sm is None or ops[-1] != "mean" or "neg" not in ops:
            return None
        product = next((n for n in forward if n.op == "mul" and log_sm.out in n.inputs), None)
        if product is None:
            return None
        backward = self._backward_nodes(value)
        if any(n.scope != scope and n.op != "constant" for n in backward):
            return None
        count = next((n for n in backward if n.op == "dim_size"), None)
        if count is None:
            return None
        truth = next(i for i in product.inputs if i is not log_sm.out)
        axis = log_sm.attrs.get("axis", -1)
        diff = Expr("sub", [Expr("softmax", [leaf(about, self.names[about.uid])], {"axis": axis}),
                            self.forward_expr(truth, _INLINE_DEPTH)])
        counted = Expr("dim_size", [self.forward_expr(count.inputs[0], 0)],
                       count.attrs | {"_over": _axes_names(count.inputs[0].shape, count.attrs.get("axes"))})
        return Expr("div", [diff, counted])

    def _backward_nodes(self, value: Value) -> list:
        found, stack, seen = [], [value], set()
        while stack:
            v = stack.pop()
            if v.uid in seen or v.node is None or v.node.role != "backward":
                continue
            seen.add(v.uid)
            if v is not value and v.uid in self.owner:
                continue
            found.append(v.node)
            stack += v.node.inputs
        return found


def gradient_graph(graph: Graph) -> tuple[Graph, dict[int, Value]]:
    """A copy of `graph` with outputs grad:PARAM (as `nngraph.autodiff.grad` makes them), and the
    map forward value uid -> gradient value that the walk produced."""
    g, _ = graph.clone()
    target = g.outputs[g.loss]
    seed = Emitter(g, role="backward")("constant", value=np.ones((), target.dtype))
    grads = backprop(g, {target.uid: seed}, on_path(g, g.params, [target]))
    for p in g.params:
        g.outputs[grad_name(p.name)] = grads.get(p.uid) or zeros_like(Emitter(g), p)
        grads.setdefault(p.uid, g.outputs[grad_name(p.name)])
    return g, grads


def display_names(g: Graph) -> dict[int, str]:
    """value uid -> the name the .nn file gives it: inputs and parameters, outputs, a layer
    instance's result (its scope), the target of an assignment, a scan's carries."""
    names = {v.uid: v.name for v in g.inputs + g.params}
    for key, v in g.outputs.items():
        if not key.startswith("grad:"):
            names.setdefault(v.uid, key)
    forward = [n for n in g.nodes if n.role == "forward"]
    users: dict[int, list] = {}
    for n in forward:
        for v in n.inputs:
            users.setdefault(v.uid, []).append(n)
    assigned: dict[tuple, Value] = {}
    for n in forward:
        if n.scope and "." not in n.scope:
            for v in n.outputs:
                if any(u.scope != n.scope for u in users.get(v.uid, [])):
                    names.setdefault(v.uid, n.scope)
        if n.span is not None and len(n.outputs) == 1:
            # `name = ...` on the node's line: in the model, or inside a layer's body (scope.name)
            match = _ASSIGNMENT.match(n.span.source.line(n.span.line))
            if match:
                assigned[(n.span.file, n.span.line, n.scope, match.group(1))] = n.out
        if n.op == "scan":
            body = n.attrs["body"]
            for out, key in zip(n.outputs, list(body.outputs)[:n.attrs["n_carry"]]):
                names.setdefault(out.uid, key.split(":", 1)[-1])
    scopes = {n.scope for n in forward}
    for (_, _, scope, name), v in assigned.items():
        if scope:
            names.setdefault(v.uid, f"{scope}.{name}")
        elif name not in scopes:        # `h = dense[..](flatten(x))`: `h` is the layer's, not the flatten's
            names.setdefault(v.uid, name)
    return _primed(g, names)


def _primed(g: Graph, names: dict[int, str]) -> dict[int, str]:
    """A name assigned again (`x = x + f(x)`) names a new value: x, x′, x″, … in the order they are made."""
    order = [v.uid for v in g.inputs + g.params] + [v.uid for n in g.nodes for v in n.outputs]
    seen: dict[str, int] = {}
    for uid in order:
        if uid in names:
            name = names[uid]
            k = seen[name] = seen.get(name, -1) + 1
            if k:
                names[uid] = name + ("′" * k if k <= 3 else f"({k})")
    return names


def _axes_names(shape, axes, sizes: bool = False) -> str:
    """The axes a reduction runs over, by the names of their dimensions: "N", "N·T" or "axis 2";
    with `sizes` (a count of elements) a fixed dimension shows its size instead."""
    axes = range(len(shape)) if axes is None else axes
    names = []
    for axis in axes:
        dim = shape[axis % len(shape)] if shape else "?"
        names.append(dim if isinstance(dim, str) else str(dim) if sizes else f"axis {axis % max(len(shape), 1)}")
    return "·".join(names)


def _span_of(v: Value) -> Span | None:
    span = v.span or (v.node.span if v.node else None)
    return span.call_site or span if span else None


def _bptt_label(explainer: Explainer, node, v: Value) -> str:
    """A gradient that comes out of the reverse scan: backpropagation through time (bptt.py)."""
    forward = next((n for n in explainer.graph.nodes if n.op == "scan" and n.role == "forward"
                    and n.span == node.span), None)
    carry = explainer.names.get(forward.outputs[0].uid, "h") if forward is not None else "h"
    return f"Σ_t BPTT[{carry}_t]"
