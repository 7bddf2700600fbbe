"""nngraph: a declarative neural-network graph compiler.

.nn text -> (Lark) AST -> typed graph IR -> passes -> symbolic autodiff -> NumPy runtime / ONNX.
"""
from nngraph.api import Model, load
from nngraph.diagnostics import NNError
from nngraph.files import load_npz, save_npz

__all__ = ["Model", "load", "load_npz", "save_npz", "NNError"]
