"""Import an ONNX model into the nngraph IR, so that it can be checked, optimized, drawn, run and
differentiated like a model written in a .nn file.

    graph, weights = import_onnx("model.onnx")

- Graph inputs become graph inputs: a `dim_param` becomes a symbolic dim (`"N"`), a `dim_value`
  an int, and a dim with neither a fresh symbol.
- Float initializers become parameters (trainable, `ParamInit("value", {"value": array})`, so
  `runtime.init.init_params` hands back the imported weights); other initializers (shapes, axes,
  indices) and `Constant` nodes become constants.
- Each ONNX op maps onto a small composition of existing nngraph ops (the `HANDLERS` table). The
  IR has no way to express a shape computed at run time, so the inputs that give shapes, axes or
  depths (Reshape's shape, ReduceSum's axes, ...) must be known when importing: constants,
  initializers, values folded from constants (Shape of a fully known shape, ...), or graph inputs
  frozen with `constants={"name": array}`. A shape vector built from symbolic sizes (Shape, then
  Gather, Slice, Concat, ...) is tracked entry by entry (`DimRef`: "the size of axis a of value v"),
  so Reshape, Expand, ConstantOfShape and Range can still read it at compile time.
- A Scan's body is imported recursively with the same handlers (a nested `Importer`); the values
  it reads by name from the enclosing graph become the nngraph scan's captured inputs.
- Everything the importer cannot translate is collected, and reported as ONE `UnsupportedONNX`
  error that lists every unsupported op, dtype and attribute combination with its count.

The file is untrusted input: it is parsed by `onnx.load` (protobuf; no pickle, no eval), and every
tensor is converted with `onnx.numpy_helper.to_array`.
"""
from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nngraph.diagnostics import NNError
from nngraph.ir import Graph, ParamInit, TensorType, Value
from nngraph import ops
from nngraph.ops import ShapeError
from nngraph.runtime.kernels import KERNELS

# ONNX element types nngraph can hold; everything else (float16, int8, uint*, string, ...) is rejected
DTYPES = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64", TensorProto.INT32: "int32",
          TensorProto.INT64: "int64", TensorProto.BOOL: "bool"}

# constant folding at import time is for shapes and axes: small arrays only
FOLD_LIMIT = 4096

# ops whose result depends on their inputs' sizes only
SHAPE_READERS = frozenset({"dim_size", "fill", "positions"})


@dataclass(frozen=True)
class Problem:
    op: str          # ONNX op type ("input" for a graph input, "model" for the file as a whole)
    reason: str      # short and stable: the README lists rejected combinations by this text
    node: str        # the node (or input) name, for the message


class UnsupportedONNX(NNError):
    """One error for the whole file: every op, dtype and attribute combination nngraph cannot
    import. `problems` keeps them for programs; `static_inputs` names graph inputs that would
    import if frozen to known values (`constants=`)."""

    def __init__(self, path: str, problems: list[Problem], static_inputs: list[str]):
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
            hint = f"nngraph imports these ONNX ops: {', '.join(sorted(HANDLERS))}"
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


class Reject(Exception):
    """Raised inside an op handler: this node cannot be imported (the reason goes in the report;
    None when the problems were reported already, e.g. inside a Scan body)."""

    def __init__(self, reason: str | None, static_inputs: tuple[str, ...] = ()):
        super().__init__(reason)
        self.reason, self.static_inputs = reason, static_inputs


# ---------------------------------------------------------------- entry points
def load_onnx_model(path: str) -> onnx.ModelProto:
    if not os.path.exists(path):
        raise NNError(f"no such file: {path}")
    try:
        return onnx.load(path)
    except Exception as err:     # protobuf's DecodeError, external data errors, ...
        raise NNError(f"cannot read {path} as an ONNX model: {err}") from None


def import_onnx(model: str | onnx.ModelProto, constants: dict[str, np.ndarray] | None = None,
                name: str | None = None) -> tuple[Graph, dict[str, np.ndarray]]:
    """The IR graph of an ONNX model and its weights (parameter name -> array).

    `constants` freezes graph inputs to known arrays (they stop being inputs): needed when an
    input gives a shape or axes, which nngraph must know at compile time."""
    path = model if isinstance(model, str) else (name or model.graph.name or "model.onnx")
    proto = load_onnx_model(model) if isinstance(model, str) else model
    if name is None:
        name = os.path.splitext(os.path.basename(model))[0] if isinstance(model, str) else proto.graph.name
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    return Importer(proto.graph, opset, path, constants or {}, name or "onnx").run()


# ---------------------------------------------------------------- the importer
class Importer:
    """Imports one ONNX graph: the model's, or (with `parent`) a Scan body, whose problems go into
    the same report and whose reads of enclosing values become captured inputs."""

    def __init__(self, graph: onnx.GraphProto, opset: int, path: str, constants: dict, name: str,
                 parent: Importer | None = None):
        self.proto, self.opset, self.path, self.frozen, self.parent = graph, opset, path, constants, parent
        self.graph = Graph(_identifier(name) or "onnx")
        self.env: dict[str, Value] = {}              # ONNX value name -> IR value
        self.known: dict[int, np.ndarray] = {}        # IR value uid -> its array, when known at import
        self.dims: dict[int, tuple] = {}              # IR value uid -> its entries (int | DimRef), for shape vectors
        self.initializers: dict[str, np.ndarray] = {}
        self.poisoned: set[str] = set()              # ONNX names not imported (a problem upstream)
        self.captured: list[Value] = []               # a body's reads of enclosing values, in input order
        # one report for the whole file: a body adds to its model's lists
        self.problems: list[Problem] = parent.problems if parent else []
        self.static_inputs: list[str] = parent.static_inputs if parent else []
        self.symbols: set[str] = parent.symbols if parent else set()
        self.weights: dict[str, np.ndarray] = {}

    def run(self) -> tuple[Graph, dict[str, np.ndarray]]:
        g = self.proto
        if g.sparse_initializer:
            self.problem("model", "sparse initializers", "")
        for init in g.initializer:
            self.add_initializer(init)
        self.collect_symbols()
        for vi in g.input:
            if vi.name in self.env or vi.name in self.poisoned:
                continue          # IR version < 4 lists initializers as inputs too: they stay weights
            self.add_input(vi)
        for unknown in sorted(set(self.frozen) - {vi.name for vi in g.input}):
            self.problem("model", "`constants` names no graph input", unknown)
        for node in g.node:
            self.convert(node)
        for out in g.output:
            if out.name in self.poisoned:
                continue
            if out.name not in self.env:
                self.problem("model", "an output that no node computes", out.name)
                continue
            self.check_declared(out, self.env[out.name])
            self.graph.outputs[out.name] = self.env[out.name]
        if self.problems:
            raise UnsupportedONNX(self.path, self.problems, self.static_inputs)
        self.graph.prune()
        used = {v.uid for n in self.graph.nodes for v in n.inputs} | {v.uid for v in self.graph.outputs.values()}
        self.graph.params = [p for p in self.graph.params if p.uid in used]
        self.weights = {p.name: self.weights[p.name] for p in self.graph.params}
        return self.graph, self.weights

    def run_body(self, formal: list[TensorType]) -> tuple[Graph, list[Value]]:
        """A loop body: its inputs take the types the loop gives them (`formal`); returns the body
        graph and the enclosing values it captured (its inputs after the formal ones). Raises
        Reject(None) if anything in it was reported."""
        g, reported = self.proto, len(self.problems)
        if len(g.input) != len(formal):
            raise Reject(f"a body with {len(g.input)} inputs for {len(formal)} loop values")
        for init in g.initializer:
            self.add_initializer(init, body=True)
        for vi, t in zip(g.input, formal):
            self.env[vi.name] = self.graph.add_input(vi.name, t)
        for node in g.node:
            self.convert(node)
        for out in g.output:
            if out.name not in self.env and out.name not in self.poisoned and not self.lookup_outer(out.name):
                self.problem("model", "an output that no node computes", out.name)
            elif out.name in self.env:
                self.graph.outputs[out.name] = self.env[out.name]
        if len(self.problems) > reported or any(out.name in self.poisoned for out in g.output):
            raise Reject(None)
        return self.graph.prune(), self.captured

    def lookup_outer(self, name: str) -> bool:
        """A body reads `name` from an enclosing graph (ONNX scoping): a value known there is copied
        in as a constant, any other becomes a captured input. False if no enclosing graph has it."""
        parent = self.parent
        if parent is None:
            return False
        if name not in parent.env and name not in parent.poisoned and not parent.lookup_outer(name):
            return False
        if name in parent.poisoned:
            self.poisoned.add(name)
            return True
        outer = parent.env[name]
        known = parent.static(outer)
        if known is not None:
            self.env[name] = self.constant(known, name)
        else:
            self.env[name] = self.graph.add_input(name, outer.type)
            self.captured.append(outer)
        return True

    def inputs_behind(self, value: Value) -> tuple[str, ...]:
        """The graph inputs `value` is computed from, if nothing else it depends on varies (no
        parameter, no body input): freezing them would make it known at import time."""
        graph_inputs = {v.uid for v in self.graph.inputs} if self.parent is None else set()
        found, stack, seen = [], [value], set()
        while stack:
            v = stack.pop()
            if v.uid in seen or v.uid in self.known:
                continue
            seen.add(v.uid)
            if v.node is None:
                if v.uid not in graph_inputs:
                    return ()        # a parameter or a loop body's input
                found.append(v.name)
            elif v.node.op in SHAPE_READERS:
                return ()            # a symbolic size: freezing values would not fix it
            else:
                stack.extend(v.node.inputs)
        return tuple(sorted(found))

    def initializer(self, name: str) -> np.ndarray | None:
        """An initializer's array by name, from this graph or an enclosing one."""
        if name in self.initializers:
            return self.initializers[name]
        return self.parent.initializer(name) if self.parent else None

    def problem(self, op: str, reason: str, node: str) -> None:
        self.problems.append(Problem(op, reason, node))

    # ---- inputs, initializers, constants
    def collect_symbols(self) -> None:
        for vi in self.proto.input:
            if vi.type.HasField("tensor_type"):
                for d in vi.type.tensor_type.shape.dim:
                    if d.HasField("dim_param"):
                        self.symbols.add(_identifier(d.dim_param))

    def fresh_symbol(self, hint: str) -> str:
        base = _identifier(hint) or "d"
        name, i = base, 1
        while name in self.symbols:
            name, i = f"{base}_{i}", i + 1
        self.symbols.add(name)
        return name

    def add_initializer(self, tensor: TensorProto, body: bool = False) -> None:
        """Float initializers of the model's graph are weights: trainable parameters that start
        from the file's values. A scan body's initializers are constants of the body (exporters
        put literals there; a body has no parameters of its own), as are integer and bool
        initializers anywhere (shapes, axes and indices)."""
        dtype = DTYPES.get(tensor.data_type)
        if dtype is None:
            self.problem("initializer", f"dtype {_dtype_name(tensor.data_type)}", tensor.name)
            self.poisoned.add(tensor.name)
            return
        array = numpy_helper.to_array(tensor).astype(dtype, copy=False)
        self.initializers[tensor.name] = array
        if dtype.startswith("float") and not body:
            p = self.graph.add_param(tensor.name, TensorType(dtype, array.shape), ParamInit("value", {"value": array}))
            self.weights[p.name] = array
            self.env[tensor.name] = p
        else:
            self.env[tensor.name] = self.constant(array, tensor.name)

    def add_input(self, vi) -> None:
        if vi.name in self.frozen:
            self.add_frozen(vi)
            return
        ttype = vi.type
        if not ttype.HasField("tensor_type"):
            kind = ttype.WhichOneof("value") or "unknown"
            self.problem("input", f"{kind.replace('_type', '')} inputs (only tensors)", vi.name)
            self.poisoned.add(vi.name)
            return
        dtype = DTYPES.get(ttype.tensor_type.elem_type)
        if dtype is None:
            self.problem("input", f"dtype {_dtype_name(ttype.tensor_type.elem_type)}", vi.name)
            self.poisoned.add(vi.name)
            return
        if not ttype.tensor_type.HasField("shape"):
            self.problem("input", "inputs of unknown rank", vi.name)
            self.poisoned.add(vi.name)
            return
        shape = []
        for axis, d in enumerate(ttype.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                shape.append(_identifier(d.dim_param))
            else:
                shape.append(self.fresh_symbol(f"{vi.name}_{axis}"))
        self.env[vi.name] = self.graph.add_input(vi.name, TensorType(dtype, tuple(shape)))

    def add_frozen(self, vi) -> None:
        array = np.asarray(self.frozen[vi.name])
        elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else None
        dtype = DTYPES.get(elem) if elem is not None else None
        if dtype is None:
            self.problem("input", f"dtype {_dtype_name(elem)}" if elem is not None else "non-tensor inputs", vi.name)
            self.poisoned.add(vi.name)
            return
        self.env[vi.name] = self.constant(array.astype(dtype), vi.name)

    def constant(self, array: np.ndarray, name: str | None = None) -> Value:
        value, = self.graph.apply("constant", [], {"value": np.asarray(array)}, name=name or "const")
        self.known[value.uid] = value.node.attrs["value"]
        return value

    def static(self, value: Value) -> np.ndarray | None:
        """The array of `value` if it is known at import time (a constant or folded from constants)."""
        return self.known.get(value.uid)

    # ---- nodes
    def convert(self, node) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            self.problem(f"{node.domain}.{op}", "not supported", node.name)
            self.poisoned.update(o for o in node.output if o)
            return
        handler = HANDLERS.get(op)
        if handler is None:      # reported even downstream of another problem: the list is complete
            self.problem(op, "not supported", node.name)
            self.poisoned.update(o for o in node.output if o)
            return
        for name in node.input:
            if name and name not in self.env and name not in self.poisoned:
                self.lookup_outer(name)
        missing = [i for i in node.input if i and i not in self.env and i not in self.poisoned]
        if missing:
            self.problem(op, f"reads a value nothing defined before it ({missing[0]})", node.name)
            self.poisoned.update(o for o in node.output if o)
            return
        if any(i in self.poisoned for i in node.input if i):
            self.poisoned.update(o for o in node.output if o)   # reported where it went wrong
            return
        start = len(self.graph.nodes)
        cx = Ctx(self, node)
        try:
            results = handler(cx)
            results = results if isinstance(results, (list, tuple)) else [results]
            unread = sorted(a.name for a in node.attribute if a.name not in cx.read)
            if unread:
                raise Reject(f"attribute {unread[0]}")
            unmade = [o for o in node.output[len(results):] if o]
            if unmade:      # an optional output this import cannot compute (e.g. Dropout's mask in training)
                raise Reject(f"output `{unmade[0]}`")
        except Reject as rej:
            del self.graph.nodes[start:]
            if rej.reason is not None:
                self.problem(op, rej.reason, node.name)
            self.static_inputs.extend(n for n in rej.static_inputs if n not in self.static_inputs)
            self.poisoned.update(o for o in node.output if o)
            return
        except ShapeError as err:
            del self.graph.nodes[start:]
            self.problem(op, f"shapes or dtypes nngraph rejects: {err}", node.name)
            self.poisoned.update(o for o in node.output if o)
            return
        made = {v.uid for n in self.graph.nodes[start:] for v in n.outputs}
        for onnx_name, value in zip(node.output, results):
            if not onnx_name:
                continue
            if value.uid in made and value.name not in self.env:
                value.name = self.graph.fresh_name(onnx_name)   # the node's result carries the ONNX name
            self.env[onnx_name] = value
        self.fold(self.graph.nodes[start:])

    def fold(self, nodes) -> None:
        """Evaluate, with the NumPy kernels, the new nodes whose inputs are all known and small:
        shapes and axes computed from constants can then feed Reshape, ReduceSum, ..."""
        for node in nodes:
            if node.op == "constant":
                self.known[node.out.uid] = node.attrs["value"]
                continue
            arrays = [self.known.get(v.uid) for v in node.inputs]
            if not arrays or any(a is None or a.size > FOLD_LIMIT for a in arrays):
                continue
            try:
                with np.errstate(all="ignore"):
                    result = KERNELS[node.op](*arrays, **node.attrs)
            except Exception:    # folding is an optimization: leave it to run time
                continue
            results = [result] if len(node.outputs) == 1 else list(result)
            for v, a in zip(node.outputs, results):
                self.known[v.uid] = np.asarray(a)

    def check_declared(self, info, value: Value) -> None:
        """The file's declared output type must agree with what nngraph computed."""
        if not info.type.HasField("tensor_type"):
            return
        tt = info.type.tensor_type
        declared = DTYPES.get(tt.elem_type)
        if tt.elem_type and declared != value.dtype:
            self.problem("model", f"output declared {_dtype_name(tt.elem_type)} but computed {value.dtype}", info.name)
        if tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            if len(dims) != value.type.rank or any(
                    d is not None and isinstance(have, int) and d != have for d, have in zip(dims, value.shape)):
                self.problem("model", f"output declared with shape {dims} but computed {list(value.shape)}",
                             info.name)


class Ctx:
    """What an op handler sees of one ONNX node: its inputs as IR values (or as arrays known at
    import time), its attributes (each read is recorded: an attribute no handler reads is
    rejected rather than silently ignored), and `op` to emit nngraph ops."""

    def __init__(self, importer: Importer, node):
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


def _dtype_name(elem_type: int) -> str:
    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).name if elem_type not in (
            TensorProto.STRING, TensorProto.UNDEFINED) else TensorProto.DataType.Name(elem_type).lower()
    except (KeyError, ValueError, TypeError):
        try:
            return TensorProto.DataType.Name(elem_type).lower()
        except ValueError:
            return f"type {elem_type}"


def _identifier(text: str) -> str:
    """A symbol or graph name nngraph can print and bind: letters, digits, underscores."""
    text = re.sub(r"\W", "_", text or "")
    return f"_{text}" if text[:1].isdigit() else text


# ================================================================ the op table
HANDLERS: dict[str, Callable[[Ctx], Value | list[Value]]] = {}


def handles(*op_types: str):
    def register(fn):
        for op_type in op_types:
            HANDLERS[op_type] = fn
        return fn
    return register


# ---------------------------------------------------------------- helpers shared by handlers
def need_float(cx: Ctx, v: Value) -> None:
    if not v.type.is_float:
        raise Reject(f"dtype {v.dtype}")


def legacy_broadcast(cx: Ctx) -> None:
    """Before opset 7, binary ops broadcast only with broadcast=1, and `axis` aligned the second
    operand somewhere other than the right. numpy-style broadcasting covers the rest."""
    cx.ignore("consumed_inputs")
    if cx.attr("broadcast", 0) and cx.attr("axis") is not None:
        raise Reject("legacy broadcast with an axis (opset < 7)")


def same_dtype(cx: Ctx, a: Value, b: Value) -> None:
    if a.dtype != b.dtype:
        raise Reject(f"mixed dtypes {a.dtype} and {b.dtype}")


def clamp(cx: Ctx, x: Value, low: Value | None, high: Value | None) -> Value:
    """min(max(x, low), high) with where: NaN stays NaN, and low > high gives high (as np.clip)."""
    if low is not None:
        x = cx.op("where", cx.op("less", x, low), low, x)
    if high is not None:
        x = cx.op("where", cx.op("less", high, x), high, x)
    return x


def norm_axis(axis: int, rank: int) -> int:
    """nngraph's own axis rule (ops.norm_axis); out of range, the ONNX node is rejected."""
    try:
        return ops.norm_axis(axis, rank)
    except ShapeError:
        raise Reject(f"axis {axis} out of range for rank {rank}") from None


def static_dims(v: Value, axes) -> list[int] | None:
    dims = [v.shape[a] for a in axes]
    return dims if all(isinstance(d, int) for d in dims) else None


def flatten_2d(cx: Ctx, x: Value, axis: int) -> Value:
    """x as [prod(shape[:axis]), prod(shape[axis:])]; one side must be static (the other is -1)."""
    rank = x.type.rank
    before, after = static_dims(x, range(axis)), static_dims(x, range(axis, rank))
    if before is not None and (after is None or math.prod(before) != 0):
        return cx.op("reshape", x, shape=(math.prod(before), -1))
    if after is not None and math.prod(after) != 0:
        return cx.op("reshape", x, shape=(-1, math.prod(after)))
    raise Reject("flattening symbolic dims on both sides of the axis")


def squeeze(cx: Ctx, x: Value, axes) -> Value:
    """Drop size-1 axes. nngraph has no squeeze: a sum over axes of size 1 is the identity, keeps
    the dtype, and differentiates to a broadcast."""
    return cx.op("sum", x, axes=tuple(axes), keepdims=False) if axes else x


# ---------------------------------------------------------------- shape vectors known entry by entry
def entry_size(entry):
    """An int, or the symbol of a DimRef whose size is symbolic."""
    return entry.size if isinstance(entry, DimRef) else entry


def resolved(entries) -> tuple:
    """DimRefs to sizes the type knows become ints."""
    return tuple(e.size if isinstance(e, DimRef) and isinstance(e.size, int) else e for e in entries)


def dims_tensor(cx: Ctx, entries, scalar: bool = False) -> Value:
    """The entries as an int64 tensor computed at run time (each DimRef with dim_size), tracked."""
    entries = resolved(entries)
    pieces = [cx.op("dim_size", e.source, axes=(e.axis,), dtype="int64") if isinstance(e, DimRef)
              else cx.const(e, "int64") for e in entries]
    if scalar:
        return cx.track(pieces[0], entries)
    if all(isinstance(e, int) for e in entries):
        return cx.const(list(entries), "int64")
    vectors = [cx.op("expand_dims", p, axes=(0,)) for p in pieces]
    return cx.track(vectors[0] if len(vectors) == 1 else cx.op("concat", *vectors, axis=0), entries)


def whole_shape_of(entries) -> Value | None:
    """The value whose whole shape the entries are (the first DimRef's source), if any."""
    source = next((e.source for e in entries if isinstance(e, DimRef)), None)
    if source is None or source.type.rank != len(entries):
        return None
    return source if all(entry_size(e) == d for e, d in zip(entries, source.shape)) else None


def fill_of(cx: Ctx, entries, value, dtype: str) -> Value:
    """A tensor of `value` whose shape is `entries`: the sizes only known at run time are read from
    their values by nngraph's `fill`."""
    sources: list[Value] = []
    for e in entries:
        if isinstance(e, DimRef) and all(e.source is not s for s in sources):
            sources.append(e.source)
    dims = tuple((next(i for i, s in enumerate(sources) if s is e.source), e.axis) if isinstance(e, DimRef)
                 else int(e) for e in entries)
    return cx.op("fill", *sources, dims=dims, value=value, dtype=dtype)


def shape_like(cx: Ctx, entries) -> Value:
    """A value whose shape is `entries`, for reshape_like and broadcast_like to read: the value
    the entries are the whole shape of, a zero-stride constant when every size is known, else a
    `fill` (its memory is the price of a shape assembled from several values)."""
    entries = resolved(entries)
    if all(isinstance(e, int) for e in entries):
        if any(e < 0 for e in entries):
            raise Reject("negative dims in the shape")
        return cx.imp.constant(np.broadcast_to(np.zeros((), dtype=bool), entries))
    return whole_shape_of(entries) or fill_of(cx, entries, False, "bool")


def size_of(cx: Ctx, x: Value, axes) -> Value:
    """The product of some of x's sizes as an int64 scalar: a constant when they are known."""
    dims = static_dims(x, axes)
    return cx.const(math.prod(dims), "int64") if dims is not None else \
        cx.op("dim_size", x, axes=tuple(axes), dtype="int64")


def slice_axis(cx: Ctx, x: Value, axis: int, start, end, step: int = 1) -> Value:
    return cx.op("slice", x, axes=(axis,), starts=(start,), ends=(end,), steps=(step,))


def arange_along(cx: Ctx, x: Value, axis: int, dtype: str = "int64") -> Value:
    """0, 1, ..., n-1 along `axis`, shaped to broadcast against x (size 1 elsewhere)."""
    n = x.shape[axis]
    if not isinstance(n, int):
        raise Reject("a symbolic size on the reduced axis")
    shape = [n] + [1] * (x.type.rank - axis - 1)
    return cx.const(np.arange(n).reshape(shape), dtype)


# ---------------------------------------------------------------- elementwise arithmetic
def _binary(nn_op: str):
    def handler(cx: Ctx) -> Value:
        legacy_broadcast(cx)
        a, b = cx.x(0), cx.x(1)
        same_dtype(cx, a, b)
        if a.dtype == "bool":
            raise Reject("dtype bool")
        return cx.op(nn_op, a, b)
    return handler


HANDLERS["Add"], HANDLERS["Sub"], HANDLERS["Mul"] = _binary("add"), _binary("sub"), _binary("mul")


@handles("Div")
def _div(cx: Ctx) -> Value:
    legacy_broadcast(cx)
    a, b = cx.x(0), cx.x(1)
    same_dtype(cx, a, b)
    if a.type.is_float:
        return cx.op("div", a, b)
    if a.dtype == "bool":
        raise Reject("dtype bool")
    # integer division truncates toward zero; float64 holds int32 exactly, int64 up to 2**53,
    # and casting back to int truncates toward zero too
    q = cx.op("div", cx.op("cast", a, dtype="float64"), cx.op("cast", b, dtype="float64"))
    return cx.op("cast", q, dtype=a.dtype)


@handles("Pow")
def _pow(cx: Ctx) -> Value:
    legacy_broadcast(cx)
    base, exponent = cx.x(0), cx.x(1)
    if "bool" in (base.dtype, exponent.dtype):
        raise Reject("dtype bool")
    if base.type.is_float:    # the exponent may be of another type (opset 12+): the result has base's
        if exponent.dtype != base.dtype:
            exponent = cx.op("cast", exponent, dtype=base.dtype)
        return cx.op("pow", base, exponent)
    # integer base: compute in float64 (exact for results below 2**53) and truncate back
    out = cx.op("pow", cx.op("cast", base, dtype="float64"), cx.op("cast", exponent, dtype="float64"))
    return cx.op("cast", out, dtype=base.dtype)


def _unary(nn_op: str, float_only: bool):
    def handler(cx: Ctx) -> Value:
        cx.ignore("consumed_inputs")
        x = cx.x(0)
        if float_only:
            need_float(cx, x)
        elif x.dtype == "bool":
            raise Reject("dtype bool")
        return cx.op(nn_op, x)
    return handler


for _onnx, _nn, _float in [("Neg", "neg", False), ("Abs", "abs", False), ("Sign", "sign", False),
                           ("Exp", "exp", True), ("Log", "log", True), ("Sqrt", "sqrt", True),
                           ("Sigmoid", "sigmoid", True), ("Tanh", "tanh", True), ("Softplus", "softplus", True),
                           ("Sin", "sin", True), ("Cos", "cos", True)]:
    HANDLERS[_onnx] = _unary(_nn, _float)


@handles("Relu")
def _relu(cx: Ctx) -> Value:
    cx.ignore("consumed_inputs")
    x = cx.x(0)
    if x.type.is_float:
        return cx.op("relu", x)
    if x.dtype == "bool":
        raise Reject("dtype bool")
    return cx.op("where", cx.op("greater", x, cx.like(0, x)), x, cx.like(0, x))   # integer relu (opset 14)


@handles("Reciprocal")
def _reciprocal(cx: Ctx) -> Value:
    cx.ignore("consumed_inputs")
    x = cx.x(0)
    need_float(cx, x)
    return cx.op("div", cx.like(1, x), x)


# ---------------------------------------------------------------- activations built from primitives
def _float_input(cx: Ctx) -> Value:
    cx.ignore("consumed_inputs")
    x = cx.x(0)
    need_float(cx, x)
    return x


@handles("LeakyRelu")
def _leaky_relu(cx: Ctx) -> Value:
    x = _float_input(cx)
    alpha = cx.attr("alpha", 0.01)
    return cx.op("where", cx.op("less", x, cx.like(0, x)), cx.op("mul", x, cx.like(alpha, x)), x)


@handles("Elu")
def _elu(cx: Ctx) -> Value:
    x = _float_input(cx)
    alpha = cx.attr("alpha", 1.0)
    negative = cx.op("mul", cx.like(alpha, x), cx.op("sub", cx.op("exp", x), cx.like(1, x)))
    return cx.op("where", cx.op("less", x, cx.like(0, x)), negative, x)


@handles("Selu")
def _selu(cx: Ctx) -> Value:
    x = _float_input(cx)
    alpha, gamma = cx.attr("alpha", 1.67326319217681884765625), cx.attr("gamma", 1.05070102214813232421875)
    negative = cx.op("sub", cx.op("mul", cx.like(alpha, x), cx.op("exp", x)), cx.like(alpha, x))
    inner = cx.op("where", cx.op("less_equal", x, cx.like(0, x)), negative, x)
    return cx.op("mul", cx.like(gamma, x), inner)


@handles("Celu")
def _celu(cx: Ctx) -> Value:
    x = _float_input(cx)
    alpha = cx.attr("alpha", 1.0)
    negative = cx.op("mul", cx.like(alpha, x),
                     cx.op("sub", cx.op("exp", cx.op("div", x, cx.like(alpha, x))), cx.like(1, x)))
    return cx.op("where", cx.op("greater", x, cx.like(0, x)), x, negative)


@handles("ThresholdedRelu")
def _thresholded_relu(cx: Ctx) -> Value:
    x = _float_input(cx)
    return cx.op("where", cx.op("greater", x, cx.like(cx.attr("alpha", 1.0), x)), x, cx.like(0, x))


def _hard_sigmoid(cx: Ctx, x: Value, alpha: float, beta: float) -> Value:
    y = cx.op("add", cx.op("mul", x, cx.like(alpha, x)), cx.like(beta, x))
    return clamp(cx, y, cx.like(0, x), cx.like(1, x))


@handles("HardSigmoid")
def _hard_sigmoid_op(cx: Ctx) -> Value:
    x = _float_input(cx)
    return _hard_sigmoid(cx, x, cx.attr("alpha", 0.2), cx.attr("beta", 0.5))


@handles("HardSwish")
def _hard_swish(cx: Ctx) -> Value:
    x = _float_input(cx)
    return cx.op("mul", x, _hard_sigmoid(cx, x, 1 / 6, 0.5))


@handles("Softsign")
def _softsign(cx: Ctx) -> Value:
    x = _float_input(cx)
    return cx.op("div", x, cx.op("add", cx.like(1, x), cx.op("abs", x)))


@handles("Mish")
def _mish(cx: Ctx) -> Value:
    x = _float_input(cx)
    return cx.op("mul", x, cx.op("tanh", cx.op("softplus", x)))


@handles("Swish")
def _swish(cx: Ctx) -> Value:
    x = _float_input(cx)
    alpha = cx.attr("alpha", 1.0)
    scaled = x if alpha == 1.0 else cx.op("mul", x, cx.like(alpha, x))
    return cx.op("mul", x, cx.op("sigmoid", scaled))


@handles("Gelu")
def _gelu(cx: Ctx) -> Value:
    x = _float_input(cx)
    if cx.attr("approximate", "none") != "tanh":
        raise Reject("Gelu with approximate='none' (needs erf)")
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    cube = cx.op("mul", x, cx.op("mul", x, x))
    inner = cx.op("mul", cx.like(math.sqrt(2 / math.pi), x), cx.op("add", x, cx.op("mul", cx.like(0.044715, x), cube)))
    return cx.op("mul", cx.op("mul", cx.like(0.5, x), x), cx.op("add", cx.like(1, x), cx.op("tanh", inner)))


@handles("PRelu")
def _prelu(cx: Ctx) -> Value:
    x, slope = _float_input(cx), cx.x(1)
    same_dtype(cx, x, slope)
    return cx.op("where", cx.op("less", x, cx.like(0, x)), cx.op("mul", x, slope), x)


@handles("Shrink")
def _shrink(cx: Ctx) -> Value:
    x = _float_input(cx)
    bias, lambd = cx.attr("bias", 0.0), cx.attr("lambd", 0.5)
    high = cx.op("where", cx.op("greater", x, cx.like(lambd, x)), cx.op("sub", x, cx.like(bias, x)), cx.like(0, x))
    return cx.op("where", cx.op("less", x, cx.like(-lambd, x)), cx.op("add", x, cx.like(bias, x)), high)


@handles("Clip")
def _clip(cx: Ctx) -> Value:
    x = cx.x(0)
    if x.dtype == "bool":
        raise Reject("dtype bool")
    if cx.opset < 11:      # bounds were attributes, defaulting to the float range
        low = cx.attr("min", None)
        high = cx.attr("max", None)
        return clamp(cx, x, None if low is None else cx.like(low, x), None if high is None else cx.like(high, x))
    low, high = (cx.x(1) if cx.has(1) else None), (cx.x(2) if cx.has(2) else None)
    for bound in (low, high):
        if bound is not None:
            same_dtype(cx, x, bound)
    return clamp(cx, x, low, high)


@handles("Max", "Min")
def _max_min(cx: Ctx) -> Value:
    """Variadic elementwise max/min with broadcasting, as a chain of where."""
    cx.ignore("consumed_inputs")
    values = cx.inputs()
    if not values:
        raise Reject("no inputs")
    compare = "greater" if cx.node.op_type == "Max" else "less"
    out = values[0]
    for v in values[1:]:
        same_dtype(cx, out, v)
        if v.dtype == "bool":
            raise Reject("dtype bool")
        out = cx.op("where", cx.op(compare, v, out), v, out)
    return out


@handles("Sum", "Mean")
def _sum_mean(cx: Ctx) -> Value:
    cx.ignore("consumed_inputs")
    values = cx.inputs()
    out = values[0]
    for v in values[1:]:
        same_dtype(cx, out, v)
        out = cx.op("add", out, v)
    if cx.node.op_type == "Mean":
        need_float(cx, out)
        out = cx.op("div", out, cx.like(len(values), out))
    return out


# ---------------------------------------------------------------- logic and comparison
def _comparison(nn_op: str):
    def handler(cx: Ctx) -> Value:
        legacy_broadcast(cx)
        a, b = cx.x(0), cx.x(1)
        same_dtype(cx, a, b)
        return cx.op(nn_op, a, b)
    return handler


for _onnx, _nn in [("Less", "less"), ("LessOrEqual", "less_equal"), ("Greater", "greater"),
                   ("GreaterOrEqual", "greater_equal"), ("Equal", "equal")]:
    HANDLERS[_onnx] = _comparison(_nn)


def _bools(cx: Ctx) -> list[Value]:
    legacy_broadcast(cx)
    values = cx.inputs()
    if any(v.dtype != "bool" for v in values):
        raise Reject(f"dtype {next(v.dtype for v in values if v.dtype != 'bool')}")
    return values


@handles("Not")
def _not(cx: Ctx) -> Value:
    x, = _bools(cx)
    return cx.op("equal", x, cx.like(False, x))


@handles("And")
def _and(cx: Ctx) -> Value:
    a, b = _bools(cx)
    return cx.op("where", a, b, cx.like(False, a))


@handles("Or")
def _or(cx: Ctx) -> Value:
    a, b = _bools(cx)
    return cx.op("where", a, cx.like(True, a), b)


@handles("Xor")
def _xor(cx: Ctx) -> Value:
    a, b = _bools(cx)
    return cx.op("not_equal", a, b)


@handles("Where")
def _where(cx: Ctx) -> Value:
    cond, a, b = cx.x(0), cx.x(1), cx.x(2)
    same_dtype(cx, a, b)
    return cx.op("where", cond, a, b)


# ---------------------------------------------------------------- types
def _target_dtype(to) -> str:
    if isinstance(to, str):     # opset < 6 names the type: "FLOAT"
        to = TensorProto.DataType.Value(to.upper()) if to.upper() in TensorProto.DataType.keys() else -1
    dtype = DTYPES.get(to)
    if dtype is None:
        raise Reject(f"dtype {_dtype_name(to)}")
    return dtype


@handles("Cast")
def _cast(cx: Ctx) -> Value:
    cx.ignore("saturate", "round_mode")     # both concern float8/float4 targets only, rejected below
    dtype = _target_dtype(cx.attr("to"))
    x = cx.x(0)
    return x if x.dtype == dtype else cx.carry_dims(x, cx.op("cast", x, dtype=dtype))


@handles("CastLike")
def _cast_like(cx: Ctx) -> Value:
    cx.ignore("saturate", "round_mode")
    x, like = cx.x(0), cx.x(1)
    return x if x.dtype == like.dtype else cx.op("cast", x, dtype=like.dtype)


@handles("Identity")
def _identity(cx: Ctx) -> Value:
    return cx.x(0)


@handles("Dropout")
def _dropout(cx: Ctx) -> list[Value]:
    """Inference: the identity (and an all-true mask). Training-mode dropout is random: rejected."""
    x = cx.x(0)
    cx.ignore("seed", "consumed_inputs")
    if cx.opset < 7 and cx.attr("is_test", 0) == 0:
        raise Reject("training-mode dropout")
    cx.ignore("ratio")       # opset < 12: only matters in training mode
    training = bool(cx.static(2, "training_mode").reshape(-1)[0]) if cx.has(2) else False
    ratio = float(cx.static(1, "ratio").reshape(-1)[0]) if training and cx.has(1) else 0.5
    if training and ratio != 0:
        raise Reject("training-mode dropout")
    mask = cx.op("broadcast_like", cx.const(True, "bool"), x)
    return [x, mask] if len([o for o in cx.node.output if o]) > 1 else [x]


# ---------------------------------------------------------------- selection
@handles("ArgMax", "ArgMin")
def _argmax(cx: Ctx) -> Value:
    x = cx.x(0)
    axis = norm_axis(cx.attr("axis", 0), x.type.rank)
    keepdims = bool(cx.attr("keepdims", 1))
    if x.dtype == "bool":
        raise Reject("dtype bool")
    if cx.node.op_type == "ArgMin":
        x = cx.op("neg", x)      # the first minimum of x is the first maximum of -x
    if not cx.attr("select_last_index", 0):
        return cx.op("argmax", x, axis=axis, keepdims=keepdims)
    # the last maximum: the largest index among the positions equal to the maximum
    peak = cx.op("max", x, axes=(axis,), keepdims=True)
    hit = cx.op("equal", x, peak)
    index = cx.op("where", hit, arange_along(cx, x, axis), cx.const(-1, "int64"))
    return cx.op("max", index, axes=(axis,), keepdims=keepdims)


@handles("OneHot")
def _one_hot(cx: Ctx) -> Value:
    indices, values = cx.x(0), cx.x(2)
    depth_array = cx.static(1, "depth").reshape(-1)
    depth = int(depth_array[0])
    if indices.dtype == "bool" or values.dtype == "bool":
        raise Reject("dtype bool")
    rank = indices.type.rank
    axis = cx.attr("axis", -1)
    axis = axis + rank + 1 if axis < 0 else axis
    # negative indices count from the end; out-of-range ones match no class (all off_value)
    wrapped = cx.op("where", cx.op("less", indices, cx.like(0, indices)),
                    cx.op("add", indices, cx.like(depth, indices)), indices)
    # compare in the indices' own dtype, so that float indices like 1.5 match nothing (as ONNX)
    hits = cx.op("equal", cx.op("expand_dims", wrapped, axes=(rank,)),
                 cx.const(np.arange(depth), indices.dtype))
    known = cx.imp.static(values)
    if known is not None:
        off, on = (cx.const(v, values.dtype) for v in known.reshape(-1)[:2])
    else:   # pick off/on out of the [2] tensor at run time: a dot product with [1, 0] and [0, 1]
        off = cx.op("sum", cx.op("mul", values, cx.const([1, 0], values.dtype)), axes=(0,))
        on = cx.op("sum", cx.op("mul", values, cx.const([0, 1], values.dtype)), axes=(0,))
    out = cx.op("where", hits, on, off)
    if axis != rank:      # one_hot puts the classes last; move them to `axis`
        perm = list(range(rank))
        perm.insert(axis, rank)
        out = cx.op("transpose", out, perm=tuple(perm))
    return out


# ---------------------------------------------------------------- softmax family
def _softmax_like(nn_op: str):
    def handler(cx: Ctx) -> Value:
        x = cx.x(0)
        need_float(cx, x)
        rank = x.type.rank
        if cx.opset >= 13:
            return cx.op(nn_op, x, axis=norm_axis(cx.attr("axis", -1), rank))
        # before opset 13 the input is seen as 2-D: [prod(shape[:axis]), prod(shape[axis:])]
        axis = norm_axis(cx.attr("axis", 1), rank)
        if axis == rank - 1:
            return cx.op(nn_op, x, axis=axis)
        flat = cx.op(nn_op, flatten_2d(cx, x, axis), axis=1)
        return cx.op("reshape_like", flat, x)
    return handler


HANDLERS["Softmax"], HANDLERS["LogSoftmax"] = _softmax_like("softmax"), _softmax_like("log_softmax")


@handles("Hardmax")
def _hardmax(cx: Ctx) -> Value:
    x = cx.x(0)
    need_float(cx, x)
    rank = x.type.rank
    if cx.opset >= 13:
        axis = norm_axis(cx.attr("axis", -1), rank)
        flat = x
    else:
        axis = norm_axis(cx.attr("axis", 1), rank)
        flat = x if axis == rank - 1 else flatten_2d(cx, x, axis)
        axis = flat.type.rank - 1
    # 1 at the first maximum along the axis: compare argmax with the positions
    first = cx.op("argmax", flat, axis=axis, keepdims=True)
    out = cx.op("cast", cx.op("equal", arange_along(cx, flat, axis), first), dtype=x.dtype)
    return out if flat is x else cx.op("reshape_like", out, x)


# ---------------------------------------------------------------- reductions
def _reduce_axes(cx: Ctx, x: Value, input_since: int) -> tuple[int, ...] | None:
    """The axes to reduce, or None for no reduction (noop_with_empty_axes with no axes)."""
    if cx.opset >= input_since:
        axes = cx.axes_input(1)
        noop = cx.attr("noop_with_empty_axes", 0)
    else:
        axes = cx.attr("axes", None)
        noop = 0
    if not axes:
        if noop:
            return None
        axes = range(x.type.rank)
    return tuple(sorted({norm_axis(int(a), x.type.rank) for a in axes}))


def _reduction(body: Callable[[Ctx, Value, tuple, bool], Value], input_since: int = 18, empty_ok: bool = True,
               float_only: bool = False):
    def handler(cx: Ctx) -> Value:
        x = cx.x(0)
        keepdims = bool(cx.attr("keepdims", 1))
        if float_only:
            need_float(cx, x)
        axes = _reduce_axes(cx, x, input_since)
        if axes is None:
            return body(cx, x, None, keepdims)
        if not empty_ok and any(x.shape[a] == 0 for a in axes):
            raise Reject("reducing an empty axis (the result would be ±inf)")
        return body(cx, x, axes, keepdims)
    return handler


def _sum_body(cx, x, axes, keepdims):
    if x.dtype == "bool":
        raise Reject("dtype bool")
    return x if axes is None else cx.op("sum", x, axes=axes, keepdims=keepdims)


def _mean_body(cx, x, axes, keepdims):
    if x.dtype == "bool":
        raise Reject("dtype bool")
    return x if axes is None else cx.op("mean", x, axes=axes, keepdims=keepdims)


def _max_body(cx, x, axes, keepdims):
    return x if axes is None else cx.op("max", x, axes=axes, keepdims=keepdims)


def _min_body(cx, x, axes, keepdims):
    if axes is None:
        return x
    if x.dtype == "bool":     # min of bools = not max(not x)
        inv = cx.op("equal", x, cx.like(False, x))
        return cx.op("equal", cx.op("max", inv, axes=axes, keepdims=keepdims), cx.like(False, x))
    return cx.op("neg", cx.op("max", cx.op("neg", x), axes=axes, keepdims=keepdims))


def _sum_square_body(cx, x, axes, keepdims):
    return _sum_body(cx, cx.op("mul", x, x), axes, keepdims)


def _l1_body(cx, x, axes, keepdims):
    return _sum_body(cx, cx.op("abs", x), axes, keepdims)


def _l2_body(cx, x, axes, keepdims):
    return cx.op("sqrt", _sum_square_body(cx, x, axes, keepdims))


def _log_sum_body(cx, x, axes, keepdims):
    return cx.op("log", _sum_body(cx, x, axes, keepdims))


def _log_sum_exp_body(cx, x, axes, keepdims):
    if axes is None:
        return cx.op("log", cx.op("exp", x))
    # shift by the maximum so exp cannot overflow; an all -inf slice would give NaN, so shift by 0 there
    peak = cx.op("max", x, axes=axes, keepdims=True)
    finite = cx.op("where", cx.op("equal", cx.op("abs", peak), cx.like(np.inf, x)), cx.like(0, x), peak)
    total = cx.op("sum", cx.op("exp", cx.op("sub", x, finite)), axes=axes, keepdims=True)
    out = cx.op("add", cx.op("log", total), finite)
    return out if keepdims else squeeze(cx, out, axes)


def _prod_body(cx, x, axes, keepdims):
    """nngraph has no product: the slices along each axis multiplied together (exact for
    integers, differentiable). The product of a shape's entries is dim_size."""
    if axes is None:
        return x
    if x.dtype == "bool":
        raise Reject("dtype bool")
    entries = cx.imp.dims.get(x.uid)
    if entries is not None and not keepdims:
        return _product_of_entries(cx, entries, x.dtype)
    if any(x.shape[a] == 0 for a in axes):
        return _empty_product(cx, x, axes, keepdims)
    out = x
    for a in axes:
        size = x.shape[a]
        if not isinstance(size, int):
            raise Reject("ReduceProd over an axis of symbolic size")
        if size > PRODUCT_LIMIT:
            raise Reject(f"ReduceProd over more than {PRODUCT_LIMIT} elements of an axis")
        factors = [slice_axis(cx, out, a, i, i + 1) for i in range(size)] if size > 1 else [out]
        out = factors[0]
        for f in factors[1:]:
            out = cx.op("mul", out, f)
    return out if keepdims else squeeze(cx, out, axes)


# ReduceProd multiplies slices one by one: meant for shapes and small axes
PRODUCT_LIMIT = 64


def _product_of_entries(cx: Ctx, entries, dtype: str) -> Value:
    """The product of a shape vector's entries: dim_size of each value they read sizes of, times
    the known sizes."""
    entries = resolved(entries)
    known = math.prod(e for e in entries if isinstance(e, int))
    axes_of: dict[int, tuple[Value, list[int]]] = {}
    for e in entries:
        if isinstance(e, DimRef):
            axes_of.setdefault(e.source.uid, (e.source, []))[1].append(e.axis)
    factors = [cx.op("dim_size", source, axes=tuple(axes), dtype=dtype) for source, axes in axes_of.values()]
    if known != 1 or not factors:
        factors.append(cx.const(known, dtype))
    out = factors[0]
    for f in factors[1:]:
        out = cx.op("mul", out, f)
    return out


def _empty_product(cx: Ctx, x: Value, axes, keepdims) -> Value:
    """The product over an empty axis is 1."""
    shape = [1 if a in axes else d for a, d in enumerate(x.shape)] if keepdims else \
        [d for a, d in enumerate(x.shape) if a not in axes]
    if not all(isinstance(d, int) for d in shape):
        raise Reject("ReduceProd over an empty axis with symbolic sizes")
    return cx.imp.constant(np.ones(shape, dtype=x.dtype))


HANDLERS["ReduceSum"] = _reduction(_sum_body, input_since=13)
HANDLERS["ReduceProd"] = _reduction(_prod_body)
HANDLERS["ReduceMean"] = _reduction(_mean_body)
HANDLERS["ReduceMax"] = _reduction(_max_body, empty_ok=False)
HANDLERS["ReduceMin"] = _reduction(_min_body, empty_ok=False)
HANDLERS["ReduceSumSquare"] = _reduction(_sum_square_body)
HANDLERS["ReduceL1"] = _reduction(_l1_body)
HANDLERS["ReduceL2"] = _reduction(_l2_body, float_only=True)
HANDLERS["ReduceLogSum"] = _reduction(_log_sum_body, float_only=True)
HANDLERS["ReduceLogSumExp"] = _reduction(_log_sum_exp_body, empty_ok=False, float_only=True)


@handles("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(cx: Ctx) -> Value:
    x = _float_input(cx)
    if x.type.rank < 3:
        raise Reject(f"rank {x.type.rank} input (needs N, C and spatial axes)")
    axes = tuple(range(2, x.type.rank))
    return cx.op("mean" if cx.node.op_type == "GlobalAveragePool" else "max", x, axes=axes, keepdims=True)


# ---------------------------------------------------------------- linear algebra
@handles("MatMul")
def _matmul(cx: Ctx) -> Value:
    """numpy matmul: a 1-D operand gains an axis for the product, which is then dropped again."""
    a, b = cx.x(0), cx.x(1)
    same_dtype(cx, a, b)
    if a.dtype == "bool":
        raise Reject("dtype bool")
    if a.type.rank == 0 or b.type.rank == 0:
        raise Reject("0-d operands")
    a2 = cx.op("expand_dims", a, axes=(0,)) if a.type.rank == 1 else a
    b2 = cx.op("expand_dims", b, axes=(1,)) if b.type.rank == 1 else b
    out = cx.op("matmul", a2, b2)
    drop = ([out.type.rank - 2] if a.type.rank == 1 else []) + ([out.type.rank - 1] if b.type.rank == 1 else [])
    return squeeze(cx, out, drop)


@handles("Gemm")
def _gemm(cx: Ctx) -> Value:
    """alpha * A' @ B' + beta * C, with A' = A.T if transA, B' = B.T if transB."""
    a, b = cx.x(0), cx.x(1)
    same_dtype(cx, a, b)
    need_float(cx, a)
    cx.ignore("broadcast")        # opset < 7: numpy broadcasting of C covers it
    if cx.attr("transA", 0):
        a = cx.op("transpose", a, perm=(1, 0))
    if cx.attr("transB", 0):
        b = cx.op("transpose", b, perm=(1, 0))
    out = cx.op("matmul", a, b)
    alpha, beta = cx.attr("alpha", 1.0), cx.attr("beta", 1.0)
    if alpha != 1.0:
        out = cx.op("mul", out, cx.like(alpha, out))
    if cx.has(2):
        c = cx.x(2)
        same_dtype(cx, a, c)
        if beta != 1.0:
            c = cx.op("mul", c, cx.like(beta, c))
        out = cx.op("add", out, c)
    return out


# ---------------------------------------------------------------- shapes
@handles("Transpose")
def _transpose(cx: Ctx) -> Value:
    x = cx.x(0)
    perm = cx.attr("perm", None)
    return cx.op("transpose", x, perm=tuple(perm) if perm else tuple(reversed(range(x.type.rank))))


@handles("Reshape")
def _reshape(cx: Ctx) -> Value:
    x = cx.x(0)
    if cx.opset < 5:
        shape = tuple(int(d) for d in cx.attr("shape"))
    else:
        entries = cx.dims(1)
        if entries is None:
            shape = tuple(int(d) for d in cx.static(1, "shape").reshape(-1))
        else:
            return cx.carry_dims(x, _reshape_to_entries(cx, x, entries))
    if cx.attr("allowzero", 0) and 0 in shape:
        # nngraph's reshape reads 0 as "copy that dim" (ONNX's default); a literal 0 it cannot express
        raise Reject("allowzero=1 with a 0 in the shape")
    return cx.carry_dims(x, cx.op("reshape", x, shape=shape))


def _reshape_to_entries(cx: Ctx, x: Value, entries) -> Value:
    """Reshape to a shape known entry by entry: a size equal to x's own at the same position is a
    0 (copy), so `Concat(Shape(x)[:1], [-1])` is reshape [0, -1]; sizes of other values go through
    reshape_like."""
    allowzero = cx.attr("allowzero", 0)
    target = [0 if isinstance(e, DimRef) and i < x.type.rank and e.size == x.shape[i] else entry_size(e)
              for i, e in enumerate(entries)]
    if all(isinstance(d, int) for d in target):
        if allowzero and 0 in [entry_size(e) for e in entries if not isinstance(e, DimRef)]:
            raise Reject("allowzero=1 with a 0 in the shape")
        return cx.op("reshape", x, shape=tuple(target))
    literal = [e for e in resolved(entries) if isinstance(e, int)]
    if -1 in literal or (0 in literal and not allowzero):
        raise Reject("a shape mixing -1 or 0 with sizes read at run time")
    return cx.op("reshape_like", x, shape_like(cx, entries))


@handles("Flatten")
def _flatten(cx: Ctx) -> Value:
    x = cx.x(0)
    rank = x.type.rank
    axis = cx.attr("axis", 1)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis <= rank:
        raise Reject(f"axis {cx.attr('axis')} out of range for rank {rank}")
    return flatten_2d(cx, x, axis)


@handles("Expand")
def _expand(cx: Ctx) -> Value:
    """Broadcast to a shape: broadcast_like against a value of that shape (a zero-size-in-memory
    constant when it is known: np.broadcast_to of a scalar has strides 0)."""
    x = cx.x(0)
    entries = cx.dims(1)
    if entries is None:
        entries = tuple(int(d) for d in cx.static(1, "shape").reshape(-1))
    return cx.op("broadcast_like", x, shape_like(cx, entries))


@handles("Unsqueeze")
def _unsqueeze(cx: Ctx) -> Value:
    x = cx.x(0)
    axes = cx.attr("axes") if cx.opset < 13 else cx.axes_input(1)
    if not axes:
        raise Reject("no axes")
    rank = x.type.rank + len(axes)
    axes = tuple(sorted(norm_axis(int(a), rank) for a in axes))
    return cx.carry_dims(x, cx.op("expand_dims", x, axes=axes))


@handles("Squeeze")
def _squeeze(cx: Ctx) -> Value:
    x = cx.x(0)
    axes = cx.attr("axes") if cx.opset < 13 else cx.axes_input(1)
    if axes is None or len(axes) == 0:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
        if any(isinstance(d, str) for d in x.shape):
            raise Reject("Squeeze without axes on symbolic dims")
    axes = sorted(norm_axis(int(a), x.type.rank) for a in axes)
    for a in axes:
        if x.shape[a] != 1 and isinstance(x.shape[a], int):
            raise Reject(f"squeezing axis {a} of size {x.shape[a]}")
    return cx.carry_dims(x, squeeze(cx, x, axes))


@handles("Shape")
def _shape(cx: Ctx) -> Value:
    """A constant when every dim is known; else computed with dim_size and tracked entry by entry,
    so that Reshape, Expand, ConstantOfShape and Range can still read the shape."""
    x = cx.x(0)
    start, end = cx.attr("start", 0), cx.attr("end", None)
    entries = [DimRef(x, a) for a in range(x.type.rank)][slice(start, end)]
    return dims_tensor(cx, entries)


@handles("Size")
def _size(cx: Ctx) -> Value:
    x = cx.x(0)
    if any(isinstance(d, str) for d in x.shape):
        return cx.op("dim_size", x, dtype="int64")
    return cx.const(math.prod(x.shape), "int64")


@handles("ConstantOfShape")
def _constant_of_shape(cx: Ctx) -> Value:
    entries = cx.dims(0)
    if entries is None:
        entries = tuple(int(d) for d in cx.static(0, "shape").reshape(-1))
    value = cx.attr("value", None)
    fill = numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    dtype = DTYPES.get(value.data_type if value is not None else TensorProto.FLOAT)
    if dtype is None:
        raise Reject(f"dtype {_dtype_name(value.data_type)}")
    entries = resolved(entries)
    if any(isinstance(e, int) and e < 0 for e in entries):
        raise Reject("negative dims in the shape")
    if all(isinstance(e, int) for e in entries):
        return cx.imp.constant(np.full(entries, fill[0], dtype=dtype))
    return fill_of(cx, entries, fill[0].item(), dtype)


@handles("Constant")
def _constant(cx: Ctx) -> Value:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in cx.attrs:
            raw = cx.attr(key)
            if key == "value":
                dtype = DTYPES.get(raw.data_type)
                if dtype is None:
                    raise Reject(f"dtype {_dtype_name(raw.data_type)}")
                array = numpy_helper.to_array(raw).astype(dtype, copy=False)
            else:
                array = np.asarray(raw, dtype="float32" if "float" in key else "int64")
            return cx.imp.constant(array)
    present = next(iter(cx.attrs), "no value")
    raise Reject(f"attribute {present}")


# ---------------------------------------------------------------- normalization (inference)
@handles("BatchNormalization")
def _batch_norm(cx: Ctx) -> Value:
    """Inference form: (x - mean) / sqrt(var + eps) * scale + bias, per channel (axis 1)."""
    x, scale, bias, mean, var = (cx.x(i) for i in range(5))
    need_float(cx, x)
    cx.ignore("momentum", "consumed_inputs")
    if cx.attr("training_mode", 0) or (cx.opset < 7 and not cx.attr("is_test", 0)):
        raise Reject("training-mode batch normalization")
    if not cx.attr("spatial", 1):
        raise Reject("spatial=0")
    if len([o for o in cx.node.output if o]) > 1:
        raise Reject("running statistics outputs")
    eps = cx.attr("epsilon", 1e-5)

    def per_channel(p: Value) -> Value:      # [C] -> [C, 1, ..., 1] to line up with axis 1
        trailing = tuple(range(1, x.type.rank - 1))
        return cx.op("expand_dims", p, axes=trailing) if trailing and p.type.rank == 1 else p

    for p in (scale, bias, mean, var):
        same_dtype(cx, x, p)
    inv = cx.op("div", per_channel(scale), cx.op("sqrt", cx.op("add", per_channel(var), cx.like(eps, x))))
    return cx.op("add", cx.op("mul", cx.op("sub", x, per_channel(mean)), inv), per_channel(bias))


@handles("LayerNormalization")
def _layer_norm(cx: Ctx) -> list[Value]:
    x = cx.x(0)
    need_float(cx, x)
    rank = x.type.rank
    axis = norm_axis(cx.attr("axis", -1), rank)
    eps = cx.attr("epsilon", 1e-5)
    stash = _target_dtype(cx.attr("stash_type", TensorProto.FLOAT))
    axes = tuple(range(axis, rank))
    h = x if stash == x.dtype else cx.op("cast", x, dtype=stash)
    mean = cx.op("mean", h, axes=axes, keepdims=True)
    centred = cx.op("sub", h, mean)
    var = cx.op("mean", cx.op("mul", centred, centred), axes=axes, keepdims=True)
    inv_std = cx.op("div", cx.like(1, h), cx.op("sqrt", cx.op("add", var, cx.like(eps, h))))
    y = cx.op("mul", centred, inv_std)
    y = y if stash == x.dtype else cx.op("cast", y, dtype=x.dtype)
    y = cx.op("mul", y, cx.x(1))
    if cx.has(2):
        y = cx.op("add", y, cx.x(2))
    return [y, mean, inv_std]


# ---------------------------------------------------------------- images: convolution and pooling
# nngraph's conv2d and pools are 2-D (NCHW) with pads (top, left, bottom, right), ONNX's order. A
# 1-D window op runs as a 2-D one over a height of 1.
def spatial_rank(cx: Ctx, x: Value, what: str) -> int:
    spatial = x.type.rank - 2
    if spatial not in (1, 2):
        raise Reject(f"{spatial}-d {what} (nngraph has 1-d and 2-d)" if spatial > 2 else f"rank {x.type.rank} input")
    return spatial


def window_ints(cx: Ctx, name: str, spatial: int, default: int) -> list[int]:
    values = [int(v) for v in cx.attr(name, [default] * spatial)]
    if len(values) != spatial:
        raise Reject(f"{name} of length {len(values)} for {spatial} spatial axes")
    return values


def window_pads(cx: Ctx, x: Value, extents: list[int], strides: list[int]) -> list[int]:
    """Explicit pads, or the ones auto_pad asks for: SAME_UPPER/SAME_LOWER give an output of
    ceil(size / stride) (the odd pixel at the end or at the start), VALID none."""
    spatial = len(extents)
    mode = cx.attr("auto_pad", "NOTSET")
    if mode == "NOTSET":
        pads = [int(p) for p in cx.attr("pads", [0] * 2 * spatial)]
        if len(pads) != 2 * spatial:
            raise Reject(f"pads of length {len(pads)} for {spatial} spatial axes")
        return pads
    if "pads" in cx.attrs:
        raise Reject("auto_pad together with pads")
    if mode == "VALID":
        return [0] * 2 * spatial
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise Reject(f"auto_pad={mode}")
    begins, ends = [], []
    for size, extent, stride in zip(x.shape[2:], extents, strides):
        if isinstance(size, int):
            total = max(0, (-(-size // stride) - 1) * stride + extent - size)
        elif stride == 1:
            total = extent - 1
        else:
            raise Reject("auto_pad SAME on a symbolic size with a stride above 1")
        small, large = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else large)
        ends.append(large if mode == "SAME_UPPER" else small)
    return begins + ends


def as_2d(cx: Ctx, x: Value, spatial: int) -> Value:
    """[N, C, L] as [N, C, 1, L]."""
    return x if spatial == 2 else cx.op("expand_dims", x, axes=(2,))


def from_2d(cx: Ctx, y: Value, spatial: int) -> Value:
    return y if spatial == 2 else squeeze(cx, y, [2])


def pairs_2d(values: list[int], spatial: int, fill: int) -> tuple[int, ...]:
    """A 1-D op's strides or dilations as (height, width), the height being the unit axis."""
    return tuple(values) if spatial == 2 else (fill, values[0])


def pads_2d(pads: list[int], spatial: int) -> tuple[int, ...]:
    return tuple(pads) if spatial == 2 else (0, pads[0], 0, pads[1])


@handles("Conv")
def _conv(cx: Ctx) -> Value:
    x, w = cx.x(0), cx.x(1)
    need_float(cx, x)
    same_dtype(cx, x, w)
    spatial = spatial_rank(cx, x, "convolution")
    kernel = list(w.shape[2:])
    if w.type.rank != x.type.rank or not all(isinstance(k, int) for k in kernel):
        raise Reject("filters of a spatial size not known at import")
    if [int(k) for k in cx.attr("kernel_shape", kernel)] != kernel:
        raise Reject("kernel_shape that differs from the filters")
    strides, dilations = window_ints(cx, "strides", spatial, 1), window_ints(cx, "dilations", spatial, 1)
    pads = window_pads(cx, x, [d * (k - 1) + 1 for d, k in zip(dilations, kernel)], strides)
    attrs = {"stride": pairs_2d(strides, spatial, 1), "pads": pads_2d(pads, spatial),
             "dilation": pairs_2d(dilations, spatial, 1), "groups": int(cx.attr("group", 1))}
    x2, w2 = as_2d(cx, x, spatial), as_2d(cx, w, spatial)
    if all(isinstance(d, int) for d in w.shape):
        y = cx.op("conv2d", x2, w2, **attrs)
    else:
        y = _conv_as_weight_grad(cx, x2, w2, attrs)
    if cx.has(2):      # a bias per output channel: [C] lined up with axis 1
        bias = cx.x(2)
        same_dtype(cx, x, bias)
        y = cx.op("add", y, cx.op("expand_dims", bias, axes=(1, 2)))
    return from_2d(cx, y, spatial)


def _conv_as_weight_grad(cx: Ctx, x: Value, w: Value, attrs: dict) -> Value:
    """A Conv whose filters' channel count is known only at run time: exporters write a
    convolution's weight gradient that way (the input, batch and channels swapped, convolved with
    the output gradient as filters, the batch being the channels summed over). That is nngraph's
    conv2d_weight_grad with the roles swapped back: stride and dilation trade places, and a
    constant the size of the result stands for the filters it would be the gradient of."""
    if attrs["groups"] != 1:
        raise Reject("grouped Conv with filters of a size not known at import")
    batch, out_c = x.shape[0], w.shape[0]
    sizes = [_window_out_size(x.shape[2 + a], w.shape[2 + a], attrs, a) for a in range(2)]
    if not all(isinstance(d, int) for d in [batch, out_c] + sizes):
        raise Reject("Conv with filters of a size not known at import")
    swapped = (1, 0, 2, 3)
    ref = cx.imp.constant(np.broadcast_to(np.zeros((), dtype=x.dtype), (out_c, batch, *sizes)))
    try:
        grad = cx.op("conv2d_weight_grad", cx.op("transpose", x, perm=swapped), cx.op("transpose", w, perm=swapped),
                     ref, stride=attrs["dilation"], pads=attrs["pads"], dilation=attrs["stride"])
    except ShapeError:
        raise Reject("Conv with filters of a size not known at import") from None
    return cx.op("transpose", grad, perm=swapped)


def _window_out_size(size, kernel, attrs: dict, axis: int):
    if not isinstance(size, int) or not isinstance(kernel, int):
        return None
    padded = size + attrs["pads"][axis] + attrs["pads"][axis + 2]
    return (padded - attrs["dilation"][axis] * (kernel - 1) - 1) // attrs["stride"][axis] + 1


@handles("ConvTranspose")
def _conv_transpose(cx: Ctx) -> Value:
    """The adjoint of a convolution, nngraph's conv2d_input_grad: its output has the shape of the
    input of the convolution it transposes (a value of that shape tells conv2d_input_grad)."""
    g, w = cx.x(0), cx.x(1)
    need_float(cx, g)
    same_dtype(cx, g, w)
    spatial = spatial_rank(cx, g, "transposed convolution")
    kernel, sizes = list(w.shape[2:]), list(g.shape[2:])
    if w.type.rank != g.type.rank or not all(isinstance(d, int) for d in kernel + [w.shape[1]]):
        raise Reject("filters of a shape not known at import")
    if not all(isinstance(d, int) for d in sizes):
        raise Reject("a symbolic height or width")
    if [int(k) for k in cx.attr("kernel_shape", kernel)] != kernel:
        raise Reject("kernel_shape that differs from the filters")
    strides, dilations = window_ints(cx, "strides", spatial, 1), window_ints(cx, "dilations", spatial, 1)
    extra = window_ints(cx, "output_padding", spatial, 0)
    # the output before any padding is cut away
    full = [s * (n - 1) + d * (k - 1) + 1 + e for s, n, d, k, e in zip(strides, sizes, dilations, kernel, extra)]
    pads = _transpose_pads(cx, full, sizes, strides)
    grow, pads = [max(-p, 0) for p in pads], [max(p, 0) for p in pads]     # an output_shape beyond the full output
    group = int(cx.attr("group", 1))
    out = [f - pads[a] - pads[spatial + a] for a, f in enumerate(full)]
    ref = shape_like(cx, [DimRef(g, 0), w.shape[1] * group] + ([] if spatial == 2 else [1]) + out)
    try:
        y = cx.op("conv2d_input_grad", as_2d(cx, g, spatial), as_2d(cx, w, spatial), ref,
                  stride=pairs_2d(strides, spatial, 1), pads=pads_2d(pads, spatial),
                  dilation=pairs_2d(dilations, spatial, 1), groups=group)
    except ShapeError:
        raise Reject("output_padding not smaller than the stride") from None
    if any(grow):        # rows and columns no window reaches: zeros
        top, left, bottom, right = pads_2d(grow, spatial)
        y = cx.op("pad", y, pads=(0, 0, top, left, 0, 0, bottom, right), value=0.0)
    if cx.has(2):
        bias = cx.x(2)
        same_dtype(cx, g, bias)
        y = cx.op("add", y, cx.op("expand_dims", bias, axes=(1, 2)))
    return from_2d(cx, y, spatial)


def _transpose_pads(cx: Ctx, full: list[int], sizes: list[int], strides: list[int]) -> list[int]:
    """ConvTranspose's pads: explicit, or cut from the full output to reach `output_shape` (or
    size * stride for auto_pad SAME), the odd one at the start unless SAME_UPPER."""
    spatial = len(full)
    mode = cx.attr("auto_pad", "NOTSET")
    target = cx.attr("output_shape", None)
    if target is None and mode in ("SAME_UPPER", "SAME_LOWER"):
        target = [n * s for n, s in zip(sizes, strides)]
    if target is not None:
        totals = [f - int(t) for f, t in zip(full, list(target)[-spatial:])]
        begins = [t // 2 if mode == "SAME_UPPER" else t - t // 2 for t in totals]
        cx.ignore("pads")
        return begins + [t - b for t, b in zip(totals, begins)]
    if mode == "VALID":
        return [0] * 2 * spatial
    if mode != "NOTSET":
        raise Reject(f"auto_pad={mode}")
    pads = [int(p) for p in cx.attr("pads", [0] * 2 * spatial)]
    if len(pads) != 2 * spatial:
        raise Reject(f"pads of length {len(pads)} for {spatial} spatial axes")
    return pads


def pool_geometry(cx: Ctx, x: Value, spatial: int) -> tuple[list[int], list[int], list[int]]:
    """kernel, strides and pads of a pooling node; with ceil_mode the last, partial windows come
    from extra padding at the end (a window must still start inside the input or its padding)."""
    kernel = window_ints(cx, "kernel_shape", spatial, 0)
    if any(k < 1 for k in kernel):
        raise Reject("no kernel_shape")
    strides = window_ints(cx, "strides", spatial, 1)
    if window_ints(cx, "dilations", spatial, 1) != [1] * spatial:
        raise Reject("dilations other than 1")
    pads = window_pads(cx, x, kernel, strides)
    if cx.attr("ceil_mode", 0):
        extra = ceil_extra(x, kernel, strides, pads)
        pads = pads[:spatial] + [end + more for end, more in zip(pads[spatial:], extra)]
    return kernel, strides, pads


def ceil_extra(x: Value, kernel, strides, pads) -> list[int]:
    spatial = len(kernel)
    extra = []
    for axis, (size, k, s) in enumerate(zip(x.shape[2:], kernel, strides)):
        if not isinstance(size, int):
            raise Reject("ceil_mode=1 on a symbolic size")
        begin, end = pads[axis], pads[spatial + axis]
        out = -(-(size + begin + end - k) // s) + 1
        if (out - 1) * s >= size + begin:       # the last window would start in the end padding
            out -= 1
        extra.append(max(0, (out - 1) * s + k - (size + begin + end)))
    return extra


def pool_attrs(kernel, strides, pads, spatial: int) -> dict:
    return {"kernel": pairs_2d(kernel, spatial, 1), "stride": pairs_2d(strides, spatial, 1),
            "pads": pads_2d(pads, spatial)}


@handles("MaxPool")
def _max_pool(cx: Ctx) -> list[Value]:
    x = cx.x(0)
    need_float(cx, x)
    spatial = spatial_rank(cx, x, "pooling")
    attrs = pool_attrs(*pool_geometry(cx, x, spatial), spatial)
    column_major = cx.attr("storage_order", 0) == 1
    x2 = as_2d(cx, x, spatial)
    y = from_2d(cx, cx.op("max_pool2d", x2, **attrs), spatial)
    if len(cx.node.output) < 2 or not cx.node.output[1]:
        return [y]
    return [y, from_2d(cx, max_pool_indices(cx, x2, attrs, column_major), spatial)]


def max_pool_indices(cx: Ctx, x: Value, attrs: dict, column_major: bool) -> Value:
    """MaxPool's Indices: where each window's maximum sits in the flattened input (height and width
    swapped within each image for storage_order 1). max_pool2d_select reads a tensor shaped like x
    at the maxima; reading x's flat positions (in float64: exact up to 2**53) gives the indices."""
    n, c, h, w = (lined_positions(cx, x, axis) for axis in range(4))
    if column_major:
        inner = cx.op("add", cx.op("mul", w, size_of(cx, x, (2,))), h)
    else:
        inner = cx.op("add", cx.op("mul", h, size_of(cx, x, (3,))), w)
    image = cx.op("add", cx.op("mul", n, size_of(cx, x, (1,))), c)
    where = cx.op("add", cx.op("mul", image, size_of(cx, x, (2, 3))), inner)
    x64 = x if x.dtype == "float64" else cx.op("cast", x, dtype="float64")
    picked = cx.op("max_pool2d_select", x64, cx.op("cast", where, dtype="float64"), **attrs)
    return cx.op("cast", picked, dtype="int64")


def lined_positions(cx: Ctx, x: Value, axis: int) -> Value:
    """0, 1, ... along `axis` of x, shaped to broadcast against x (its size read at run time)."""
    trailing = tuple(range(1, x.type.rank - axis))
    positions = cx.op("positions", x, axis=axis)
    return cx.op("expand_dims", positions, axes=trailing) if trailing else positions


@handles("AveragePool")
def _average_pool(cx: Ctx) -> Value:
    """avg_pool2d divides by the whole window, padding included (count_include_pad=1). Other
    divisors (count_include_pad=0, ceil_mode's partial windows) divide the same result by the
    share of each window that counts: the average of a mask of ones over the counted area."""
    x = cx.x(0)
    need_float(cx, x)
    spatial = spatial_rank(cx, x, "pooling")
    kernel, strides, pads = pool_geometry(cx, x, spatial)
    explicit = window_pads(cx, x, kernel, strides)
    include = bool(cx.attr("count_include_pad", 0))
    x2 = as_2d(cx, x, spatial)
    y = cx.op("avg_pool2d", x2, **pool_attrs(kernel, strides, pads, spatial))
    counted = explicit if include else [0] * 2 * spatial
    if counted == pads:       # every padded position counts: the plain average
        return from_2d(cx, y, spatial)
    mask = pool_mask(cx, x2, pads_2d(counted, spatial))
    uncounted = [p - c for p, c in zip(pads, counted)]
    share = cx.op("avg_pool2d", mask, **pool_attrs(kernel, strides, uncounted, spatial))
    return from_2d(cx, cx.op("div", y, share), spatial)


def pool_mask(cx: Ctx, x: Value, counted: tuple) -> Value:
    """Ones over x's height and width (and the `counted` padding): [1, 1, H', W']."""
    entries = [1, 1, DimRef(x, 2), DimRef(x, 3)]
    mask = fill_of(cx, entries, 1.0, x.dtype) if static_dims(x, (2, 3)) is None else \
        cx.imp.constant(np.ones([1, 1] + static_dims(x, (2, 3)), dtype=x.dtype))
    if any(counted):
        mask = cx.op("pad", mask, pads=(0, 0, counted[0], counted[1], 0, 0, counted[2], counted[3]), value=1.0)
    return mask


# ---------------------------------------------------------------- joining, splitting, indexing
@handles("Concat")
def _concat(cx: Ctx) -> Value:
    values = cx.inputs()
    for v in values[1:]:
        same_dtype(cx, values[0], v)
    rank = values[0].type.rank
    if rank == 0:
        raise Reject("0-d operands")
    axis = norm_axis(cx.attr("axis"), rank)
    entries = [cx.dims(i) for i in range(cx.n) if cx.has(i)]
    if rank == 1 and all(e is not None for e in entries):      # a shape assembled from pieces
        return dims_tensor(cx, [d for e in entries for d in e])
    values = [v for v in values if v.shape[axis] != 0] or values[:1]      # empty pieces add nothing
    return values[0] if len(values) == 1 else cx.op("concat", *values, axis=axis)


@handles("Split")
def _split(cx: Ctx) -> list[Value]:
    x = cx.x(0)
    axis = norm_axis(cx.attr("axis", 0), x.type.rank)
    size = x.shape[axis]
    if not isinstance(size, int):
        raise Reject("Split along an axis of symbolic size")
    sizes = _split_sizes(cx, size, len(cx.node.output))
    if sum(sizes) != size:
        raise Reject(f"parts of sizes {sizes} for an axis of size {size}")
    if len(sizes) == 1:
        return [x]
    offsets = np.cumsum([0] + sizes).tolist()
    return [slice_axis(cx, x, axis, begin, end) if end > begin else empty_tensor(cx, x, {axis: 0})
            for begin, end in zip(offsets[:-1], offsets[1:])]


def _split_sizes(cx: Ctx, size: int, outputs: int) -> list[int]:
    """The sizes of the parts: the `split` input (opset 13+) or attribute, `num_outputs` parts
    (opset 18: the last one smaller when the size does not divide), or equal parts."""
    count = cx.attr("num_outputs", None)
    if cx.opset >= 13 and cx.has(1):
        sizes = cx.ints_input(1, "split")
    elif cx.opset < 13 and cx.attr("split", None):
        sizes = [int(s) for s in cx.attr("split")]
    elif count is not None:
        if count != outputs:
            raise Reject(f"num_outputs={count} with {outputs} outputs")
        chunk = -(-size // count)
        sizes = [chunk] * (count - 1) + [size - chunk * (count - 1)]
    elif size % outputs:
        raise Reject(f"an axis of size {size} split into {outputs} equal parts")
    else:
        sizes = [size // outputs] * outputs
    if any(s < 0 for s in sizes):
        raise Reject("negative part sizes")
    return sizes


@handles("Slice")
def _slice(cx: Ctx) -> Value:
    x = cx.x(0)
    rank = x.type.rank
    if cx.opset < 10:
        starts, ends = [int(v) for v in cx.attr("starts")], [int(v) for v in cx.attr("ends")]
        axes = cx.attr("axes", None)
        steps = None
    else:
        starts, ends = cx.ints_input(1, "starts"), cx.ints_input(2, "ends")
        axes = cx.ints_input(3, "axes") if cx.has(3) else None
        steps = cx.ints_input(4, "steps") if cx.has(4) else None
    axes = [norm_axis(int(a), rank) for a in (axes if axes is not None else range(len(starts)))]
    steps = steps or [1] * len(axes)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise Reject("starts, ends, axes and steps of different lengths")
    if len(set(axes)) != len(axes):
        raise Reject("an axis sliced twice")
    if 0 in steps:
        raise Reject("a step of 0")
    entries = cx.dims(0)
    if entries is not None and rank == 1 and axes:      # part of a shape: its entries, known one by one
        first, stop = _onnx_clamped(len(entries), starts[0], ends[0], steps[0])
        return dims_tensor(cx, entries[first:stop if stop >= 0 else None:steps[0]])
    spec = [_slice_bounds(x.shape[a], a, s, e, st) for a, s, e, st in zip(axes, starts, ends, steps)]
    spec = [bounds for bounds in spec if bounds is not None]
    if any(length == 0 for *_, length in spec):
        return empty_tensor(cx, x, {axis: length for axis, *_, length in spec})
    if not spec:
        return x
    return cx.op("slice", x, axes=tuple(b[0] for b in spec), starts=tuple(b[1] for b in spec),
                 ends=tuple(b[2] for b in spec), steps=tuple(b[3] for b in spec))


# ONNX writes "to the end" as a huge bound (INT64_MAX, INT32_MAX, ...)
HUGE_BOUND = 2 ** 31 - 1


def _slice_bounds(size, axis: int, start: int, end: int, step: int):
    """(axis, start, end, step, length) for nngraph's slice (Python's semantics, as ONNX's; the
    length None where it is symbolic), or None for a slice of the whole axis. Known sizes get exact
    bounds; for symbolic ones a huge bound means "to the end", and the others stay as they are
    (Python's semantics at run time: the same as ONNX's for bounds inside the axis)."""
    if isinstance(size, int):
        first, stop = _onnx_clamped(size, start, end, step)
        if (first, stop, step) == (0, size, 1):
            return None
        return axis, first, (stop if stop >= 0 else None), step, len(range(first, stop, step))
    forward = step > 0
    if (forward and start <= -HUGE_BOUND) or (not forward and start >= HUGE_BOUND):
        start = None
    if (forward and end >= HUGE_BOUND) or (not forward and end <= -HUGE_BOUND):
        end = None
    if any(b is not None and abs(b) >= HUGE_BOUND for b in (start, end)):
        raise Reject("an empty slice of a symbolic axis")
    if (start, end, step) in ((None, None, 1), (0, None, 1)):
        return None
    return axis, start, end, step, None


def _onnx_clamped(size: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX's bounds: negative ones count from the end, then clamp to [0, size] (to [0, size - 1]
    and [-1, size - 1] stepping backwards; -1 is "before the first"). Python's differ in one place:
    a backward start before the first element selects nothing there, the first element here."""
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    if step > 0:
        return min(max(start, 0), size), min(max(end, 0), size)
    return min(max(start, 0), size - 1), min(max(end, -1), size - 1)


def empty_tensor(cx: Ctx, x: Value, sizes: dict) -> Value:
    """A slice or part that selects nothing: nngraph's slice cannot, but an empty constant can
    stand for it when the other sizes are known (nothing flows back through it either)."""
    shape = [sizes.get(axis, d) for axis, d in enumerate(x.shape)]
    if not all(isinstance(d, int) for d in shape):
        raise Reject("an empty slice of a tensor with symbolic sizes")
    return cx.imp.constant(np.zeros(shape, dtype=x.dtype))


@handles("Gather")
def _gather(cx: Ctx) -> Value:
    table, indices = cx.x(0), cx.x(1)
    if indices.dtype not in ("int32", "int64"):
        raise Reject(f"indices of dtype {indices.dtype}")
    if table.type.rank == 0:
        raise Reject("a 0-d table")
    axis = norm_axis(cx.attr("axis", 0), table.type.rank)
    entries, picked = cx.dims(0), cx.imp.static(indices)
    if entries is not None and table.type.rank == 1 and picked is not None and picked.ndim <= 1:
        # sizes picked out of a shape
        return dims_tensor(cx, [entries[int(i)] for i in picked.reshape(-1)], scalar=picked.ndim == 0)
    return cx.op("gather", table, indices, axis=axis)


@handles("Pad")
def _pad(cx: Ctx) -> Value:
    """Constant padding is nngraph's pad; edge, reflect and wrap gather the rows they repeat
    (negative indices count from the end, so symbolic sizes work too); negative pads crop."""
    x = cx.x(0)
    rank = x.type.rank
    mode = cx.attr("mode", "constant")
    pads, value = _pad_amounts(cx, rank)
    x = _crop(cx, x, pads)
    pads = [max(p, 0) for p in pads]
    if not any(pads):
        return x
    if mode == "constant":
        return cx.op("pad", x, pads=tuple(pads), value=value)
    if mode not in ("edge", "reflect", "wrap"):
        raise Reject(f"mode {mode}")
    for axis in range(rank):
        if pads[axis] or pads[rank + axis]:
            x = _pad_by_gather(cx, x, axis, pads[axis], pads[rank + axis], mode)
    return x


def _pad_amounts(cx: Ctx, rank: int) -> tuple[list[int], float | int]:
    """Every axis's start, then every axis's end (axes not named by `axes` get 0), and the value."""
    if cx.opset < 11:
        pads = [int(p) for p in cx.attr("pads" if cx.opset >= 2 else "paddings")]
        return pads, float(cx.attr("value", 0.0))
    if not cx.has(1):
        raise Reject("no pads")
    pads = cx.ints_input(1, "pads")
    value = cx.static(2, "constant_value").reshape(-1)[0].item() if cx.has(2) else 0
    axes = [norm_axis(a, rank) for a in cx.axes_input(3)] if cx.has(3) else list(range(rank))
    if len(pads) != 2 * len(axes):
        raise Reject(f"{len(pads)} pads for {len(axes)} axes")
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
    return full, value


def _crop(cx: Ctx, x: Value, pads: list[int]) -> Value:
    rank = x.type.rank
    for axis in range(rank):
        begin, end = pads[axis], pads[rank + axis]
        if begin < 0 or end < 0:
            x = slice_axis(cx, x, axis, max(-begin, 0), end if end < 0 else None)
    return x


def _pad_by_gather(cx: Ctx, x: Value, axis: int, before: int, after: int, mode: str) -> Value:
    size = x.shape[axis]
    if isinstance(size, int) and (max(before, after) > (size - 1 if mode == "reflect" else size) or size == 0):
        raise Reject(f"{mode} padding wider than the axis")
    head, tail = {"edge": ([0] * before, [-1] * after),
                  "reflect": (list(range(before, 0, -1)), list(range(-2, -2 - after, -1))),
                  "wrap": (list(range(-before, 0)), list(range(after)))}[mode]
    parts = [cx.op("gather", x, cx.const(head, "int64"), axis=axis)] if head else []
    parts.append(x)
    if tail:
        parts.append(cx.op("gather", x, cx.const(tail, "int64"), axis=axis))
    return cx.op("concat", *parts, axis=axis)


def flat_positions(cx: Ctx, data: Value, indices: Value, axis: int) -> Value:
    """ScatterElements' targets as positions in the flattened `data`: the index along `axis` (negative
    ones count from the end) and each other axis's own position, weighted by data's strides."""
    rank = data.type.rank
    idx = indices if indices.dtype == "int64" else cx.op("cast", indices, dtype="int64")
    size = size_of(cx, data, (axis,))
    idx = cx.op("where", cx.op("less", idx, cx.const(0, "int64")), cx.op("add", idx, size), idx)
    flat = None
    for a in range(rank):
        coordinate = idx if a == axis else lined_positions(cx, indices, a)
        if a < rank - 1:
            coordinate = cx.op("mul", coordinate, size_of(cx, data, tuple(range(a + 1, rank))))
        flat = coordinate if flat is None else cx.op("add", flat, coordinate)
    return cx.op("broadcast_like", flat, indices)


def scattered(cx: Ctx, data: Value, updates: Value, scatter: Callable[[Value], Value]) -> Value:
    """data with updates written (reduction none) or added (add) where `scatter` (an nngraph
    scatter_add of its argument into zeros shaped like data) puts them; a position written twice
    gets the sum."""
    reduction = cx.attr("reduction", "none")
    if reduction not in ("none", "add"):
        raise Reject(f"reduction={reduction}")
    if data.dtype == "bool":
        raise Reject("dtype bool")
    same_dtype(cx, data, updates)
    added = scatter(updates)
    if reduction == "add":
        return cx.op("add", data, added)
    hits = scatter(cx.op("broadcast_like", cx.const(1, "int64"), updates))
    return cx.op("where", cx.op("greater", hits, cx.const(0, "int64")), added, data)


def scatter_flat(cx: Ctx, data: Value, where: Value, updates: Value) -> Value:
    """Scatter into data by positions in its flattened form (`where` shaped like updates)."""
    flat_data, flat_where = cx.op("reshape", data, shape=(-1,)), cx.op("reshape", where, shape=(-1,))

    def scatter(g: Value) -> Value:
        flat = cx.op("scatter_add", cx.op("reshape", g, shape=(-1,)), flat_where, flat_data)
        return cx.op("reshape_like", flat, data)
    return scattered(cx, data, updates, scatter)


@handles("ScatterElements")
def _scatter_elements(cx: Ctx) -> Value:
    data, indices, updates = cx.x(0), cx.x(1), cx.x(2)
    if indices.dtype not in ("int32", "int64"):
        raise Reject(f"indices of dtype {indices.dtype}")
    if indices.shape != updates.shape or indices.type.rank != data.type.rank:
        raise Reject("indices and updates of different shapes")
    axis = norm_axis(cx.attr("axis", 0), data.type.rank)
    return scatter_flat(cx, data, flat_positions(cx, data, indices, axis), updates)


@handles("ScatterND")
def _scatter_nd(cx: Ctx) -> Value:
    """indices[..., k] address the first k axes of data. With k = 1 that is nngraph's scatter_add
    along axis 0 (the adjoint of gather); otherwise the addressed slices are found in the
    flattened data."""
    data, indices, updates = cx.x(0), cx.x(1), cx.x(2)
    if indices.dtype not in ("int32", "int64"):
        raise Reject(f"indices of dtype {indices.dtype}")
    k = indices.shape[-1] if indices.type.rank else None
    if not isinstance(k, int) or not 1 <= k <= data.type.rank:
        raise Reject("indices whose last axis is not a known size up to data's rank")
    idx = indices if indices.dtype == "int64" else cx.op("cast", indices, dtype="int64")
    coordinates = [squeeze(cx, slice_axis(cx, idx, -1, a, a + 1), [indices.type.rank - 1]) for a in range(k)]
    if k == 1:
        return scattered(cx, data, updates, lambda g: cx.op("scatter_add", g, coordinates[0], data, axis=0))
    rest = data.shape[k:]
    if not all(isinstance(d, int) for d in rest):
        raise Reject("symbolic sizes after the indexed axes")
    row = None
    for a, coordinate in enumerate(coordinates):
        size = size_of(cx, data, (a,))
        coordinate = cx.op("where", cx.op("less", coordinate, cx.const(0, "int64")), cx.op("add", coordinate, size),
                           coordinate)
        coordinate = cx.op("mul", coordinate, size_of(cx, data, tuple(range(a + 1, data.type.rank))))
        row = coordinate if row is None else cx.op("add", row, coordinate)
    if rest:       # every element of each addressed slice: its row's start plus its offset in the row
        row = cx.op("add", cx.op("expand_dims", row, axes=tuple(range(row.type.rank, row.type.rank + len(rest)))),
                    cx.const(np.arange(math.prod(rest)).reshape(rest), "int64"))
    return scatter_flat(cx, data, cx.op("broadcast_like", row, updates), updates)


# ---------------------------------------------------------------- sequences and loops
@handles("Range")
def _range(cx: Ctx) -> Value:
    """A constant when the bounds are known. Range(0, size of an axis, 1), as nngraph's exporter
    writes `positions` over a symbolic axis, is `positions`."""
    values = [cx.x(i) for i in range(3)]
    dtype = values[0].dtype
    if any(v.dtype != dtype for v in values) or dtype == "bool":
        raise Reject("bounds of different dtypes" if dtype != "bool" else "dtype bool")
    arrays = [cx.imp.static(v) for v in values]
    if all(a is not None for a in arrays):
        start, limit, delta = (a.reshape(-1)[0] for a in arrays)
        if delta == 0:
            raise Reject("a delta of 0")
        return cx.imp.constant(np.arange(start, limit, delta, dtype=dtype))
    limit = cx.dims(1)
    start, delta = arrays[0], arrays[2]
    if limit is not None and len(limit) == 1 and isinstance(limit[0], DimRef) and start is not None \
            and delta is not None and start.reshape(-1)[0] == 0 and delta.reshape(-1)[0] == 1:
        out = cx.op("positions", limit[0].source, axis=limit[0].axis)
        return out if dtype == "int64" else cx.op("cast", out, dtype=dtype)
    for i, array in enumerate(arrays):
        if array is None:
            cx.static(i, "Range bounds")     # raises, naming a graph input to freeze
    raise Reject("Range bounds computed at run time")


@handles("Scan")
def _scan(cx: Ctx) -> list[Value]:
    """ONNX Scan (opset 9+) is nngraph's scan: the initial states are the carries, the scan
    inputs the sequences (along axis 0, all in one direction), and whatever the body reads from
    the enclosing graph the captured values."""
    if cx.opset < 9:
        raise Reject("Scan before opset 9 (a batch axis and sequence_lens)")
    body_proto, n_seq = cx.attr("body"), cx.attr("num_scan_inputs")
    if body_proto is None or n_seq is None:
        raise Reject("no body or no num_scan_inputs")
    values = [cx.x(i) for i in range(cx.n)]
    if not 0 < n_seq <= len(values):
        raise Reject(f"num_scan_inputs={n_seq} with {len(values)} inputs")
    carries, seqs = values[:len(values) - n_seq], values[len(values) - n_seq:]
    n_results = len(body_proto.output) - len(carries)
    if n_results < 0:
        raise Reject("a body that does not return every state")
    reverse = _scan_reverse(cx, n_seq, n_results)
    _scan_axes_are_zero(cx, "scan_input_axes", [s.type.rank for s in seqs])
    _scan_axes_are_zero(cx, "scan_output_axes", [None] * n_results)
    if any(s.type.rank == 0 for s in seqs):
        raise Reject("a 0-d scan input")
    formal = [c.type for c in carries] + [s.type.with_shape(s.shape[1:]) for s in seqs]
    child = Importer(body_proto, cx.opset, cx.imp.path, {}, body_proto.name or "body", parent=cx.imp)
    body, captured = child.run_body(formal)
    seqs, length = _drop_unused_sequences(body, len(carries), seqs)
    return cx.many("scan", *carries, *seqs, *captured, body=body, n_carry=len(carries), n_seq=len(seqs),
                   reverse=reverse, length=length)


def _scan_reverse(cx: Ctx, n_seq: int, n_results: int) -> bool:
    """nngraph's scan walks every sequence one way and keeps result t at position t: ONNX's
    directions all 0, or all 1 (read from the end, prepend the results)."""
    directions = [int(d) for d in (cx.attr("scan_input_directions", None) or [0] * n_seq)] + \
                 [int(d) for d in (cx.attr("scan_output_directions", None) or [0] * n_results)]
    if set(directions) - {0, 1}:
        raise Reject("scan directions other than 0 and 1")
    if len(set(directions)) > 1:
        raise Reject("scan directions that differ")
    return directions[:1] == [1]


def _scan_axes_are_zero(cx: Ctx, name: str, ranks: list) -> None:
    """Axis 0 (also written -rank for inputs) is the only axis nngraph's scan walks and stacks on."""
    for axis, rank in zip(cx.attr(name, None) or [], ranks):
        if int(axis) != 0 and not (rank is not None and int(axis) == -rank):
            raise Reject(f"{name} other than 0")


def _drop_unused_sequences(body: Graph, n_carry: int, seqs: list[Value]) -> tuple[list[Value], int | None]:
    """A sequence the body never reads only counts the steps (nngraph's exporter writes a scan
    over a number of steps that way): with a known length it goes, and the scan runs `length`
    steps."""
    used = {v.uid for n in body.nodes for v in n.inputs} | {v.uid for v in body.outputs.values()}
    formal = body.inputs[n_carry:n_carry + len(seqs)]
    unused = [i for i, v in enumerate(formal) if v.uid not in used]
    keep = [i for i in range(len(seqs)) if i not in unused]
    length = None
    if not keep:
        length = next((s.shape[0] for s in seqs if isinstance(s.shape[0], int)), None)
        if length is None:
            return seqs, None
    for i in reversed(unused):
        body.inputs.remove(formal[i])
    return [seqs[i] for i in keep], length
