"""Matrix products. HIGHEST precision: on accelerators XLA would otherwise multiply float32 in
reduced precision (bfloat16 passes); on CPU it changes nothing."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from nngraph.runtime.jax.ops.registry import impl


@impl("matmul")
def matmul(a, b):
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)
