"""The compile-time values of the .nn language: layer templates and instances, builtin
functions, scopes of names, scan bodies being built, and `describe`, which words any of them
for an error message."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from nngraph.dsl import ast
from nngraph.ir import Graph, Value

REQUIRED = object()


@dataclass
class Builtin:
    name: str
    params: tuple[tuple[str, object], ...]     # (name, default or REQUIRED)
    build: Callable
    doc: str = ""


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
    label: str = ""                # "dense[8, relu]": the layer and the arguments it was given, for pictures

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


@dataclass
class ScanFrame:
    """A scan body being elaborated: values of enclosing graphs used in it become inputs of the
    body (captured), passed to the scan node from outside."""
    graph: Graph
    defined: set[int] = field(default_factory=set)      # uids of the body's own values
    captured: dict[int, Value] = field(default_factory=dict)   # enclosing uid -> body input
    outer: list[Value] = field(default_factory=list)    # the captured values, in input order
