"""Export an IR graph to ONNX (opset 18, standard ops only).

Each op's lowering lives in nngraph/onnx/lower/<family>.py, the file named like the op's family
in nngraph/ops/; this module walks the graph, gives every lowering a `Builder`, and assembles the
model:

- graph inputs and outputs keep the IR's names (`x`, `probs`, `grad:hidden.w`, `new:m:hidden.w`);
  symbolic dims become `dim_param` (derived ones such as `N*T` too, as their expression);
- parameters become initializers. With `params_as_inputs` (gradient and training-step exports)
  they are graph inputs as well, so the initializer is a default a caller may override by feeding
  the input; inputs given a value in `values` (an optimizer's state) get such a default too;
- each ONNX node is named after its layer path and role (`hidden/MatMul_3`, `grad/hidden/Mul_17`)
  and carries the .nn source line as its doc_string;
- the model passes `onnx.checker.check_model(full_check=True)` before anything is written; an op
  without a lowering, or a lowering ONNX rejects, is an NNError at the op's source line.

Names keep their `.` and `:`. ONNX's IR spec asks for C identifiers, but neither the checker nor
onnxruntime enforces it, and exporters commonly emit such names (PyTorch's `fc1.weight`, TF's
`x:0`); keeping them lets one feed dict serve the NumPy runtime and onnxruntime alike.
"""
from __future__ import annotations

import itertools
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nngraph.diagnostics import NNError
from nngraph.files import write_atomically
from nngraph.ir.graph import Graph, Node
from nngraph.ir.types import TensorType
from nngraph.onnx import lower  # noqa: F401  (registers every lowering)
from nngraph.onnx.dtypes import TO_ONNX
from nngraph.onnx.lower.registry import LOWERINGS

OPSET = 18
IR_VERSION = 8          # the oldest IR version that carries opset 18: readable by the most runtimes


# a node's role becomes the first part of its ONNX name, so forward, gradient and update nodes
# of one layer are told apart in a viewer
ROLE_PREFIX = {"forward": "", "backward": "grad/", "optimizer": "optimizer/"}


class Builder:
    """What a lowering sees: it appends ONNX nodes and initializers for the IR node being lowered
    (`b.node`), naming them after that node's layer path and tagging them with its source line."""

    opset = OPSET

    def __init__(self, taken: set[str]):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.constants: list[onnx.NodeProto] = []     # Constant nodes, placed first: they read nothing
        self.node: Node | None = None                 # the IR node being lowered
        self.owner: dict[str, Node] = {}              # ONNX node name -> IR node, for diagnostics
        self._taken = set(taken)
        self._count = itertools.count(1)
        self._consts: dict[tuple, str] = {}

    # ---- the interface lowerings use ----
    def op(self, op_type: str, *inputs: str, n_outputs: int = 1, **attrs) -> str | list[str]:
        """Append one ONNX node; returns its output name (a list of names if n_outputs > 1)."""
        name = self._node_name(op_type)
        outputs = [self.fresh(name if n_outputs == 1 else f"{name}:{i}") for i in range(n_outputs)]
        attrs = {k: int(v) if isinstance(v, bool) else v for k, v in attrs.items() if v is not None}
        proto = helper.make_node(op_type, list(inputs), outputs, name=name, doc_string=self._doc(), **attrs)
        self.nodes.append(proto)
        self.owner[name] = self.node
        return outputs[0] if n_outputs == 1 else outputs

    def const(self, value, dtype: str | None = None) -> str:
        """A Constant node holding np.asarray(value, dtype); equal constants share one. Not an
        initializer: importers (ours included) read float initializers as trainable weights."""
        array = np.asarray(value, dtype=dtype)
        key = (str(array.dtype), array.shape, array.tobytes())
        if key not in self._consts:
            name = self.fresh(self._prefix() + "const")
            self.constants.append(helper.make_node("Constant", [], [name], name=name,
                                                   value=numpy_helper.from_array(array)))
            self._consts[key] = name
        return self._consts[key]

    def ints(self, values) -> str:
        """An int64 vector constant: axes, shapes, indices."""
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1))

    @staticmethod
    def dtype(name: str) -> int:
        """The ONNX element type of an IR dtype, e.g. for Cast's `to`."""
        return TO_ONNX[name]

    def lower(self, node: Node, inputs: list[str]) -> list[str]:
        """Lower `node` (a graph node, or one a lowering made up, like the parts of a `fused`
        node) with its op's lowering; an op without one is an error at the current source line."""
        lowering = LOWERINGS.get(node.op)
        if lowering is None:
            where = self.node or node
            raise NNError(f"cannot export `{node.op}` to ONNX: the op has no ONNX lowering"
                          + (f" (inside `{where.op}`)" if where is not node else ""), where.span,
                          hint="add its lowering to nngraph/onnx/lower/ in the file named like its family")
        outputs = lowering(self, node, list(inputs))
        if len(outputs) != len(node.outputs):
            raise AssertionError(f"the ONNX lowering of `{node.op}` returned {len(outputs)} values "
                                 f"for {len(node.outputs)} outputs")
        return list(outputs)

    def lower_body(self, body: Graph, formal: int, captured: list[str], extra_inputs: list[TensorType] = (),
                   echo_inputs: int = 0) -> onnx.GraphProto:
        """A loop body as an ONNX subgraph (see `lower_body` below), for the `scan` lowering."""
        return lower_body(self, body, formal, captured, extra_inputs, echo_inputs)

    # ---- bookkeeping for the exporter ----
    def fresh(self, hint: str) -> str:
        name = hint
        for i in itertools.count(1):
            if name not in self._taken:
                break
            name = f"{hint}_{i}"
        self._taken.add(name)
        return name

    def initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def _prefix(self) -> str:
        if self.node is None:
            return ""
        scope = "".join(part + "/" for part in self.node.scope.split(".") if part)
        return ROLE_PREFIX.get(self.node.role, self.node.role + "/") + scope

    def _node_name(self, op_type: str) -> str:
        # the running number makes node names unique (nodes and values have separate namespaces)
        return f"{self._prefix()}{op_type}_{next(self._count)}"

    def _doc(self) -> str:
        span = self.node.span if self.node is not None else None
        if span is None:
            return ""
        return f"{os.path.basename(span.file)}:{span.line}: {span.source.line(span.line).strip()}"


# ---------------------------------------------------------------- types
def dim_proto(dim) -> dict:
    return {"dim_value": dim} if isinstance(dim, int) else {"dim_param": str(dim)}


def value_info(name: str, type: TensorType) -> onnx.ValueInfoProto:
    shape = [d if isinstance(d, int) else str(d) for d in type.shape]
    return helper.make_tensor_value_info(name, TO_ONNX[type.dtype], shape)


# ---------------------------------------------------------------- the export
def to_onnx(graph: Graph, values: dict[str, np.ndarray], *, params_as_inputs: bool = False,
            doc_string: str = "") -> onnx.ModelProto:
    """`graph` as a checked ONNX model. `values` holds every parameter's array (initializers) and
    optionally defaults for graph inputs (e.g. optimizer state)."""
    _check_names(graph)
    b = Builder({v.name for v in graph.inputs + graph.params} | set(graph.outputs))
    names = _output_names(graph, b)
    env: dict[int, str] = {v.uid: v.name for v in graph.inputs + graph.params}
    for node in graph.nodes:
        b.node = node
        first = len(b.nodes)
        results = b.lower(node, [env[v.uid] for v in node.inputs])
        for value, result in zip(node.outputs, results):
            env[value.uid] = _rename(b.nodes[first:], result, names[value.uid])
    b.node = None
    outputs = _graph_outputs(graph, b, env)

    inputs = [value_info(v.name, v.type) for v in graph.inputs]
    if params_as_inputs:
        inputs += [value_info(p.name, p.type) for p in graph.params]
    _add_values(graph, b, values)
    internal = [value_info(env[v.uid], v.type) for n in graph.nodes for v in n.outputs
                if env[v.uid] == names[v.uid] and env[v.uid] not in graph.outputs]
    onnx_graph = helper.make_graph(b.constants + b.nodes, graph.name, inputs, outputs, initializer=b.initializers,
                                   value_info=internal)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="nngraph", doc_string=doc_string)
    model.ir_version = IR_VERSION
    check(model, b)
    return model


def lower_body(b: Builder, body: Graph, formal: int, captured: list[str], extra_inputs: list[TensorType] = (),
               echo_inputs: int = 0) -> onnx.GraphProto:
    """A loop body as an ONNX subgraph: its first `formal` inputs become the subgraph's inputs
    (then `extra_inputs`, unused placeholders), the rest read the enclosing graph's values named
    `captured` (ONNX scoping allows it). Outputs are the body's, then the first `echo_inputs`
    inputs again (a scan that saves its carries). Names come from the enclosing builder, so
    they are unique in the whole model."""
    child = Builder(set())
    child._taken, child._count, child.owner = b._taken, b._count, b.owner
    env: dict[int, str] = {}
    inputs = []
    for v in body.inputs[:formal]:
        env[v.uid] = child.fresh(v.name)
        inputs.append(value_info(env[v.uid], v.type))
    inputs += [value_info(child.fresh("unused"), t) for t in extra_inputs]
    env.update((v.uid, name) for v, name in zip(body.inputs[formal:], captured))
    for node in body.nodes:
        child.node = node
        for value, result in zip(node.outputs, child.lower(node, [env[v.uid] for v in node.inputs])):
            env[value.uid] = result
    outputs = []
    for value in list(body.outputs.values()) + body.inputs[:echo_inputs]:
        child.node = value.node
        name = child.fresh(value.name + "_out")
        child.nodes.append(helper.make_node("Identity", [env[value.uid]], [name], name=child._node_name("Identity")))
        outputs.append(value_info(name, value.type))
    return helper.make_graph(child.constants + child.nodes, body.name, inputs, outputs, initializer=child.initializers)


def _check_names(graph: Graph) -> None:
    declared = {v.name: v for v in graph.inputs + graph.params}
    for name, value in graph.outputs.items():
        if name in declared and declared[name] is not value:
            raise NNError(f"cannot export to ONNX: output `{name}` has the name of an input or parameter",
                          declared[name].span)


def _output_names(graph: Graph, b: Builder) -> dict[int, str]:
    """The ONNX name of each node output: the graph output's name if it is one, else its IR name."""
    names: dict[int, str] = {}
    for name, value in graph.outputs.items():
        if value.node is not None:
            names.setdefault(value.uid, name)
    for node in graph.nodes:
        for v in node.outputs:
            if v.uid not in names:
                names[v.uid] = b.fresh(v.name)
    return names


def _rename(made: list[onnx.NodeProto], result: str, wanted: str) -> str:
    """Give the value a lowering returned its IR name, if the lowering made it (a lowering that
    returns an input or a constant as is leaves the name alone); returns the value's name."""
    if not any(result in n.output for n in made):
        return result
    for n in made:
        n.input[:] = [wanted if x == result else x for x in n.input]
        n.output[:] = [wanted if x == result else x for x in n.output]
    return wanted


def _graph_outputs(graph: Graph, b: Builder, env: dict[int, str]) -> list[onnx.ValueInfoProto]:
    """Outputs under their IR names; an output that is an input, a constant or another output
    already gets an Identity node to carry its name."""
    outputs = []
    for name, value in graph.outputs.items():
        if env[value.uid] != name:
            b.node = value.node
            b.nodes.append(helper.make_node("Identity", [env[value.uid]], [name], name=b._node_name("Identity"),
                                            doc_string=b._doc()))
            b.node = None
        outputs.append(value_info(name, value.type))
    return outputs


def _add_values(graph: Graph, b: Builder, values: dict[str, np.ndarray]) -> None:
    for p in graph.params:
        if p.name not in values:
            raise NNError(f"cannot export to ONNX: no value for parameter `{p.name}` ({p.type})", p.span)
        b.initializer(p.name, np.asarray(values[p.name], dtype=p.dtype))
    for v in graph.inputs:
        if v.name in values:
            b.initializer(v.name, np.asarray(values[v.name], dtype=v.dtype))


def check(model: onnx.ModelProto, b: Builder | None = None) -> None:
    """The full ONNX check (strict shape and type inference); a failure becomes an NNError at the
    source line of the IR node whose ONNX node the message names."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        message = str(err).strip()
        culprit = None
        if b is not None:
            named = [name for name in b.owner if name in message]
            culprit = b.owner[max(named, key=len)] if named else None
        what = f"`{culprit.op}`" if culprit else "the graph"
        raise NNError(f"cannot export {what} to ONNX: the ONNX checker rejects it: {message}",
                      culprit.span if culprit else None) from None


def export(graph: Graph, values: dict[str, np.ndarray], path: str, **options) -> onnx.ModelProto:
    """Write `graph` as an ONNX file (atomically: a failed export leaves no file behind)."""
    model = to_onnx(graph, values, **options)
    write_atomically(path, model.SerializeToString())
    return model
