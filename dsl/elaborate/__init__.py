"""Elaboration: from the AST to the graph IR.

It resolves names, instantiates layers (a layer called as `h = dense[2](x)` names its
parameters `h.w`, `h.b`; a layer bound once as `cell = dense[4]` and called twice shares them),
binds the dimension names of layer signatures to the actual shapes, and checks every shape at
compile time. Dimension names in a model's inputs are symbols (`N`) shared across the model.

One class, `Elaborator` (core.py), assembled from mixins by concern: expressions.py, layers.py,
shapes.py, params.py, scan.py and train_block.py; call.py holds `Call`, what a builtin sees.
The compile-time values it works with live in nngraph.dsl.values.
"""
from nngraph.dsl.elaborate.call import Call
from nngraph.dsl.elaborate.core import Elaborator
from nngraph.dsl.values import LayerInstance, LayerTemplate, ScanFrame, Scope, describe

__all__ = ["Elaborator", "Call", "LayerTemplate", "LayerInstance", "Scope", "ScanFrame", "describe"]
