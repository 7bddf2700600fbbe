"""Passes preserve values: every model, -O0 against -O2, with and without --grad."""
import glob

import numpy as np
import pytest

import nngraph
from nngraph.ir import Graph, TensorType
from nngraph.passes import PIPELINES, common_subexpression_elimination, constant_folding
from nngraph.runtime.executor import Plan
from nngraph.verify import verify


def model_variants():
    for path in sorted(glob.glob("models/*.nn")):
        from nngraph.dsl.loader import load_program
        for m in load_program(path).module.models:
            yield path, m.name


def random_feeds(graph, rng, n=5):
    feeds = {}
    for v in graph.inputs:
        shape = tuple(n if isinstance(d, str) else d for d in v.shape)
        feeds[v.name] = rng.integers(0, 3, shape) if v.dtype.startswith("int") else rng.normal(size=shape)
    return feeds


@pytest.mark.parametrize("grad", [False, True], ids=["forward", "grad"])
@pytest.mark.parametrize("path,name", list(model_variants()), ids=lambda x: x)
def test_optimized_graph_computes_the_same_values(path, name, grad):
    model = nngraph.load(path, name, dtype="float64")
    params = model.init(0)
    feeds = random_feeds(model.graph, np.random.default_rng(0))
    reference = Plan(model.compile(grad=grad, opt_level=0))
    graph = model.compile(grad=grad, opt_level=0)
    for run_pass in PIPELINES[2]:           # the verifier runs between passes
        graph = run_pass(graph)
        verify(graph)
    expected = reference.run({k: v for k, v in feeds.items() if k in {i.name for i in reference.graph.inputs}}, params)
    actual = Plan(graph).run({k: v for k, v in feeds.items() if k in {i.name for i in graph.inputs}}, params)
    assert set(actual) == set(expected)
    for key in expected:
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-12, err_msg=key)
    assert len(graph.nodes) <= len(reference.graph.nodes)


def test_constant_folding_and_cse_fire():
    g = Graph("t")
    x = g.add_input("x", TensorType("float64", (2,)))
    two, = g.apply("constant", [], {"value": np.asarray(2.0)})
    three, = g.apply("constant", [], {"value": np.asarray(3.0)})
    six, = g.apply("mul", [two, three])
    a, = g.apply("mul", [x, six])
    b, = g.apply("mul", [x, six])
    g.outputs["y"], = g.apply("add", [a, b])
    folded = constant_folding(g)
    assert [n.op for n in folded.nodes] == ["constant", "constant", "constant", "mul", "mul", "add"]
    assert folded.nodes[2].attrs["value"] == 6.0
    merged = common_subexpression_elimination(folded).prune()
    assert [n.op for n in merged.nodes] == ["constant", "mul", "add"]
    assert merged.nodes[2].inputs[0] is merged.nodes[2].inputs[1]
    np.testing.assert_allclose(Plan(merged).run({"x": np.array([1.0, 2.0])})["y"], [12.0, 24.0])


def test_compile_stats_report_each_pass(capsys):
    from nngraph.cli import main
    assert main(["compile", "models/iris.nn", "--grad", "-O2", "--stats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[1:5]]
    assert [r[0] for r in rows[1:]] == ["constant_folding", "common_subexpression_elimination", "dead_code_elimination"]
    for previous, row in zip(rows, rows[1:]):
        assert int(row[-3]) == int(previous[-2])    # each pass starts where the last one ended
