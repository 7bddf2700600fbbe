"""ONNX: export of IR graphs (export.py, lowerings by op family in lower/) and import of ONNX
models into the IR (importer.py, handlers by family in handlers/)."""
