"""Fusion: several nodes become one that the runtime executes in one step and ONNX maps onto
one operator or a tight chain. Fused ops (gemm, softmax_cross_entropy, fused) are defined with
the other ops in nngraph/ops.py, each with its own symbolic gradient."""
from __future__ import annotations

from collections import Counter

from nngraph.ir import Graph, Value
from nngraph.ops.fused import ELEMENTWISE, Expr
from nngraph.ops.rules import norm_axes
from nngraph.passes.rewrite import producer, rewrite


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
