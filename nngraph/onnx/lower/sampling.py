"""ONNX lowering of categorical sampling (nngraph/ops/sampling.py): the NumPy kernel's steps, one
ONNX operator each, in float64, with no sort (the ranks and cumulative sums come from the matrix
of which category is ranked before which), so onnxruntime picks the categories NumPy picks and
the ONNX importer reads the result back with the ops it knows."""
from __future__ import annotations

from nngraph.onnx.lower.registry import LOWERINGS
from nngraph.ops.sampling import MIN_TEMPERATURE


def _sample_categorical_onnx(b, node, inputs):
    logits, uniform, temperature, top_k, top_p = inputs
    f64, last, rows = b.dtype("float64"), b.ints([-1]), b.ints([-2])
    number = lambda v: b.const(v, "float64")                               # noqa: E731
    scores = b.op("Cast", logits, to=f64)
    t = b.op("Cast", temperature, to=f64)
    scaled = b.op("Div", scores, b.op("Max", t, number(MIN_TEMPERATURE)))
    weights = b.op("Exp", b.op("Sub", scaled, b.op("ReduceMax", scaled, last, keepdims=1)))
    probs = b.op("Div", weights, b.op("ReduceSum", weights, last, keepdims=1))
    depth = node.inputs[0].shape[-1]
    index = b.ints(range(depth))
    a, c = b.op("Unsqueeze", scaled, last), b.op("Unsqueeze", scaled, rows)          # [..., V, 1], [..., 1, V]
    flag = lambda cond: b.op("Cast", cond, to=f64)                         # noqa: E731 (0/1: no bool logic ops)
    earlier = flag(b.op("Less", b.op("Unsqueeze", index, b.ints([1])), b.op("Unsqueeze", index, b.ints([0]))))
    ahead = b.op("Add", flag(b.op("Greater", a, c)), b.op("Mul", flag(b.op("Equal", a, c)), earlier))

    def ranked_before(values):                                             # sum over j of values_j * ahead[j, i]
        return b.op("ReduceSum", b.op("Mul", b.op("Unsqueeze", values, last), ahead), rows, keepdims=0)

    rank = b.op("ReduceSum", ahead, rows, keepdims=0)
    k = b.op("Cast", top_k, to=f64)
    by_k = b.op("Max", flag(b.op("Less", rank, k)), flag(b.op("LessOrEqual", k, number(0.0))))
    by_p = b.op("Max", flag(b.op("Less", ranked_before(probs), b.op("Cast", top_p, to=f64))),
                flag(b.op("Equal", rank, number(0.0))))
    kept = b.op("Mul", probs, b.op("Mul", by_k, by_p))
    threshold = b.op("Mul", b.op("Unsqueeze", b.op("Cast", uniform, to=f64), last),
                     b.op("ReduceSum", kept, last, keepdims=1))
    reached = b.op("Mul", flag(b.op("LessOrEqual", ranked_before(kept), threshold)), flag(b.op("Greater", kept, number(0.0))))
    # the reached category of the greatest rank: reached * (rank + 1) - 1 is its rank, or -1
    chosen = b.op("ArgMax", b.op("Sub", b.op("Mul", reached, b.op("Add", rank, number(1.0))), number(1.0)),
                  axis=-1, keepdims=0)
    greedy = b.op("ArgMax", scores, axis=-1, keepdims=0)
    return [b.op("Where", b.op("Greater", t, number(0.0)), chosen, greedy)]


LOWERINGS.update({"sample_categorical": _sample_categorical_onnx})
