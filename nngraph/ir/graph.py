"""The graph IR: values, nodes, graphs (which nodes may nest as attributes, e.g. a scan body).

A `Graph` is a list of nodes in topological order. Values are SSA: each is produced by exactly one
node, or is a graph input or parameter. Types carry a dtype and a shape whose dimensions are ints
or symbol names (`"N"`); the runtime binds symbols from the actual inputs.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nngraph.diagnostics import Span
from nngraph.ir.registry import OPS
from nngraph.ir.types import TensorType

if TYPE_CHECKING:
    import networkx as nx

_ids = itertools.count()


class Value:
    """One SSA value. `node` is its producer (None for graph inputs and parameters)."""
    __slots__ = ("name", "type", "node", "span", "uid")

    def __init__(self, name: str, type: TensorType, node: Node | None = None, span: Span | None = None):
        self.name, self.type, self.node, self.span = name, type, node, span
        self.uid = next(_ids)

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


@dataclass(eq=False)
class Node:
    op: str
    inputs: list[Value]
    attrs: dict[str, Any]
    outputs: list[Value] = field(default_factory=list)
    span: Span | None = None
    scope: str = ""             # layer path, e.g. "h" or "encoder.cell"
    role: str = "forward"       # "forward", or "backward" for nodes made by autodiff

    @property
    def out(self) -> Value:
        assert len(self.outputs) == 1, f"{self.op} has {len(self.outputs)} outputs"
        return self.outputs[0]


@dataclass
class ParamInit:
    """How a parameter starts: `kind` is constant, normal, uniform, glorot, he, or value (an exact
    array in args["value"], e.g. an imported ONNX initializer)."""
    kind: str
    args: dict[str, Any] = field(default_factory=dict)


class Graph:
    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []          # data fed at run time (model inputs and targets)
        self.params: list[Value] = []          # trainable parameters
        self.outputs: dict[str, Value] = {}    # named results
        self.nodes: list[Node] = []
        self.param_init: dict[str, ParamInit] = {}
        self.targets: set[str] = set()         # names of inputs that are training targets
        self.loss: str | None = None           # name of the output that is the loss
        self.scope_labels: dict[str, str] = {}  # layer instance path -> "dense[8, relu]", for pictures
        self._names: set[str] = set()

    # ---- building ----
    def fresh_name(self, hint: str) -> str:
        hint = hint or "v"
        if hint not in self._names:
            self._names.add(hint)
            return hint
        # Start after the last number this hint got: counting from 1 each time made building a
        # graph of n same-op nodes quadratic. Names are never removed, so the result is the same.
        counters = self.__dict__.setdefault("_counters", {})
        for i in itertools.count(counters.get(hint, 1)):
            name = f"{hint}.{i}"
            if name not in self._names:
                self._names.add(name)
                counters[hint] = i + 1
                return name

    def add_input(self, name: str, type: TensorType, span: Span | None = None, target: bool = False) -> Value:
        value = Value(self.fresh_name(name), type, span=span)
        self.inputs.append(value)
        if target:
            self.targets.add(value.name)
        return value

    def add_param(self, name: str, type: TensorType, init: ParamInit, span: Span | None = None) -> Value:
        value = Value(self.fresh_name(name), type, span=span)
        self.params.append(value)
        self.param_init[value.name] = init
        return value

    def apply(self, op: str, inputs: list[Value], attrs: dict | None = None, *, span: Span | None = None,
              scope: str = "", role: str = "forward", name: str | None = None) -> list[Value]:
        """Append a node; its output types come from the op's shape rule (which may raise TypeError_)."""
        attrs = attrs or {}
        opdef = OPS[op]
        out_types = opdef.infer([v.type for v in inputs], attrs)
        node = Node(op, list(inputs), attrs, span=span, scope=scope, role=role)
        base = name or (f"{scope}.{op}" if scope else op)
        node.outputs = [Value(self.fresh_name(base), t, node) for t in out_types]
        self.nodes.append(node)
        return node.outputs

    # ---- queries ----
    def value_by_name(self) -> dict[str, Value]:
        table = {v.name: v for v in self.inputs + self.params}
        for node in self.nodes:
            table.update((v.name, v) for v in node.outputs)
        return table

    def consumers(self) -> dict[int, list[Node]]:
        users: dict[int, list[Node]] = {}
        for node in self.nodes:
            for v in node.inputs:
                users.setdefault(v.uid, []).append(node)
        return users

    def to_networkx(self) -> nx.DiGraph:
        """Nodes and edges producer -> consumer, for graph algorithms."""
        # networkx takes ~0.3 s to import: only the callers of this method (nngraph explain) pay it
        import networkx as nx
        dg = nx.DiGraph()
        for node in self.nodes:
            dg.add_node(id(node), node=node)
            for v in node.inputs:
                if v.node is not None:
                    dg.add_edge(id(v.node), id(node))
        return dg

    def clone(self, _bodies: dict | None = None) -> tuple[Graph, dict[int, Value]]:
        """A deep copy of the structure, nested graphs (scan bodies) included, other attrs shared;
        returns the new graph and uid -> new Value. A body two nodes share stays shared."""
        bodies = {} if _bodies is None else _bodies
        new = Graph(self.name)
        new.param_init = dict(self.param_init)
        new.targets = set(self.targets)
        new.loss = self.loss
        new.scope_labels = dict(self.scope_labels)
        new._names = set(self._names)
        vmap: dict[int, Value] = {}
        for v in self.inputs:
            vmap[v.uid] = nv = Value(v.name, v.type, span=v.span)
            new.inputs.append(nv)
        for v in self.params:
            vmap[v.uid] = nv = Value(v.name, v.type, span=v.span)
            new.params.append(nv)
        for node in self.nodes:
            attrs = {k: _clone_body(a, bodies) if isinstance(a, Graph) else a for k, a in node.attrs.items()}
            nn = Node(node.op, [vmap[v.uid] for v in node.inputs], attrs,
                      span=node.span, scope=node.scope, role=node.role)
            for v in node.outputs:
                vmap[v.uid] = nv = Value(v.name, v.type, nn, v.span)
                nn.outputs.append(nv)
            new.nodes.append(nn)
        new.outputs = {k: vmap[v.uid] for k, v in self.outputs.items()}
        return new, vmap

    def inline(self, body: Graph, args: list[Value]) -> list[Value]:
        """Copy `body`'s nodes into this graph with its inputs bound to `args`; returns the
        values of its outputs, in order."""
        vmap = {v.uid: a for v, a in zip(body.inputs, args)}
        self.append_copies(body.nodes, vmap, fresh_names=True)
        return [vmap[v.uid] for v in body.outputs.values()]

    def append_copies(self, nodes, vmap: dict[int, Value], fresh_names: bool = False) -> None:
        """Append copies of `nodes` (of another graph), their inputs looked up in `vmap` (uid ->
        Value of this graph), which learns their outputs. Names are kept, or made unique here."""
        for node in nodes:
            copy = Node(node.op, [vmap[v.uid] for v in node.inputs], dict(node.attrs),
                        span=node.span, scope=node.scope, role=node.role)
            for v in node.outputs:
                vmap[v.uid] = nv = Value(self.fresh_name(v.name) if fresh_names else v.name, v.type, copy, v.span)
                copy.outputs.append(nv)
            self.nodes.append(copy)

    def prune(self) -> Graph:
        """Drop nodes whose results no output needs (in place); returns self."""
        live = {v.uid for v in self.outputs.values()}
        kept = []
        for node in reversed(self.nodes):
            if any(v.uid in live for v in node.outputs):
                kept.append(node)
                live.update(v.uid for v in node.inputs)
        self.nodes = kept[::-1]
        return self

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.nodes)} nodes>"


def _clone_body(body: Graph, bodies: dict) -> Graph:
    if id(body) not in bodies:
        bodies[id(body)] = body.clone(bodies)[0]
    return bodies[id(body)]
