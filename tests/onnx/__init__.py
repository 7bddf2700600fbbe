"""ONNX export, import and conformance."""
