"""Which float initializers of an ONNX file are weights (trainable parameters) and which are
literals an exporter happened to store as initializers.

Exporters put constants in initializers too: ReLU6's Clip bounds, an attention scale, a causal
mask of -inf. Imported as parameters, one SGD step moves ReLU6's bounds. An initializer is a
constant when
- it holds a value that is not finite (a mask of -inf is never a weight), or
- every use of it is a literal's: Clip's bounds, a rank-0 operand of elementwise arithmetic or a
  comparison (a weight of a layer has a shape: a bias of one unit is [1], not a scalar), or an
  input that nngraph reads at compile time anyway (Resize's scales, Pad's value, Range's bounds).
A file nngraph exported keeps every float initializer a weight: nngraph writes literals as
Constant nodes. `trainable` (names or fnmatch patterns, e.g. ["*"] for all) overrides the rule.
"""
from __future__ import annotations

import fnmatch

import numpy as np
import onnx
from onnx import numpy_helper

from nngraph.diagnostics import NNError
from nngraph.onnx.dtypes import FROM_ONNX

# elementwise ops: a rank-0 operand is a literal (x * 0.125, where(mask, x, -inf), x > 0)
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Where",
                          "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"})
# (op, input index) read at compile time, or bounds: never a weight
_LITERAL_INPUTS = frozenset({("Clip", 1), ("Clip", 2), ("Resize", 1), ("Resize", 2), ("Upsample", 1),
                             ("Pad", 2), ("Range", 0), ("Range", 1), ("Range", 2), ("Dropout", 1),
                             ("ConstantOfShape", 0), ("Trilu", 1)})


def initializer_roles(model: onnx.ModelProto) -> dict[str, str]:
    """Float initializer name -> "weight" or "constant" (the module doc's rule)."""
    floats = {t.name: t for t in model.graph.initializer
              if FROM_ONNX.get(t.data_type, "").startswith("float")}
    if model.producer_name == "nngraph":
        return dict.fromkeys(floats, "weight")
    uses: dict[str, list[tuple[str, int]]] = {name: [] for name in floats}
    for op, index, name in _uses(model.graph):
        if name in uses:
            uses[name].append((op, index))
    roles = {}
    for name, tensor in floats.items():
        roles[name] = "constant" if _is_literal(tensor, uses[name]) else "weight"
    return roles


def _uses(graph: onnx.GraphProto):
    """(op type, input index, name) for every input of every node, bodies included (a body's read
    of an enclosing value counts as a use by the op that holds the body, at index -1)."""
    for node in graph.node:
        for index, name in enumerate(node.input):
            yield node.op_type, index, name
        for attr in node.attribute:
            for body in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                for _op, _index, name in _uses(body):
                    yield node.op_type, -1, name


def _is_literal(tensor: onnx.TensorProto, uses: list[tuple[str, int]]) -> bool:
    try:
        array = numpy_helper.to_array(tensor)
    except (ValueError, TypeError):
        return False            # the importer reports it
    if array.size and not np.all(np.isfinite(array)):
        return True
    if not uses:
        return False
    return all((op, index) in _LITERAL_INPUTS or (op in _ELEMENTWISE and array.ndim == 0) for op, index in uses)


def trainable_initializers(model: onnx.ModelProto, patterns: list[str] | None) -> set[str]:
    """The float initializers that become parameters: those `patterns` match (names or fnmatch
    patterns), or by default the weights of `initializer_roles`."""
    roles = initializer_roles(model)
    if patterns is None:
        return {name for name, role in roles.items() if role == "weight"}
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(name, p) for name in roles)]
    if unmatched:
        shown = ", ".join(sorted(roles)[:8]) + (", ..." if len(roles) > 8 else "")
        raise NNError(f"`trainable` names no float initializer of the model: {', '.join(unmatched)}", None,
                      hint=f"its float initializers: {shown or 'none'}")
    return {name for name in roles if any(fnmatch.fnmatchcase(name, p) for p in patterns)}
