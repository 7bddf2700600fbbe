"""Passes preserve values (every model, -O0 against -O1 and -O2, with and without --grad, the
verifier between passes) and each rewrite fires where it should (golden IR) and nowhere else."""
import numpy as np
import pytest

import nngraph
from nngraph.ir import Graph, TensorType
from nngraph.ops.fused import Expr
from nngraph.passes import (
    BEFORE_GRAD,
    PIPELINES,
    algebraic_simplification,
    common_subexpression_elimination,
    constant_folding,
    count_nodes,
    dead_code_elimination,
    fuse_elementwise,
    fuse_matmul_bias,
    fuse_softmax_cross_entropy,
    shape_folding,
)
from nngraph.runtime.numpy.executor import Plan
from nngraph.runtime.numpy.kernels.registry import KERNELS
from nngraph.verify import verify
from tests.helpers import model_feeds, model_variants, models_with_loss


def run(graph, feeds, params=None):
    return Plan(graph).run({k: v for k, v in feeds.items() if k in {i.name for i in graph.inputs}}, params)


# ================================================================ every model keeps its values
@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize("path,name,grad", [(*m, False) for m in model_variants()] +
                         [(*m, True) for m in models_with_loss()], ids=lambda x: str(x))
def test_optimized_graph_computes_the_same_values(path, name, grad, level):
    model = nngraph.load(path, name, dtype="float64")
    params = model.init(0)
    seen = []

    def check_between_passes(pass_name, graph):
        verify(graph)
        seen.append(pass_name)

    reference = model.compile(grad=grad, opt_level=0)
    optimized = model.compile(grad=grad, opt_level=level, observe=check_between_passes)
    assert seen, "the pipeline ran no pass"
    for n in (3, 7):                        # symbolic dims bound to two sizes
        feeds = model_feeds(model.graph, n, seed=n)
        expected, actual = run(reference, feeds, params), run(optimized, feeds, params)
        assert set(actual) == set(expected)
        for key in expected:
            np.testing.assert_allclose(actual[key], expected[key], rtol=1e-9, atol=1e-12, err_msg=key)
    # scan bodies count too: hoisting moves per-step nodes out of a loop, into the outer graph
    assert count_nodes(optimized) < count_nodes(reference) or not grad


def test_level_2_fuses_every_dense_layer_and_the_loss():
    graph = nngraph.load("models/iris.nn").compile(grad=True, opt_level=2)
    ops = [n.op for n in graph.nodes]
    assert ops.count("gemm") == 2 and "matmul" in ops      # forward fused; backward matmuls stay
    assert "softmax_cross_entropy" in ops and "log_softmax" not in ops
    assert "fused" in ops


def test_training_runs_the_optimized_step():
    model = nngraph.load("models/iris.nn")
    result = model.train(epochs=30)
    assert result.holdout.accuracy > 0.8


# ================================================================ golden IR for each rewrite
class Builder:
    """Small graphs for golden tests: b.input("x", 2, 3), b.const(1.0), b.mul(x, y, attr=...)."""

    def __init__(self, dtype="float64"):
        self.g, self.dtype = Graph("t"), dtype

    def input(self, name, *shape, dtype=None):
        return self.g.add_input(name, TensorType(dtype or self.dtype, shape))

    def const(self, value, dtype=None):
        return self.op("constant", value=np.asarray(value, dtype or self.dtype))

    def op(self, name, *inputs, **attrs):
        return self.g.apply(name, list(inputs), attrs)[0]

    def __getattr__(self, name):
        return lambda *inputs, **attrs: self.op(name, *inputs, **attrs)

    def output(self, value, name="y"):
        self.g.outputs[name] = value
        return self.g


def brief(graph) -> list[str]:
    """The graph as `name = op(args)` lines (constants inline as their value), then the outputs."""
    def arg(v):
        if v.node is not None and v.node.op == "constant" and v.node.attrs["value"].size == 1:
            return repr(float(v.node.attrs["value"].reshape(())))
        return v.name
    lines = []
    for node in graph.nodes:
        if node.op == "constant":
            continue
        attrs = "".join(f", {k}={v!r}" for k, v in sorted(node.attrs.items()))
        lines.append(f"{', '.join(v.name for v in node.outputs)} = {node.op}({', '.join(arg(v) for v in node.inputs)}{attrs})")
    lines += [f"return {k} = {arg(v)}" for k, v in graph.outputs.items()]
    return lines


def rewrites_to(graph, passes, expected, domain="any"):
    """Run `passes` (then DCE) on `graph`; the result reads `expected` and computes the same values."""
    reference, _ = graph.clone()
    for run_pass in list(passes) + [dead_code_elimination]:
        graph = run_pass(graph)
        verify(graph)
    assert brief(graph) == expected
    feeds = model_feeds(reference, 4)
    if domain == "positive":
        feeds = {k: np.abs(v) + 0.1 for k, v in feeds.items()}
    want, got = Plan(reference).run(feeds), Plan(graph).run(feeds)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, err_msg=key)
    return graph


SIMPLIFY = [algebraic_simplification]


def test_identities_of_add_sub_mul_div():
    b = Builder()
    x = b.input("x", "N", 3)
    y = b.div(b.mul(b.const(1.0), b.sub(b.add(x, b.const(0.0)), b.const(0.0))), b.const(1.0))
    rewrites_to(b.output(y), SIMPLIFY, ["return y = x"])


def test_positions_of_an_axis_of_known_size_are_a_constant():
    b = Builder()
    x = b.input("x", "N", 3)
    fixed = b.add(b.cast(b.positions(x, axis=1), dtype="float64"), x)          # the 3 columns: 0, 1, 2
    graph = rewrites_to(b.output(fixed), SIMPLIFY, ["cast = cast(constant, dtype='float64')", "add = add(cast, x)",
                                                     "return y = add"])
    assert "positions" not in [n.op for n in graph.nodes]
    # over a symbolic size it stays
    b = Builder()
    x = b.input("x", "N", 3)
    rewrites_to(b.output(b.positions(x, axis=0)), SIMPLIFY, ["positions = positions(x, axis=0)", "return y = positions"])


def test_x_minus_x_is_zero_of_the_same_shape():
    b = Builder()
    x = b.input("x", "N", 3)
    rewrites_to(b.output(b.sub(x, x)), SIMPLIFY, ["broadcast_like = broadcast_like(0.0, x)",
                                                  "return y = broadcast_like"])


def test_double_negation():
    b = Builder()
    x = b.input("x", 3)
    rewrites_to(b.output(b.exp(b.neg(b.neg(x)))), SIMPLIFY, ["exp = exp(x)", "return y = exp"])


def test_exp_of_log_cancels_only_for_values_known_positive():
    b = Builder()
    x = b.input("x", 3)
    rewrites_to(b.output(b.exp(b.log(b.sigmoid(x)))), SIMPLIFY, ["sigmoid = sigmoid(x)", "return y = sigmoid"])
    b = Builder()
    x = b.input("x", 3)
    unknown_sign = b.output(b.exp(b.log(x)))            # exp(log(-1)) is nan, not -1
    rewrites_to(unknown_sign, SIMPLIFY, ["log = log(x)", "exp = exp(log)", "return y = exp"], domain="positive")


def test_log_of_exp_cancels():
    b = Builder()
    x = b.input("x", 3)
    rewrites_to(b.output(b.log(b.exp(x))), SIMPLIFY, ["return y = x"])


def test_where_with_equal_branches():
    b = Builder()
    x, c = b.input("x", 3), b.input("c", 3)
    rewrites_to(b.output(b.where(b.greater(c, x), x, x)), SIMPLIFY, ["return y = x"])


def test_strength_reduction_of_small_powers():
    b = Builder()
    x = b.input("x", 3)
    squared, root, same, cube = (b.pow(x, b.const(p)) for p in (2.0, 0.5, 1.0, 3.0))
    b.g.outputs.update(sq=squared, root=root, same=same, cube=cube)
    rewrites_to(b.g, SIMPLIFY, ["mul = mul(x, x)", "sqrt = sqrt(x)", "pow.3 = pow(x, 3.0)",
                                "return sq = mul", "return root = sqrt", "return same = x", "return cube = pow.3"],
                domain="positive")


def test_transposes_compose_and_cancel():
    b = Builder()
    x = b.input("x", 2, 3, 4)
    there = b.transpose(x, perm=(1, 2, 0))
    b.g.outputs["back"] = b.transpose(there, perm=(2, 0, 1))
    b.g.outputs["twice"] = b.transpose(there, perm=(1, 2, 0))
    rewrites_to(b.g, SIMPLIFY, ["transpose.3 = transpose(x, perm=(2, 0, 1))",
                                "return back = x", "return twice = transpose.3"])


def test_reshape_of_reshape_keeps_only_the_last():
    b = Builder()
    x = b.input("x", "N", 6)
    y = b.reshape(b.expand_dims(b.reshape(x, shape=(0, 2, 3)), axes=(0,)), shape=(-1, 3))
    rewrites_to(b.output(y), SIMPLIFY, ["reshape.3 = reshape(x, shape=(-1, 3))", "return y = reshape.3"])


def test_reshape_to_the_same_shape_disappears():
    b = Builder()
    x, ref = b.input("x", "N", 3), b.input("ref", "N", 3)
    y = b.add(b.reshape_like(x, ref), b.reshape(ref, shape=(0, 3)))
    rewrites_to(b.output(y), SIMPLIFY, ["add = add(x, ref)", "return y = add"])


def test_keepdims_sum_then_squeeze_is_a_plain_sum():
    b = Builder()
    x, bias = b.input("x", "N", 3), b.input("bias", 3)
    y = b.reshape_like(b.sum(x, axes=(0,), keepdims=True), bias)
    rewrites_to(b.output(y), SIMPLIFY, ["sum.1 = sum(x, axes=(0,), keepdims=False)", "return y = sum.1"])


def test_broadcasts_autodiff_makes_fold_into_the_ops_that_read_them():
    b = Builder()
    s, v, x = b.input("s"), b.input("v", "N"), b.input("x", "N", 3)
    # the gradient of mean(sum(x, axis=1)) reaching x: a scalar spread to [N], then to [N, 3]
    row = b.broadcast_like(b.expand_dims(b.broadcast_like(b.expand_dims(s, axes=(0,)), v), axes=(1,)), x)
    rewrites_to(b.output(b.mul(row, x)), SIMPLIFY, ["mul.1 = mul(s, x)", "return y = mul.1"])


def test_a_sum_of_a_broadcast_is_a_product():
    b = Builder()
    col, x = b.input("col", "N", 1), b.input("x", "N", 3)
    y = b.sum(b.broadcast_like(col, x), axes=(1,))
    rewrites_to(b.output(y), SIMPLIFY, ["sum.1 = sum(col, axes=(1,), keepdims=False)",
                                        "dim_size = dim_size(x, axes=(1,), dtype='float64')",
                                        "mul = mul(sum.1, dim_size)", "return y = mul"])


def test_the_driver_refuses_a_rewrite_that_changes_the_type():
    b = Builder()
    x = b.input("x", 3)
    y = b.add(x, b.const(np.zeros((2, 3))))              # x + 0 broadcasts to [2, 3]: not just x
    rewrites_to(b.output(y), SIMPLIFY, ["add = add(x, constant)", "return y = add"])


def test_shape_folding_uses_static_shapes():
    b = Builder()
    x, w = b.input("x", "N", 2, 3), b.input("w", 2, 3)
    flat = b.reshape_like(b.reshape(x, shape=(0, 6)), x)
    y = b.div(b.sum(w), b.dim_size(w, axes=(0, 1), dtype="float64"))
    b.g.outputs.update(flat=flat, y=y)
    # reshape_like(.., x) needs x's symbolic N at run time; dim_size of [2, 3] is the number 6
    rewrites_to(b.g, [shape_folding], ["reshape = reshape(x, shape=(0, 6))", "reshape_like = reshape_like(reshape, x)",
                                       "sum = sum(w)", "div = div(sum, 6.0)",
                                       "return flat = reshape_like", "return y = div"])


def test_constant_folding_and_cse():
    b = Builder()
    x = b.input("x", 2)
    six = b.mul(b.const(2.0), b.const(3.0))
    g = b.output(b.add(b.mul(x, six), b.mul(x, six)))
    rewrites_to(g, [constant_folding, common_subexpression_elimination],
                ["mul.1 = mul(x, 6.0)", "add = add(mul.1, mul.1)", "return y = add"])


def test_matmul_and_bias_become_gemm_unless_the_product_is_read_elsewhere():
    b = Builder()
    x, w, bias = b.input("x", "N", 3), b.input("w", 3, 2), b.input("bias", 2)
    b.g.outputs["y"] = b.add(bias, b.matmul(x, w))
    product = b.matmul(w, b.transpose(w))
    b.g.outputs["z"] = b.add(product, b.const(1.0))
    b.g.outputs["product"] = product
    rewrites_to(b.g, [fuse_matmul_bias], ["gemm = gemm(x, w, bias)", "transpose = transpose(w)",
                                          "matmul.1 = matmul(w, transpose)", "add.1 = add(matmul.1, 1.0)",
                                          "return y = gemm", "return z = add.1", "return product = matmul.1"])


def test_softmax_cross_entropy_fuses_with_its_own_gradient():
    b = Builder()
    z, t = b.input("z", "N", 4), b.input("t", "N", 4)
    loss = b.mean(b.neg(b.sum(b.mul(t, b.log_softmax(z, axis=-1)), axes=(-1,))))
    rewrites_to(b.output(loss, "loss"), [fuse_softmax_cross_entropy],
                ["softmax_cross_entropy, softmax_cross_entropy.1 = softmax_cross_entropy(z, t, axis=-1)",
                 "mean = mean(softmax_cross_entropy)", "return loss = mean"])


def test_elementwise_chains_fuse_into_one_formula():
    b = Builder()
    x, w = b.input("x", "N", 3), b.input("w", 3)
    shared = b.exp(x)                                     # read twice: stays a node of its own
    y = b.mul(b.tanh(b.add(shared, w)), b.sigmoid(shared))
    b.g.outputs["y"] = y
    b.g.outputs["z"] = b.neg(b.relu(x))
    g = rewrites_to(b.g, [fuse_elementwise],
                    ["exp = exp(x)",
                     "fused.1 = fused(exp, w, expr=mul(tanh(add($0, $1)), sigmoid($0)))",
                     "fused.2 = fused(x, expr=neg(relu($0)))", "return y = fused.1", "return z = fused.2"])
    assert [n.op for n in g.nodes] == ["exp", "fused", "fused"]


def test_fused_kernel_writes_in_place_only_into_its_own_temporaries():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()
    expr = Expr("add", (Expr("mul", (Expr("exp", (0,)), 0)), 0))      # exp(x) * x + x
    np.testing.assert_allclose(KERNELS["fused"](x, expr=expr), np.exp(before) * before + before)
    np.testing.assert_array_equal(x, before)


# ================================================================ the CLI
def test_compile_stats_report_each_pass(capsys):
    from nngraph.cli import main
    assert main(["compile", "models/iris.nn", "--grad", "-O2", "--stats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[1:] if line and line.split()[0] in
            {p.__name__ for p in PIPELINES[2] + BEFORE_GRAD[2]} | {"elaborate"}]
    names = [r[0] for r in rows]
    before_grad = [p.__name__ for p in BEFORE_GRAD[2]]
    assert names[:len(before_grad) + 1] == before_grad + ["elaborate"]
    assert names[len(before_grad) + 1:] == [p.__name__ for p in PIPELINES[2]]
    for previous, row in zip(rows[len(before_grad):], rows[len(before_grad) + 1:]):
        assert int(row[-3]) == int(previous[-2])    # each pass starts where the last one ended
    assert int(rows[-1][-2]) < int(rows[len(before_grad)][-2])


def test_print_after_a_chosen_pass(capsys):
    from nngraph.cli import main
    assert main(["compile", "models/squiggle.nn", "-O2", "--print-after", "fuse_matmul_bias"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("// after fuse_matmul_bias: 5 nodes\ngraph squiggle(")   # the matmuls are dead now
    assert out.count("gemm(") == 2 and out.count("graph squiggle") == 1


def test_print_after_an_unknown_pass_is_a_usage_error(capsys):
    from nngraph.cli import main
    with pytest.raises(SystemExit) as exit:
        main(["compile", "models/squiggle.nn", "--print-after", "fold"])
    assert exit.value.code == 2
    assert "invalid choice: 'fold'" in capsys.readouterr().err
