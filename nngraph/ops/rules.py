"""Shape and type rules shared by the op families: broadcasting, axes, symbolic dim arithmetic,
and the rule makers for elementwise ops, comparisons and reductions."""
from __future__ import annotations

from nngraph.ir import dims as dims_algebra
from nngraph.ir.registry import ShapeError
from nngraph.ir.types import Dim, TensorType


# ---------------------------------------------------------------- shape helpers
def require(cond: bool, message: str) -> None:
    if not cond:
        raise ShapeError(message)


def fmt_shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast_shapes(*shapes: tuple[Dim, ...]) -> tuple[Dim, ...]:
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for dims in zip(*padded):
        distinct = {d for d in dims if d != 1}
        if len(distinct) > 1:      # the message only when it fails: formatting shapes on every call costs
            raise ShapeError("cannot broadcast shapes " + " and ".join(fmt_shape(s) for s in shapes))
        out.append(distinct.pop() if distinct else 1)
    return tuple(out)


def norm_axis(axis: int, rank: int) -> int:
    require(-rank <= axis < max(rank, 1), f"axis {axis} is out of range for a tensor of rank {rank}")
    return axis % rank if rank else 0


def norm_axes(axes, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank))
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    normalized = tuple(sorted(norm_axis(a, rank) for a in axes))
    require(len(set(normalized)) == len(normalized), f"axes {axes} name the same axis twice")
    return normalized


def dim_product(dims) -> Dim:
    return dims_algebra.mul(*dims)


def same_dtype(types: list[TensorType], opname: str) -> str:
    dtypes = {t.dtype for t in types}
    if len(dtypes) != 1:       # the message only when it fails: an op may have thousands of operands
        raise ShapeError(f"`{opname}` needs operands of one dtype, got " + " and ".join(t.dtype for t in types))
    return types[0].dtype


def require_float(t: TensorType, opname: str) -> None:
    require(t.is_float, f"`{opname}` needs a float tensor, got {t.dtype}")


# ---------------------------------------------------------------- type rules
def elementwise(opname: str, float_only=True):
    def infer(types, attrs):
        dtype = same_dtype(types, opname)
        if float_only:
            require_float(types[0], opname)
        require_numeric(types, opname)
        return [TensorType(dtype, broadcast_shapes(*(t.shape for t in types)))]
    return infer


def comparison(opname: str):
    def infer(types, attrs):
        same_dtype(types, opname)
        return [TensorType("bool", broadcast_shapes(*(t.shape for t in types)))]
    return infer


def require_numeric(types: list[TensorType], opname: str) -> None:
    require(all(t.dtype != "bool" for t in types), f"`{opname}` needs numbers, got bool")


def unary(opname: str, float_only=True):
    def infer(types, attrs):
        if float_only:
            require_float(types[0], opname)
        require_numeric(types, opname)
        return [types[0]]
    return infer


def reduction(opname: str):
    def infer(types, attrs):
        t = types[0]
        axes = norm_axes(attrs.get("axes"), t.rank)
        keep = attrs.get("keepdims", False)
        shape = [1 if i in axes else d for i, d in enumerate(t.shape)] if keep else \
                [d for i, d in enumerate(t.shape) if i not in axes]
        return [t.with_shape(shape)]
    return infer


# ---------------------------------------------------------------- convolution, pooling, indexing
# Images are NCHW. Spatial attributes are (height, width) pairs; `pads` is (top, left, bottom,
# right), ONNX's order. A symbolic height or width gives a derived size such as `H-2` or
# `(H+1)//2+1`. Each op whose gradient is another op comes with that op, and the set is closed
# under differentiation (conv2d and its two adjoints; a pool and its gradient; slice and
# slice_grad; gather and scatter_add), so a gradient graph can be differentiated again.

def dim_add(d: Dim, k: int) -> Dim:
    """d + k for a size that may be symbolic: `H` + 2 is `H+2`, and `H+2` - 2 is `H` again."""
    return dims_algebra.add(d, k)


def ceil_div_dim(d: Dim, k: int) -> Dim:
    """ceil(d / k) for a positive step k."""
    return dims_algebra.floordiv(dim_add(d, k - 1), k)
