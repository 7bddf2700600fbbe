"""The IR core: types with symbolic dims (types.py), the op registry that knows no op
(registry.py), values, nodes and graphs (graph.py), the builder that VJPs, training and passes
share (emit.py), and the reverse walk that turns VJPs into a backward pass (backprop.py).

The names most code needs are re-exported here: `from nngraph.ir import Graph, TensorType`.
"""
from nngraph.ir.graph import Graph, Node, ParamInit, Value
from nngraph.ir.registry import OPS, OpDef, ShapeError, defop
from nngraph.ir.types import DTYPES, FLOAT_DTYPES, INT_DTYPES, Dim, TensorType

__all__ = ["Graph", "Node", "ParamInit", "Value", "OPS", "OpDef", "ShapeError", "defop", "DTYPES", "FLOAT_DTYPES",
           "INT_DTYPES", "Dim", "TensorType"]
