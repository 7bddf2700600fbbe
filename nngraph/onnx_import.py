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
  frozen with `constants={"name": array}`.
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
from nngraph.ops import ShapeError
from nngraph.runtime.kernels import KERNELS

# ONNX element types nngraph can hold; everything else (float16, int8, uint*, string, ...) is rejected
DTYPES = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64", TensorProto.INT32: "int32",
          TensorProto.INT64: "int64", TensorProto.BOOL: "bool"}

# constant folding at import time is for shapes and axes: small arrays only
FOLD_LIMIT = 4096


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


@dataclass(frozen=True)
class ShapeOf:
    """What Shape gives for a value with symbolic dims: not a tensor nngraph can hold, but
    Reshape(x, Shape(y)) is reshape_like(x, y) and Expand(x, Shape(y)) is broadcast_like(x, y)
    (how nngraph's own exporter writes those two ops)."""
    source: Value


class Reject(Exception):
    """Raised inside an op handler: this node cannot be imported (the reason goes in the report)."""

    def __init__(self, reason: str, static_input: str | None = None):
        super().__init__(reason)
        self.reason, self.static_input = reason, static_input


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
    return Importer(proto, path, constants or {}, name or "onnx").run()


# ---------------------------------------------------------------- the importer
class Importer:
    def __init__(self, model: onnx.ModelProto, path: str, constants: dict, name: str):
        self.model, self.path, self.frozen = model, path, constants
        self.graph = Graph(_identifier(name) or "onnx")
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.env: dict[str, Value] = {}              # ONNX value name -> IR value
        self.known: dict[int, np.ndarray] = {}        # IR value uid -> its array, when known at import
        self.initializers: dict[str, np.ndarray] = {}
        self.poisoned: set[str] = set()              # ONNX names not imported (a problem upstream)
        self.shapes: dict[str, Value] = {}            # ONNX name of a Shape with symbolic dims -> its source
        self.problems: list[Problem] = []
        self.static_inputs: list[str] = []
        self.weights: dict[str, np.ndarray] = {}
        self.symbols: set[str] = set()

    def run(self) -> tuple[Graph, dict[str, np.ndarray]]:
        g = self.model.graph
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
            if out.name in self.shapes:
                self.problem("Shape", "Shape of symbolic dims as an output", out.name)
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

    def problem(self, op: str, reason: str, node: str) -> None:
        self.problems.append(Problem(op, reason, node))

    # ---- inputs, initializers, constants
    def collect_symbols(self) -> None:
        for vi in self.model.graph.input:
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

    def add_initializer(self, tensor: TensorProto) -> None:
        dtype = DTYPES.get(tensor.data_type)
        if dtype is None:
            self.problem("initializer", f"dtype {_dtype_name(tensor.data_type)}", tensor.name)
            self.poisoned.add(tensor.name)
            return
        array = numpy_helper.to_array(tensor).astype(dtype, copy=False)
        self.initializers[tensor.name] = array
        if dtype.startswith("float"):
            # weights: trainable parameters that start from the file's values
            p = self.graph.add_param(tensor.name, TensorType(dtype, array.shape), ParamInit("value", {"value": array}))
            self.weights[p.name] = array
            self.env[tensor.name] = p
        else:
            # integer and bool initializers are shapes, axes and indices: constants
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
        missing = [i for i in node.input if i and i not in self.env and i not in self.poisoned and i not in self.shapes]
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
            self.problem(op, rej.reason, node.name)
            if rej.static_input and rej.static_input not in self.static_inputs:
                self.static_inputs.append(rej.static_input)
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
            if isinstance(value, ShapeOf):
                self.shapes[onnx_name] = value.source
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
        name = self.node.input[i]
        if name in self.imp.shapes:
            raise Reject("Shape of symbolic dims used as a tensor")
        return self.imp.env[name]

    def shape_of(self, i: int) -> Value | None:
        """If input i is the whole shape of a value with symbolic dims (an ONNX Shape node), that value."""
        return self.imp.shapes.get(self.node.input[i]) if self.has(i) else None

    def inputs(self) -> list[Value]:
        return [self.x(i) for i in range(self.n) if self.has(i)]

    def static(self, i: int, what: str) -> np.ndarray:
        """Input i as an array known now: shapes, axes and depths are compile-time in nngraph."""
        name = self.node.input[i]
        array = self.imp.static(self.x(i))
        if array is None and name in self.imp.initializers:
            array = self.imp.initializers[name]      # a float initializer read as a constant
        if array is None:
            is_input = any(v.name == name for v in self.imp.graph.inputs)
            raise Reject(f"{what} computed at run time", static_input=name if is_input else None)
        return array

    def axes_input(self, i: int) -> list[int] | None:
        return [int(a) for a in self.static(i, "axes").reshape(-1)] if self.has(i) else None

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
HANDLERS: dict[str, Callable[[Ctx], Value | ShapeOf | list[Value]]] = {}


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
    if not -rank <= axis < max(rank, 1):
        raise Reject(f"axis {axis} out of range for rank {rank}")
    return axis % rank if rank else 0


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
                           ("Sigmoid", "sigmoid", True), ("Tanh", "tanh", True), ("Softplus", "softplus", True)]:
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
    return x if x.dtype == dtype else cx.op("cast", x, dtype=dtype)


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


HANDLERS["ReduceSum"] = _reduction(_sum_body, input_since=13)
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
    like = cx.shape_of(1) if cx.opset >= 5 else None
    if like is not None:
        cx.attr("allowzero", 0)     # no literal zeros in a shape read from a value
        return cx.op("reshape_like", x, like)
    shape = [int(d) for d in (cx.attr("shape") if cx.opset < 5 else cx.static(1, "shape").reshape(-1))]
    if cx.attr("allowzero", 0) and 0 in shape:
        # nngraph's reshape reads 0 as "copy that dim" (ONNX's default); a literal 0 it cannot express
        raise Reject("allowzero=1 with a 0 in the shape")
    return cx.op("reshape", x, shape=tuple(shape))


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
    """Broadcast to a shape: broadcast_like against a zero-size-in-memory constant of that shape
    (np.broadcast_to of a scalar: strides 0)."""
    x = cx.x(0)
    like = cx.shape_of(1)
    if like is not None:
        return cx.op("broadcast_like", x, like)
    shape = tuple(int(d) for d in cx.static(1, "shape").reshape(-1))
    if any(d < 0 for d in shape):
        raise Reject("negative dims in the shape")
    ref = cx.imp.constant(np.broadcast_to(np.zeros((), dtype=bool), shape))
    return cx.op("broadcast_like", x, ref)


@handles("Unsqueeze")
def _unsqueeze(cx: Ctx) -> Value:
    x = cx.x(0)
    axes = cx.attr("axes") if cx.opset < 13 else cx.axes_input(1)
    if not axes:
        raise Reject("no axes")
    rank = x.type.rank + len(axes)
    axes = tuple(sorted(norm_axis(int(a), rank) for a in axes))
    return cx.op("expand_dims", x, axes=axes)


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
    return squeeze(cx, x, axes)


@handles("Shape")
def _shape(cx: Ctx) -> Value:
    """Known when every dim is: nngraph has no run-time shape values."""
    x = cx.x(0)
    start, end = cx.attr("start", 0), cx.attr("end", None)
    dims = list(x.shape)[slice(start, end)]
    if any(isinstance(d, str) for d in dims):
        if len(dims) == x.type.rank:
            return ShapeOf(x)       # usable by Reshape and Expand only
        raise Reject("Shape of symbolic dims")
    return cx.const(np.array(dims, dtype=np.int64), "int64")


@handles("Size")
def _size(cx: Ctx) -> Value:
    x = cx.x(0)
    if any(isinstance(d, str) for d in x.shape):
        raise Reject("Size of symbolic dims")
    return cx.const(math.prod(x.shape), "int64")


@handles("ConstantOfShape")
def _constant_of_shape(cx: Ctx) -> Value:
    shape = tuple(int(d) for d in cx.static(0, "shape").reshape(-1))
    value = cx.attr("value", None)
    fill = numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    dtype = DTYPES.get(value.data_type if value is not None else TensorProto.FLOAT)
    if dtype is None:
        raise Reject(f"dtype {_dtype_name(value.data_type)}")
    return cx.imp.constant(np.full(shape, fill[0], dtype=dtype))


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
