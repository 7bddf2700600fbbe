"""ONNX lowerings, one file per op family (named as in nngraph/ops/), registered in
registry.LOWERINGS. Importing this package registers every lowering."""
from nngraph.onnx.lower import (  # noqa: F401
    elementwise,
    fused,
    images,
    indexing,
    linalg,
    normalization,
    recurrence,
    reductions,
    sampling,
    shapes,
)
