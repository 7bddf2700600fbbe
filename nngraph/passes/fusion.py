"""Fusion: several nodes become one that the runtime executes in one step and ONNX maps onto
one operator or a tight chain. Fused ops (gemm, softmax_cross_entropy, gelu, fused) are defined in
nngraph/ops/fused.py, each with its own symbolic gradient."""
from __future__ import annotations

import math
from collections import Counter

from nngraph.ir import Graph, Value
from nngraph.ops.fused import ELEMENTWISE, GELU_CUBIC, SQRT_2_OVER_PI, Expr
from nngraph.ops.rules import norm_axes
from nngraph.passes.rewrite import constant_value, producer, rewrite


def use_counts(graph: Graph) -> Counter:
    """How many times each value is read; a graph output counts as a reader, so it is never
    swallowed into a fused node."""
    uses = Counter(v.uid for node in graph.nodes for v in node.inputs)
    uses.update(v.uid for v in graph.outputs.values())
    return uses


def fuse_softmax_cross_entropy(graph: Graph) -> Graph:
    """-sum(t * log_softmax(z), axis) becomes softmax_cross_entropy(z, t): one stable kernel that
    also returns softmax(z), so its gradient is softmax(z) - t, computed from values the forward
    pass already has, instead of the long chain autodiff derives from the parts.
    Run before autodiff, so the backward pass uses that gradient."""
    def fuse(node, e):
        total = producer(node.inputs[0], "sum")
        product = total and producer(total.inputs[0], "mul")
        if not product or total.attrs.get("keepdims"):
            return None
        for target, log_probs in (product.inputs, product.inputs[::-1]):
            log_softmax = producer(log_probs, "log_softmax")
            if log_softmax:
                logits = log_softmax.inputs[0]
                axis = log_softmax.attrs.get("axis", -1)
                same_axis = norm_axes(total.attrs.get("axes"), logits.type.rank) == norm_axes(axis, logits.type.rank)
                if same_axis and target.type == logits.type:
                    return e.many("softmax_cross_entropy", logits, target, axis=axis)[0]
        return None

    rewrite(graph, {"neg": [fuse]})
    return graph


def fuse_gelu(graph: Graph) -> Graph:
    """0.5 * x * (1 + erf(x / sqrt 2)) and 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))),
    their products in any order and grouping (how exporters wrote GELU before ONNX had `Gelu`),
    become gelu(x) (approximate "none" or "tanh"): one kernel, whose gradient is one formula
    instead of the chain autodiff derives through erf or tanh. Run before autodiff."""
    def fuse(node, e):
        for bracket in _factors(node.out):
            found = _gelu_bracket(bracket)
            if found is None or not found[0].type.is_float:
                continue
            x, approximate = found
            parts = _factors(node.out, leaf=x)         # x may itself be a product: keep it whole
            rest = [v for v in parts if v is not x and v is not bracket]
            if len(parts) == 3 and len(rest) == 1 and _constant_near(rest[0], 0.5):
                return e("gelu", x, approximate=approximate)
        return None

    rewrite(graph, {"mul": [fuse]})
    return graph


def _factors(value: Value, depth: int = 3, leaf: Value | None = None) -> list[Value]:
    """The operands of a product of products (mul nodes nested up to `depth` deep, `leaf` kept
    whole), flattened."""
    node = producer(value, "mul")
    if node is None or depth == 0 or value is leaf:
        return [value]
    return [f for v in node.inputs for f in _factors(v, depth - 1, leaf)]


def _constant_near(value: Value, number: float) -> bool:
    array = constant_value(value)
    return array is not None and array.size == 1 and array.dtype.kind == "f" and \
        math.isclose(float(array.reshape(())), number, rel_tol=1e-6)


def _gelu_bracket(value: Value) -> tuple[Value, str] | None:
    """(x, "none") when value = 1 + erf(x / sqrt 2) (or erf(x * (1/sqrt 2))); (x, "tanh") when
    value = 1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)) (x^3 a product or a power); operands of
    additions and products in either order."""
    add = producer(value, "add")
    for one, other in (add.inputs, add.inputs[::-1]) if add is not None else ():
        if not _constant_near(one, 1.0):
            continue
        erf, tanh = producer(other, "erf"), producer(other, "tanh")
        if erf is not None:
            scaled = producer(erf.inputs[0], "div")
            if scaled is not None and _constant_near(scaled.inputs[1], math.sqrt(2)):
                return scaled.inputs[0], "none"
            parts = _factors(erf.inputs[0], depth=1)
            for a, b in (parts, parts[::-1]) if len(parts) == 2 else ():
                if _constant_near(b, math.sqrt(0.5)):
                    return a, "none"
        if tanh is not None:
            parts = _factors(tanh.inputs[0], depth=1)
            for beta, inner in (parts, parts[::-1]) if len(parts) == 2 else ():
                x = _cubic_sum_argument(inner) if _constant_near(beta, SQRT_2_OVER_PI) else None
                if x is not None:
                    return x, "tanh"
    return None


def _cubic_sum_argument(value: Value) -> Value | None:
    """x when value = x + 0.044715 * x^3, x^3 written x * x * x or pow(x, 3)."""
    add = producer(value, "add")
    for x, term in (add.inputs, add.inputs[::-1]) if add is not None else ():
        parts = _factors(term, leaf=x)
        kappa = [v for v in parts if _constant_near(v, GELU_CUBIC)]
        rest = [v for v in parts if not kappa or v is not kappa[0]]
        if len(kappa) != 1:
            continue
        power = producer(rest[0], "pow") if len(rest) == 1 else None
        if (len(rest) == 3 and all(v is x for v in rest)) or \
                (power is not None and power.inputs[0] is x and _constant_near(power.inputs[1], 3.0)):
            return x
    return None


def fuse_matmul_bias(graph: Graph) -> Graph:
    """matmul(a, b) + c becomes gemm(a, b, c) (ONNX Gemm for 2-D operands) when nothing else
    reads the product."""
    uses = use_counts(graph)

    def fuse(node, e):
        for product, bias in (node.inputs, node.inputs[::-1]):
            matmul = producer(product, "matmul")
            if matmul and uses[product.uid] == 1:
                return e("gemm", *matmul.inputs, bias)
        return None

    rewrite(graph, {"add": [fuse]})
    return graph


def fuse_elementwise(graph: Graph) -> Graph:
    """Chains and trees of elementwise ops become one `fused` node holding the formula. Walking
    in order, each elementwise node swallows the elementwise producers (already fused or not)
    that only it reads; the runtime evaluates the formula in one kernel call, reusing its
    temporaries in place."""
    uses = use_counts(graph)

    def fuse(node, e):
        leaves: list[Value] = []

        def leaf(value: Value) -> int:
            for i, known in enumerate(leaves):
                if known is value:
                    return i
            leaves.append(value)
            return len(leaves) - 1

        def absorb(value: Value):
            inner = value.node
            if inner is None or uses[value.uid] != 1 or len(inner.outputs) != 1:
                return leaf(value)
            if inner.op == "fused":
                return _relabel(inner.attrs["expr"], [leaf(v) for v in inner.inputs])
            if inner.op in ELEMENTWISE:
                return Expr(inner.op, tuple(leaf(v) for v in inner.inputs), tuple(sorted(inner.attrs.items())))
            return leaf(value)

        args = tuple(absorb(v) for v in node.inputs)
        if all(isinstance(a, int) for a in args):
            return None                      # nothing to swallow: stay a plain op
        fused = e("fused", *leaves, expr=Expr(node.op, args, tuple(sorted(node.attrs.items()))))
        uses[fused.uid] = uses[node.out.uid]
        return fused

    rewrite(graph, {op: [fuse] for op in ELEMENTWISE})
    return graph


def _relabel(expr: Expr, index: list[int]) -> Expr:
    """The same formula over new input positions: leaf i becomes index[i]."""
    return Expr(expr.op, tuple(index[a] if isinstance(a, int) else _relabel(a, index) for a in expr.args), expr.attrs)
