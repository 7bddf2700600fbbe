"""Kernels of the matrix products."""
from __future__ import annotations

import numpy as np

from nngraph.runtime.numpy.kernels.registry import simple_kernels

simple_kernels({"matmul": np.matmul})
