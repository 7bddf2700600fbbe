"""The typed AST of the .nn language. Every node carries the `Span` of the text it came from."""
from __future__ import annotations

from dataclasses import dataclass, field

from nngraph.diagnostics import Span


@dataclass
class Node:
    span: Span = field(repr=False, compare=False, kw_only=True)


# ---- expressions ----
class Expr(Node):
    pass


@dataclass
class Name(Expr):
    id: str


@dataclass
class Number(Expr):
    value: int | float
    is_int: bool


@dataclass
class String(Expr):
    value: str


@dataclass
class Bool(Expr):
    value: bool


@dataclass
class ListExpr(Expr):
    items: list[Expr]


@dataclass
class TupleExpr(Expr):
    items: list[Expr]


@dataclass
class BinOp(Expr):
    op: str            # one of + - * / ** @ < <= > >= == !=
    left: Expr
    right: Expr


@dataclass
class UnaryOp(Expr):
    op: str            # "-"
    operand: Expr


@dataclass
class Keyword(Node):
    name: str
    value: Expr


@dataclass
class Call(Expr):
    func: Expr                      # usually a Name or a Subscript like dense[2]
    args: list[Expr]
    kwargs: list[Keyword]


@dataclass
class Slice(Expr):
    start: Expr | None
    stop: Expr | None
    step: Expr | None


@dataclass
class Subscript(Expr):
    """`base[items]`: indexing/slicing of a tensor, or compile-time arguments of a layer."""
    base: Expr
    items: list[Expr]               # each an Expr, a Slice, or a Keyword (layer[units = 4])


@dataclass
class Attribute(Expr):
    base: Expr
    name: str


@dataclass
class Ellipsis_(Expr):
    pass


# ---- shapes ----
@dataclass
class ShapeExpr(Node):
    dims: list[Expr]                # Number, Name, BinOp of those, or Ellipsis_
    dtype: str | None = None        # float, float32, float64, int, int64, bool


# ---- statements ----
class Stmt(Node):
    pass


@dataclass
class InputDecl(Stmt):
    kind: str                       # "input" or "target"
    name: str
    shape: ShapeExpr


@dataclass
class ParamDecl(Stmt):
    name: str
    shape: ShapeExpr
    init: Expr | None               # `~ glorot` / `~ normal(std = 0.1)` / `= 0`
    init_kind: str | None           # "~" (random initializer) or "=" (constant value)


@dataclass
class Assign(Stmt):
    targets: list[Name]             # one, or several for tuple destructuring
    value: Expr


@dataclass
class OutputDecl(Stmt):
    name: str
    value: Expr | None              # `output y = expr` or `output y` (an existing name)


@dataclass
class Return(Stmt):
    values: list[Expr]


@dataclass
class Yield(Stmt):
    values: list[Expr]


@dataclass
class Scan(Expr):
    """`scan [reverse] x in xs, ... carry (h = init, ...) { body }` or `scan n steps ...`."""
    reverse: bool
    sequences: list[tuple[Name, Expr]]      # (loop variable, sequence); empty with `steps`
    steps: Expr | None
    carries: list[tuple[Name, Expr]]        # (carry name, initial value)
    body: list[Stmt]


# ---- top-level items ----
@dataclass
class CParam(Node):
    """A compile-time argument of a layer: `units: int`, `act = identity`."""
    name: str
    type: str | None
    default: Expr | None


@dataclass
class TParam(Node):
    """A tensor argument of a layer: `x: [..., n]` (the shape is optional)."""
    name: str
    shape: ShapeExpr | None


@dataclass
class LayerDef(Node):
    name: str
    cparams: list[CParam]
    tparams: list[TParam]
    result: ShapeExpr | None
    body: list[Stmt]


@dataclass
class ModelDef(Node):
    name: str
    body: list[Stmt]


@dataclass
class TrainDef(Node):
    model: str
    settings: list[Assign]


@dataclass
class Import(Node):
    path: str


@dataclass
class Module(Node):
    path: str
    imports: list[Import]
    layers: list[LayerDef]
    models: list[ModelDef]
    trains: list[TrainDef]
