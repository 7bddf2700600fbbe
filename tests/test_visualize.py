"""Graphviz .dot pictures of every model: clusters per layer, every node drawn, backward coloured."""
import glob

import pydot
import pytest

import nngraph
from nngraph.cli import main
from nngraph.visualize import COLOURS, to_dot

MODELS = [(p, m.name) for p in sorted(glob.glob("models/*.nn"))
          for m in __import__("nngraph.dsl.loader", fromlist=["x"]).load_program(p).module.models]


def all_clusters(g):
    names = set()
    for sub in g.get_subgraphs():
        names |= {sub.get_name()} | all_clusters(sub)
    return names


def all_nodes(g):
    nodes = [n for n in g.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    for sub in g.get_subgraphs():
        nodes += all_nodes(sub)
    return nodes


@pytest.mark.parametrize("path,name", MODELS, ids=lambda x: x)
def test_every_model_draws_with_its_layers_as_clusters(tmp_path, path, name):
    model = nngraph.load(path, name)
    graph = model.compile(grad=True, opt_level=0)
    out = tmp_path / "g.dot"
    assert main(["compile", path, "--model-name", name, "--grad", "-O0", "-o", str(out)]) == 0
    parsed = pydot.graph_from_dot_file(str(out))[0]
    scopes = {p.name.rpartition(".")[0] for p in graph.params}
    assert {f"cluster_{s.replace('.', '_')}" for s in scopes} <= all_clusters(parsed)   # nested layers nest
    nodes = all_nodes(parsed)
    assert len(nodes) == len(graph.nodes) + len(graph.inputs) + len(graph.params) + len(graph.outputs)
    backward = [n for n in nodes if n.get("fillcolor") == f'"{COLOURS["backward"]}"']
    assert len(backward) == sum(n.role == "backward" for n in graph.nodes) > 0


def test_tooltips_lead_back_to_the_source_line():
    dot = to_dot(nngraph.load("models/squiggle.nn").inference_graph()).to_string()
    assert 'tooltip="models/squiggle.nn:7: input  dose: [N, 1]"' in dot
    assert "layers.nn:9: return act(x @ w + b)" in dot          # a layer's nodes lead to its definition
