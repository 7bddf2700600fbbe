"""Import an ONNX model into the nngraph IR, so that it can be checked, optimized, drawn, run and
differentiated like a model written in a .nn file.

    graph, weights = import_onnx("model.onnx")

- Graph inputs become graph inputs: a `dim_param` becomes a symbolic dim (`"N"`), a `dim_value`
  an int, and a dim with neither a fresh symbol.
- Float initializers that are weights become parameters (trainable, `ParamInit("value", {"value":
  array})`, so `nngraph.training.params.init_params` hands back the imported weights); float
  initializers that exporters use as literals (ReLU6's bounds, an attention scale, a -inf mask:
  nngraph/onnx/roles.py), other initializers (shapes, axes, indices) and `Constant` nodes become
  constants. `trainable=` overrides the sorting.
- Each ONNX op maps onto a small composition of existing nngraph ops (the `HANDLERS` table, filled
  by the family modules of nngraph/onnx/handlers/). The IR has no way to express a shape computed
  at run time, so the inputs that give shapes, axes or depths (Reshape's shape, ReduceSum's axes,
  ...) must be known when importing: constants, initializers, values folded from constants (Shape
  of a fully known shape, ...), or graph inputs frozen with `constants={"name": array}`. A shape
  vector built from symbolic sizes (Shape, then Gather, Slice, Concat, ...) is tracked entry by
  entry (`DimRef`: "the size of axis a of value v"), so Reshape, Expand, ConstantOfShape and Range
  can still read it at compile time.
- A Scan's body is imported recursively with the same handlers (a nested `Importer`); the values
  it reads by name from the enclosing graph become the nngraph scan's captured inputs.
- Everything the importer cannot translate is collected, and reported as ONE `UnsupportedONNX`
  error that lists every unsupported op, dtype and attribute combination with its count. A node
  that fails leaves placeholders typed by ONNX shape inference, so the nodes downstream are still
  imported and report their own problems (not the shape errors a placeholder's guessed type causes).
- Arithmetic on shape entries (Shape, Gather, then Mul, Add, Sub, Div; Equal and Where) is
  followed with nngraph/ir/dims.py, so a size such as batch * heads is the symbolic dim `2*N`.

The file is untrusted input: it is parsed by `onnx.load` (protobuf; no pickle, no eval), and every
tensor is converted with `onnx.numpy_helper.to_array`.
"""
from __future__ import annotations

import math
import os
import re

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from nngraph.diagnostics import NNError
from nngraph.ir import Graph, ParamInit, TensorType, Value
from nngraph.ir.registry import ShapeError
from nngraph.onnx.context import Ctx, Problem, Reject, UnsupportedONNX, dtype_name

# ONNX element types nngraph can hold; everything else (float16, int8, uint*, string, ...) is rejected
from nngraph.onnx.dtypes import FROM_ONNX
from nngraph.onnx.handlers.registry import HANDLERS  # the package imports every family: all registered
from nngraph.onnx.roles import trainable_initializers
from nngraph.runtime.numpy import evaluate

# constant folding at import time is for shapes and axes: small arrays only
FOLD_LIMIT = 4096

# A bigger graph, or a node with more inputs, is refused before any of it is imported.
MAX_NODES = 1_000_000
MAX_FILE_BYTES = 2**31       # protobuf's own limit on one message
MAX_NODE_INPUTS = 4096

# ops whose result depends on their inputs' sizes only
SHAPE_READERS = frozenset({"dim_size", "fill", "positions"})


# ---------------------------------------------------------------- entry points
def load_onnx_model(path: str) -> onnx.ModelProto:
    if not os.path.exists(path):
        raise NNError(f"no such file: {path}")
    if not os.path.isfile(path):        # a device such as /dev/zero would be read until the memory is gone
        raise NNError(f"{path} is not a regular file, so not an ONNX model")
    if os.path.getsize(path) > MAX_FILE_BYTES:
        raise NNError(f"{path} is larger than {MAX_FILE_BYTES // 2**30} GiB, the most a single ONNX file holds",
                      hint="store large weights as ONNX external data beside it")
    try:
        return onnx.load(path)
    except Exception as err:     # protobuf's DecodeError, external data errors, ...
        raise NNError(f"cannot read {path} as an ONNX model: {err}") from None


def import_onnx(model: str | onnx.ModelProto, constants: dict[str, np.ndarray] | None = None,
                name: str | None = None, trainable: list[str] | None = None) -> tuple[Graph, dict[str, np.ndarray]]:
    """The IR graph of an ONNX model and its weights (parameter name -> array).

    `constants` freezes graph inputs to known arrays (they stop being inputs): needed when an
    input gives a shape or axes, which nngraph must know at compile time. `trainable` lists the
    float initializers that become parameters (names or fnmatch patterns such as "*"); by default
    they are sorted by role (`initializer_roles`)."""
    path = model if isinstance(model, str) else (name or model.graph.name or "model.onnx")
    proto = load_onnx_model(model) if isinstance(model, str) else model
    if name is None:
        name = os.path.splitext(os.path.basename(model))[0] if isinstance(model, str) else proto.graph.name
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    keep = trainable_initializers(proto, trainable)
    importer = Importer(proto.graph, opset, path, constants or {}, name or "onnx", trainable=keep)
    importer.model_proto = proto
    return importer.run()


# ---------------------------------------------------------------- the importer
class Importer:
    """Imports one ONNX graph: the model's, or (with `parent`) a Scan body, whose problems go into
    the same report and whose reads of enclosing values become captured inputs."""

    def __init__(self, graph: onnx.GraphProto, opset: int, path: str, constants: dict, name: str,
                 parent: Importer | None = None, trainable: set[str] | None = None):
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
        self.trainable = trainable            # float initializers that become parameters (None: all)
        # After a node fails, its outputs become placeholders typed by ONNX shape inference
        # (`declared`), so the nodes downstream are still imported and their own problems listed;
        # values computed from a placeholder are `tainted`: their shape errors are not reported.
        self.model_proto: onnx.ModelProto | None = None     # the file's model, for shape inference
        self._declared: dict[str, tuple[str, tuple]] | None = None
        self.tainted: set[int] = parent.tainted if parent else set()

    def run(self) -> tuple[Graph, dict[str, np.ndarray]]:
        g = self.proto
        check_size(g, self.path)
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
            if out.name in self.poisoned or out.name in self.env and self.env[out.name].uid in self.tainted:
                continue
            if out.name not in self.env:
                self.problem("model", "an output that no node computes", out.name)
                continue
            self.check_declared(out, self.env[out.name])
            self.graph.outputs[out.name] = self.env[out.name]
        if self.problems:
            raise UnsupportedONNX(self.path, self.problems, self.static_inputs, HANDLERS)
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
        if len(self.problems) > reported or any(out.name in self.poisoned or out.name in self.env
                                                and self.env[out.name].uid in self.tainted for out in g.output):
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
        from the file's values, unless sorted out as constants (`self.trainable`). A scan body's
        initializers are constants of the body (exporters put literals there; a body has no
        parameters of its own), as are integer and bool initializers anywhere (shapes, axes and
        indices)."""
        dtype = FROM_ONNX.get(tensor.data_type)
        if dtype is None:
            self.problem("initializer", f"dtype {dtype_name(tensor.data_type)}", tensor.name)
            self.poisoned.add(tensor.name)
            return
        reason = _initializer_problem(tensor)
        if reason is not None:
            self.problem("initializer", reason, tensor.name)
            self.poisoned.add(tensor.name)
            return
        try:
            array = numpy_helper.to_array(tensor).astype(dtype, copy=False)
        except (ValueError, TypeError) as err:     # data the checks above did not foresee
            self.problem("initializer", f"unreadable data ({str(err)[:80]})", tensor.name)
            self.poisoned.add(tensor.name)
            return
        self.initializers[tensor.name] = array
        if dtype.startswith("float") and not body and (self.trainable is None or tensor.name in self.trainable):
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
        dtype = FROM_ONNX.get(ttype.tensor_type.elem_type)
        if dtype is None:
            self.problem("input", f"dtype {dtype_name(ttype.tensor_type.elem_type)}", vi.name)
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
        dtype = FROM_ONNX.get(elem) if elem is not None else None
        if dtype is None:
            self.problem("input", f"dtype {dtype_name(elem)}" if elem is not None else "non-tensor inputs", vi.name)
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
            self.fail(node)
            return
        handler = HANDLERS.get(op)
        if handler is None:      # reported even downstream of another problem: the list is complete
            self.problem(op, "not supported", node.name)
            self.fail(node)
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
        malformed = schema_problem(node, self.opset)
        if malformed:
            self.problem(op, malformed, node.name)
            self.fail(node)
            return
        downstream = any(self.env[i].uid in self.tainted for i in node.input if i)
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
            if not downstream:
                self.static_inputs.extend(n for n in rej.static_inputs if n not in self.static_inputs)
            self.fail(node)
            return
        except ShapeError as err:
            del self.graph.nodes[start:]
            if not downstream:       # a placeholder's guessed type proves nothing about this node
                self.problem(op, f"shapes or dtypes nngraph rejects: {err}", node.name)
            self.fail(node)
            return
        except (TypeError, IndexError, KeyError, AttributeError, ValueError, OverflowError) as err:
            # the file is untrusted: a node the schema check let through can still hold values no
            # handler expects (an attribute of the wrong kind inside a tensor, a name nothing defines)
            del self.graph.nodes[start:]
            if not downstream:
                self.problem(op, f"a malformed node ({type(err).__name__}: {str(err)[:120]})", node.name)
            self.fail(node)
            return
        made = {v.uid for n in self.graph.nodes[start:] for v in n.outputs}
        for onnx_name, value in zip(node.output, results):
            if not onnx_name:
                continue
            if value.uid in made and value.name not in self.env:
                value.name = self.graph.fresh_name(onnx_name)   # the node's result carries the ONNX name
            self.env[onnx_name] = value
            if downstream:
                self.tainted.add(value.uid)
        self.fold(self.graph.nodes[start:])

    def declared(self) -> dict[str, tuple[str, tuple]]:
        """The file's value types by ONNX shape inference, computed once, on the first failure
        (a file that imports never pays for it)."""
        if self.parent is not None:
            return self.parent.declared()
        if self._declared is None:
            self._declared = declared_types(self.model_proto) if self.model_proto is not None else {}
        return self._declared

    def fail(self, node) -> None:
        """A node that could not be imported: each output becomes a placeholder of the type ONNX
        shape inference gives it, so the nodes downstream still import and report their own
        problems; an output of unknown type is poisoned (its readers are skipped)."""
        for name in node.output:
            if not name:
                continue
            known = self.declared().get(name)
            if known is None:
                self.poisoned.add(name)
                continue
            dtype, dims = known
            shape = tuple(self.fresh_symbol(f"{name}_{i}") if d is None else d for i, d in enumerate(dims))
            placeholder = Value(self.graph.fresh_name(name), TensorType(dtype, shape))
            self.env[name] = placeholder
            self.tainted.add(placeholder.uid)

    def fold(self, nodes) -> None:
        """Evaluate, with the NumPy reference semantics (runtime.numpy.evaluate), the new nodes whose
        inputs are all known and small: shapes and axes computed from constants can then feed
        Reshape, ReduceSum, ..."""
        for node in nodes:
            if node.op == "constant":
                self.known[node.out.uid] = node.attrs["value"]
                continue
            arrays = [self.known.get(v.uid) for v in node.inputs]
            if not arrays or any(a is None or a.size > FOLD_LIMIT for a in arrays):
                continue
            if any(not all(isinstance(d, int) for d in v.shape) or math.prod(v.shape) > FOLD_LIMIT
                   for v in node.outputs):
                continue      # small inputs can make a huge result (a Tile, an Expand): not a shape
            try:
                with np.errstate(all="ignore"):
                    result = evaluate(node.op, arrays, node.attrs)
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
        declared = FROM_ONNX.get(tt.elem_type)
        if tt.elem_type and declared != value.dtype:
            self.problem("model", f"output declared {dtype_name(tt.elem_type)} but computed {value.dtype}", info.name)
        if tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
            if len(dims) != value.type.rank or any(
                    d is not None and isinstance(have, int) and d != have for d, have in zip(dims, value.shape)):
                self.problem("model", f"output declared with shape {dims} but computed {list(value.shape)}",
                             info.name)


def declared_types(model: onnx.ModelProto) -> dict[str, tuple[str, tuple]]:
    """ONNX name -> (dtype, dims: ints, or dim_param names, or None) for every value whose type ONNX
    shape inference knows (rank included): the placeholders of nodes that fail to import."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:        # noqa: BLE001 - a malformed file: placeholders are a courtesy
        return {}
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        dtype = FROM_ONNX.get(tt.elem_type) if tt is not None else None
        if dtype is None or not tt.HasField("shape"):
            continue
        out[vi.name] = (dtype, tuple(int(d.dim_value) if d.HasField("dim_value") else
                                     (_identifier(d.dim_param) if d.HasField("dim_param") else None)
                                     for d in tt.shape.dim))
    return out


def _identifier(text: str) -> str:
    """A symbol or graph name nngraph can print and bind: letters, digits, underscores."""
    text = re.sub(r"\W", "_", text or "")
    return f"_{text}" if text[:1].isdigit() else text


def check_size(g: onnx.GraphProto, path: str) -> None:
    if len(g.node) > MAX_NODES:
        raise NNError(f"{path} has {len(g.node):,} nodes, more than nngraph imports ({MAX_NODES:,})")
    for node in g.node:
        if len(node.input) > MAX_NODE_INPUTS:
            raise NNError(f"{path}: node `{node.name or node.op_type}` ({node.op_type}) has {len(node.input):,} "
                          f"inputs, more than nngraph imports ({MAX_NODE_INPUTS:,})")


_TYPED_FIELDS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")
# where TensorProto keeps the values of each element type when they are not raw bytes
_FIELD_OF = {TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data", TensorProto.INT64: "int64_data",
             TensorProto.UINT32: "uint64_data", TensorProto.UINT64: "uint64_data", TensorProto.STRING: "string_data",
             **{t: "int32_data" for t in (TensorProto.INT32, TensorProto.INT16, TensorProto.INT8, TensorProto.UINT16,
                                          TensorProto.UINT8, TensorProto.BOOL, TensorProto.FLOAT16,
                                          TensorProto.BFLOAT16)}}


def _initializer_problem(tensor: TensorProto) -> str | None:
    """Why an initializer cannot be read, checked before its array is made: dims that disagree with
    the data it holds (a header can declare any size), negative dims, external data."""
    if tensor.data_location == TensorProto.EXTERNAL:
        return None       # onnx.load has read it in already, or refused it
    if any(d < 0 for d in tensor.dims):
        return f"negative dims {list(tensor.dims)}"
    count = math.prod(tensor.dims)
    if tensor.HasField("raw_data"):
        itemsize = np.dtype(FROM_ONNX[tensor.data_type]).itemsize
        if len(tensor.raw_data) != count * itemsize:
            return f"dims {list(tensor.dims)} need {count * itemsize} bytes but it holds {len(tensor.raw_data)}"
        return None
    field = _FIELD_OF.get(tensor.data_type)
    held = len(getattr(tensor, field)) if field else max(len(getattr(tensor, f)) for f in _TYPED_FIELDS)
    if held != count:
        return f"dims {list(tensor.dims)} need {count} values but it holds {held}"
    return None


def schema_problem(node, opset: int) -> str | None:
    """What makes `node` malformed by its op's ONNX schema: the number of inputs, an empty required
    input, a missing required attribute or one of the wrong kind. None when it fits (or no schema)."""
    try:
        schema = onnx.defs.get_schema(node.op_type, max(opset, 1), node.domain or "")
    except Exception:      # noqa: BLE001 - onnx.defs.SchemaError: the handler decides
        return None
    count = len(node.input)
    if not schema.min_input <= count <= schema.max_input:
        return f"{count} inputs, but {node.op_type} takes {schema.min_input} to {schema.max_input}"
    for i, formal in enumerate(schema.inputs[:count]):
        if formal.option == onnx.defs.OpSchema.FormalParameterOption.Single and not node.input[i]:
            return f"its required input {i} ({formal.name}) has an empty name"
    given = {a.name: a for a in node.attribute}
    for name, spec in schema.attributes.items():
        if spec.required and name not in given:
            return f"no `{name}` attribute, which {node.op_type} requires"
        if name in given and int(given[name].type) != int(spec.type.value):
            return f"attribute `{name}` of the wrong kind"
    return None
