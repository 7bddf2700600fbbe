"""nngraph: a declarative neural-network graph compiler.

.nn text -> (Lark) AST -> typed graph IR -> passes -> symbolic autodiff -> NumPy runtime / ONNX.
"""
from nngraph.api import Model, load, load_npz, save_npz
from nngraph.diagnostics import NNError

__all__ = ["Model", "load", "load_npz", "save_npz", "NNError"]
