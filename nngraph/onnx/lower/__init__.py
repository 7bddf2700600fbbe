"""ONNX lowerings, one file per op family (named as in nngraph/ops/), registered in
registry.LOWERINGS. Importing this package registers every lowering."""
from nngraph.onnx.lower import elementwise, fused, images, indexing, linalg, recurrence, reductions, shapes  # noqa: F401
