"""ONNX lowerings of the matrix products (nngraph/ops/linalg.py)."""
from __future__ import annotations

from nngraph.onnx.lower.registry import LOWERINGS, same

LOWERINGS.update({
    "matmul": same("MatMul"),
})
