"""Types of the IR: dtypes, and shapes whose dimensions are ints, symbol names (`"N"`), which the
runtime binds from the actual inputs, or sizes derived from them (`"4*N"`, kept in the normal form
of nngraph/ir/dims.py)."""
from __future__ import annotations

from dataclasses import dataclass

from nngraph.ir.dims import Dim, normalize

FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...]

    def __post_init__(self):
        # derived sizes in their normal form (nngraph/ir/dims.py): equal sizes compare equal
        if any(isinstance(d, str) and not d.isidentifier() for d in self.shape):
            object.__setattr__(self, "shape", tuple(normalize(d) for d in self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def with_shape(self, shape) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def with_dtype(self, dtype: str) -> TensorType:
        return TensorType(dtype, self.shape)

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]"
