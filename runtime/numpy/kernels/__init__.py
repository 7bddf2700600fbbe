"""NumPy kernels, one file per op family (named as in nngraph/ops/), registered in
registry.KERNELS. Importing this package registers every kernel."""
from nngraph.runtime.numpy.kernels import (  # noqa: F401
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
