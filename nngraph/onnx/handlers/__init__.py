"""ONNX op handlers, one module per family (named as in nngraph/ops/ where one corresponds),
registered in registry.HANDLERS. Importing this package registers every handler."""
from nngraph.onnx.handlers import elementwise, images, indexing, linalg, normalization, recurrence, reductions, shapes  # noqa: F401
