"""What an ONNX op handler sees of the node it imports (`Ctx`), the shape entries known only at
run time (`DimRef`, `SymDim`), and how a node (`Reject`) or a whole file (`Problem`, `UnsupportedONNX`) is
rejected."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from onnx import TensorProto, helper

from nngraph.diagnostics import NNError
from nngraph.ir import Value


@dataclass(frozen=True)
class Problem:
    op: str          # ONNX op type ("input" for a graph input, "model" for the file as a whole)
    reason: str      # short and stable: the README lists rejected combinations by this text
    node: str        # the node (or input) name, for the message


class UnsupportedONNX(NNError):
    """One error for the whole file: every op, dtype and attribute combination nngraph cannot
    import. `problems` keeps them for programs; `static_inputs` names graph inputs that would
    import if frozen to known values (`constants=`); `supported` is the ONNX op types the
    importer handles (its HANDLERS table), listed in the hint for ops it does not."""

    def __init__(self, path: str, problems: list[Problem], static_inputs: list[str], supported: Iterable[str]):
        self.problems, self.static_inputs = problems, static_inputs
        counts = Counter((p.op, p.reason) for p in problems)
        examples: dict[tuple[str, str], list[str]] = {}
        for p in problems:
            examples.setdefault((p.op, p.reason), []).append(p.node)
        lines = []
        for (op, reason), count in sorted(counts.items()):
            names = ", ".join(f"`{n}`" for n in examples[(op, reason)][:3] if n)
            more = ", ..." if count > 3 else ""
            lines.append(f"\n  {op}: {reason} ({count} node{'s' if count != 1 else ''}"
                         + (f": {names}{more}" if names else "") + ")")
        kinds = len({p.op for p in problems})
        hint = None
        if static_inputs:
            hint = ("nngraph needs shapes and axes at compile time; freeze "
                    + ", ".join(f"`{n}`" for n in static_inputs)
                    + " to known values with `nngraph.load(path, constants={name: array})`")
        elif any(p.reason == "not supported" for p in problems):
            hint = f"nngraph imports these ONNX ops: {', '.join(sorted(supported))}"
        super().__init__(f"cannot import {path}: {len(problems)} unsupported use{'s' if len(problems) != 1 else ''} "
                         f"of {kinds} ONNX op{'s' if kinds != 1 else ''}:" + "".join(lines), None, hint=hint)


@dataclass(frozen=True, eq=False)
class DimRef:
    """One entry of a shape vector that is known only at run time: the size of axis `axis` of
    `source`. Shape(x) of a symbolic x is such a vector (and is also computed, with dim_size, for
    whoever reads it as a tensor); Reshape, Expand, ConstantOfShape and Range read the entries."""
    source: Value
    axis: int

    @property
    def size(self):
        """The size as nngraph's type knows it: an int, or a symbol such as "N"."""
        return self.source.shape[self.axis]


@dataclass(frozen=True, eq=False)
class SymDim:
    """A shape entry computed at run time from other sizes (Shape, Gather, then Mul, Add, Div):
    `size` is the symbolic dim it equals (`"2*N"`, normalized by nngraph/ir/dims.py), and the
    int64 `value` holds it (entry `index` of a vector, or the scalar itself when index is None)."""
    size: object
    value: Value
    index: int | None = None


class Reject(Exception):
    """Raised inside an op handler: this node cannot be imported (the reason goes in the report;
    None when the problems were reported already, e.g. inside a Scan body)."""

    def __init__(self, reason: str | None, static_inputs: tuple[str, ...] = ()):
        super().__init__(reason)
        self.reason, self.static_inputs = reason, static_inputs


class Ctx:
    """What an op handler sees of one ONNX node: its inputs as IR values (or as arrays known at
    import time), its attributes (each read is recorded: an attribute no handler reads is
    rejected rather than silently ignored), and `op` to emit nngraph ops."""

    def __init__(self, importer, node):      # importer: nngraph.onnx.importer.Importer
        self.imp, self.node, self.opset = importer, node, importer.opset
        self.attrs = {a.name: a for a in node.attribute}
        self.read: set[str] = set()

    # ---- attributes
    def attr(self, name: str, default=None):
        self.read.add(name)
        a = self.attrs.get(name)
        if a is None:
            return default
        value = helper.get_attribute_value(a)
        return value.decode() if isinstance(value, bytes) else value

    def ignore(self, *names: str) -> None:
        """Attributes that do not change the result here (e.g. Cast's saturate for non-float8)."""
        self.read.update(names)

    # ---- inputs
    @property
    def n(self) -> int:
        return len(self.node.input)

    def has(self, i: int) -> bool:
        return i < len(self.node.input) and self.node.input[i] != ""

    def x(self, i: int) -> Value:
        return self.imp.env[self.node.input[i]]

    def inputs(self) -> list[Value]:
        return [self.x(i) for i in range(self.n) if self.has(i)]

    def static(self, i: int, what: str) -> np.ndarray:
        """Input i as an array known now: shapes, axes and depths are compile-time in nngraph."""
        name = self.node.input[i]
        array = self.imp.static(self.x(i))
        if array is None:
            array = self.imp.initializer(name)       # a float initializer read as a constant
        if array is None and self.x(i).uid in self.imp.tainted:
            raise Reject(None)        # a placeholder after another problem: that one is the cause
        if array is None:
            raise Reject(f"{what} computed at run time", static_inputs=self.imp.inputs_behind(self.x(i)))
        return array

    def axes_input(self, i: int) -> list[int] | None:
        return [int(a) for a in self.static(i, "axes").reshape(-1)] if self.has(i) else None

    def ints_input(self, i: int, what: str) -> list[int]:
        return [int(a) for a in self.static(i, what).reshape(-1)]

    def dims(self, i: int) -> tuple | None:
        """Input i as shape entries (ints and DimRefs) if it is a shape vector (or a size: int64,
        as Shape gives them) known entry by entry at import time, else None."""
        if not self.has(i) or self.x(i).dtype != "int64":
            return None
        value = self.x(i)
        if value.uid in self.imp.dims:
            return self.imp.dims[value.uid]
        array = self.imp.static(value)
        if array is not None and array.ndim <= 1 and array.dtype.kind == "i":
            return tuple(int(a) for a in array.reshape(-1))
        return None

    def track(self, value: Value, entries) -> Value:
        """Remember that `value` (a rank-0 or rank-1 int tensor) holds these shape entries."""
        self.imp.dims[value.uid] = tuple(entries)
        return value

    def carry_dims(self, source: Value, out: Value) -> Value:
        """`out` holds the same entries as `source` (a Cast, Reshape, Squeeze of a shape vector)."""
        entries = self.imp.dims.get(source.uid)
        if entries is not None and out.type.rank <= 1 and out.dtype == "int64" and \
                (1 if out.type.rank == 0 else out.shape[0]) == len(entries):
            self.track(out, entries)
        return out

    # ---- emitting
    def op(self, op: str, *inputs: Value, **attrs) -> Value:
        return self.many(op, *inputs, **attrs)[0]

    def many(self, op: str, *inputs: Value, **attrs) -> list[Value]:
        hint = next((o for o in self.node.output if o), op)
        return self.imp.graph.apply(op, list(inputs), attrs, name=f"{hint}.{op}")

    def const(self, value, dtype: str) -> Value:
        return self.imp.constant(np.asarray(value, dtype=dtype))

    def like(self, value, like: Value) -> Value:
        """A scalar constant with the dtype of `like`."""
        return self.const(value, like.dtype)


def dtype_name(elem_type: int) -> str:
    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).name if elem_type not in (
            TensorProto.STRING, TensorProto.UNDEFINED) else TensorProto.DataType.Name(elem_type).lower()
    except (KeyError, ValueError, TypeError):
        try:
            return TensorProto.DataType.Name(elem_type).lower()
        except ValueError:
            return f"type {elem_type}"
