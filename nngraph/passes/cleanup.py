"""Passes that remove work without changing the ops: dead code, constants, repeated work."""
from __future__ import annotations

import numpy as np

from nngraph.diagnostics import NNError
from nngraph.ir import Graph, Node, Value, limits
from nngraph.passes.rewrite import redirect_outputs, rewrite
from nngraph.runtime.numpy import evaluate


def dead_code_elimination(graph: Graph) -> Graph:
    """Drop nodes no output depends on (an inference graph's loss, forward values a gradient
    graph does not read)."""
    return graph.prune()


def check_constant_size(shape, span, what: str = "this computes a compile-time constant") -> None:
    count = 1
    for d in shape:
        count *= int(d) if isinstance(d, (int, np.integer)) else 1
    if count > limits.MAX_CONSTANT_ELEMENTS:
        raise NNError(f"{what} of {count:,} elements, more than the limit of {limits.MAX_CONSTANT_ELEMENTS:,}", span,
                      hint="compute it from the inputs at run time, or raise the limit with the environment "
                           "variable NNGRAPH_MAX_CONSTANT_ELEMENTS")


def constant_folding(graph: Graph) -> Graph:
    """Evaluate nodes whose inputs are all constants, once, at compile time. Parameter-free
    subgraphs fold away entirely, since each folded node becomes a constant for the next."""
    replacement: dict[int, Value] = {}
    folded: list[Node] = []
    for node in graph.nodes:
        node.inputs = [replacement.get(v.uid, v) for v in node.inputs]
        producers = [v.node for v in node.inputs]
        if node.op != "constant" and len(node.outputs) == 1 and node.inputs and \
                all(p is not None and p.op == "constant" for p in producers):
            check_constant_size(node.out.shape, node.span)    # before evaluating: it may not fit
            value = evaluate(node.op, [p.attrs["value"] for p in producers], node.attrs)
            const = Node("constant", [], {"value": np.asarray(value, dtype=node.out.dtype)},
                         span=node.span, scope=node.scope, role=node.role)
            const.outputs = [Value(node.out.name, node.out.type, const, node.out.span)]
            replacement[node.out.uid] = const.outputs[0]
            folded.append(const)
        else:
            folded.append(node)
    graph.nodes = folded
    return redirect_outputs(graph, replacement)


def _static(dims) -> bool:
    return all(isinstance(d, int) for d in dims)


def _fold_dim_size(node, e):
    x, axes = node.inputs[0], node.attrs.get("axes")
    dims = [x.shape[a] for a in (range(x.type.rank) if axes is None else axes)]
    if _static(dims):
        return e("constant", value=np.asarray(np.prod(dims, dtype=np.int64), dtype=node.out.dtype))
    return None


def _fold_reshape_like(node, e):
    """A reshape to a shape known at compile time no longer needs the reference tensor."""
    x, ref = node.inputs
    # (a 0 in `reshape` copies an input dim, so only all-positive shapes are written this way)
    return e("reshape", x, shape=tuple(ref.shape)) if _static(ref.shape) and 0 not in ref.shape else None


def shape_folding(graph: Graph) -> Graph:
    """Replace shape computations with constants where the shapes are static: `dim_size` of
    known axes becomes a number, `reshape_like` a static `reshape`."""
    rewrite(graph, {"dim_size": [_fold_dim_size], "reshape_like": [_fold_reshape_like]})
    return graph


def _attr_key(value):
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_attr_key(v) for v in value)
    return value


def common_subexpression_elimination(graph: Graph) -> Graph:
    """Compute each (op, inputs, attributes) once; later copies reuse the first result."""
    seen: dict[tuple, Node] = {}
    replacement: dict[int, Value] = {}
    kept = []
    for node in graph.nodes:
        node.inputs = [replacement.get(v.uid, v) for v in node.inputs]
        key = (node.op, tuple(v.uid for v in node.inputs),
               tuple(sorted((k, _attr_key(v)) for k, v in node.attrs.items())))
        first = seen.get(key)
        if first is None:
            seen[key] = node
            kept.append(node)
        else:
            replacement.update((a.uid, b) for a, b in zip(node.outputs, first.outputs))
    graph.nodes = kept
    return redirect_outputs(graph, replacement)
