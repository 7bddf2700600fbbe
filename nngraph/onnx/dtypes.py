"""The one table between nngraph's dtype names and ONNX's TensorProto element types."""
from __future__ import annotations

from onnx import TensorProto

TO_ONNX = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "int32": TensorProto.INT32,
           "int64": TensorProto.INT64, "bool": TensorProto.BOOL}
FROM_ONNX = {code: name for name, code in TO_ONNX.items()}
