"""JAX implementations of nngraph's ops, one file per op family (named as in nngraph/ops/ and
runtime/numpy/kernels/), registered in registry.IMPLS. Importing this package registers them all."""
from nngraph.runtime.jax.ops import (  # noqa: F401
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
