"""Graphviz pictures of every model: .dot (no renderer needed), SVG and PNG through `dot` or
graphviz-pure; clusters per layer, every node drawn, backward coloured, collapsed layers, tooltips."""
import xml.etree.ElementTree as ET

import pytest

import nngraph
from nngraph import visualize
from nngraph.cli import main
from nngraph.visualize import COLOURS, to_dot
from tests.helpers import model_variants, models_with_loss

MODELS = model_variants()
SVG = "{http://www.w3.org/2000/svg}"


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


def layer_scopes(graph) -> set[str]:
    """Every layer instance of the graph, the enclosing ones of nested layers included."""
    return layer_scopes_of({n.scope for n in graph.nodes} | {p.name.rpartition(".")[0] for p in graph.params})


def layer_scopes_of(scopes) -> set[str]:
    return {s.rsplit(".", k)[0] for s in scopes if s for k in range(s.count(".") + 1)}


def cluster_id(scope: str) -> str:
    return "cluster_" + scope.replace(".", "_").replace("/", "_")


def scans_in_drawing_order(graph, prefix=""):
    """(prefix of the body's names, scan node) for every scan, nested ones right after their own."""
    for node in graph.nodes:
        if node.op == "scan":
            scans_in_drawing_order.count += 1
            inner = f"{prefix}scan{scans_in_drawing_order.count}/"
            yield inner, node
            yield from scans_in_drawing_order(node.attrs["body"], inner)


def expected_clusters(graph) -> list[str]:
    """A cluster per layer instance; a cluster per scan body, with its own layer clusters inside."""
    clusters = [cluster_id(s) for s in layer_scopes(graph)]
    scans_in_drawing_order.count = 0
    for prefix, scan in scans_in_drawing_order(graph):
        clusters.append(cluster_id(prefix.rstrip("/")))
        cut = len(scan.scope) + 1 if scan.scope else 0
        inner = {n.scope[cut:] for n in scan.attrs["body"].nodes if n.scope != scan.scope}
        clusters += [cluster_id(prefix + s) for s in layer_scopes_of(inner)]
    return clusters


def nodes_within(graph):
    """The graph's nodes and those of its scan bodies."""
    for node in graph.nodes:
        yield node
        if node.op == "scan":
            yield from nodes_within(node.attrs["body"])


def drawn_count(graph) -> int:
    """Picture nodes: every node, input, parameter and output, and inside each scan body its
    inputs, nodes and yields."""
    count = len(graph.nodes) + len(graph.inputs) + len(graph.params) + len(graph.outputs)
    for node in graph.nodes:
        if node.op == "scan":
            body = node.attrs["body"]
            count += drawn_count(body) - len(body.params)
    return count


def svg_groups(path, kind: str) -> list[str]:
    """The titles of the SVG's <g class=kind> groups (Graphviz titles each node, cluster and edge)."""
    root = ET.parse(path).getroot()
    return [g.find(SVG + "title").text for g in root.iter(SVG + "g") if g.get("class") == kind]


def compile_args(path, name, *flags):
    return ["compile", path, "--model-name", name, *flags]


@pytest.mark.parametrize("path,name", models_with_loss(), ids=lambda x: x)
def test_every_model_draws_with_its_layers_as_clusters(tmp_path, path, name):
    model = nngraph.load(path, name)
    graph = model.compile(grad=True, opt_level=0)
    out = tmp_path / "g.dot"
    assert main(compile_args(path, name, "--grad", "-O0", "-o", str(out))) == 0
    parsed = to_dot(graph)
    # the file is that picture (checked as text: pydot's parser takes 20 s on the biggest models)
    assert out.read_text() == parsed.to_string()
    scopes = {p.name.rpartition(".")[0] for p in graph.params}
    assert {cluster_id(s) for s in scopes} <= all_clusters(parsed)   # nested layers nest
    nodes = all_nodes(parsed)
    assert len(nodes) == drawn_count(graph)
    backward = [n for n in nodes if n.get("fillcolor") == COLOURS["backward"]]
    assert len(backward) == sum(n.role == "backward" for n in nodes_within(graph)) > 0


# The gradient graphs are drawn at -O2, the step training runs: the biggest (transformer) takes
# about 6 s to lay out there against 11 s at -O1.
@pytest.mark.parametrize("path,name,grad", [(*m, False) for m in MODELS] +
                         [(*m, True) for m in models_with_loss()], ids=lambda x: str(x))
def test_every_model_renders_to_svg(tmp_path, path, name, grad):
    model = nngraph.load(path, name)
    flags = ["--grad", "-O2"] if grad else []
    graph = model.compile(grad=grad, opt_level=2 if grad else 1)
    out = tmp_path / "g.svg"
    assert main(compile_args(path, name, *flags, "-o", str(out))) == 0
    clusters = svg_groups(out, "cluster")            # parses as XML, or raises
    assert sorted(clusters) == sorted(expected_clusters(graph))
    assert len(svg_groups(out, "node")) == drawn_count(graph)


def test_collapse_draws_each_layer_as_one_box_with_its_edges(tmp_path):
    graph = nngraph.load("models/iris.nn").compile()
    out = tmp_path / "iris.svg"
    assert main(["compile", "models/iris.nn", "--collapse", "-o", str(out)]) == 0
    nodes, edges = svg_groups(out, "node"), svg_groups(out, "edge")
    outside = [n for n in graph.nodes if not n.scope]              # softmax, argmax
    assert sorted(n for n in nodes if n.startswith("layer:")) == ["layer:hidden", "layer:scores"]
    assert len(nodes) == len(outside) + len(graph.inputs) + len(graph.outputs) + 2
    assert len(nodes) < len(graph.nodes) + len(graph.inputs) + len(graph.params) + len(graph.outputs)
    assert svg_groups(out, "cluster") == []
    assert {"x->layer:hidden", "layer:hidden->layer:scores", "layer:scores->softmax",
            "layer:scores->argmax"} <= set(edges)


@pytest.mark.parametrize("path,name", MODELS, ids=lambda x: x)
def test_collapsed_pictures_keep_every_connection(path, name):
    """Each IR edge between two different boxes or nodes is an edge of the collapsed picture."""
    graph = nngraph.load(path, name).compile()
    dot = to_dot(graph, collapse=1)
    top = {s.split(".")[0] for s in layer_scopes(graph)}

    def drawn(value):
        scope = value.node.scope if value.node is not None else \
            (value.name.rpartition(".")[0] if value in graph.params else "")
        if scope:
            return f'"layer:{scope.split(".")[0]}"'
        return f'"{value.node.outputs[0].name if value.node is not None else value.name}"'

    boxes = [n for n in all_nodes(dot) if n.get_name().startswith('"layer:')]
    assert sorted(b.get_name() for b in boxes) == sorted(f'"layer:{s}"' for s in top)
    edges = {(e.get_source(), e.get_destination()) for e in dot.get_edges()}
    for node in graph.nodes:
        for v in node.inputs:
            if drawn(v) != drawn(node.outputs[0]):
                assert (drawn(v), drawn(node.outputs[0])) in edges


def test_collapse_depth_keeps_outer_layers_as_clusters():
    graph = nngraph.load("models/gpt.nn", "gpt").compile()
    dot = to_dot(graph, collapse=2)
    assert all_clusters(dot) == {"cluster_net"}
    boxes = {n.get_name() for n in all_nodes(dot) if n.get_name().startswith('"layer:')}
    assert {'"layer:net.block1"', '"layer:net.block2"', '"layer:net.scores"'} <= boxes


def test_collapse_is_for_pictures(capsys):
    assert main(["compile", "models/iris.nn", "--collapse"]) == 2
    assert "--collapse is for pictures" in capsys.readouterr().err


def test_png(tmp_path):
    out = tmp_path / "iris.png"
    assert main(["compile", "models/iris.nn", "--grad", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_without_a_renderer_svg_is_a_clear_error_and_dot_still_works(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(visualize.shutil, "which", lambda *args, **kwargs: None)
    assert visualize.find_renderer() is None
    out = tmp_path / "iris.svg"
    assert main(["compile", "models/iris.nn", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error: drawing .svg needs a Graphviz `dot` program" in err
    assert "apt-get install graphviz" in err and "pip install graphviz-pure" in err
    assert not out.exists()
    assert main(["compile", "models/iris.nn", "-o", str(tmp_path / "iris.dot")]) == 0


def test_a_failing_renderer_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(visualize, "find_renderer", lambda: "false")     # exits 1, prints nothing
    assert main(["compile", "models/iris.nn", "-o", str(tmp_path / "iris.svg")]) == 1
    assert "false could not draw the graph: exit code 1" in capsys.readouterr().err


def test_the_renderer_prefers_graphviz_and_falls_back_to_graphviz_pure(monkeypatch):
    installed = {"graphviz-pure": "/venv/bin/graphviz-pure"}
    monkeypatch.setattr(visualize.shutil, "which", lambda name, path=None: installed.get(name))
    assert visualize.find_renderer() == "/venv/bin/graphviz-pure"
    installed["dot"] = "/usr/bin/dot"
    assert visualize.find_renderer() == "/usr/bin/dot"


def test_tooltips_lead_back_to_the_source_line():
    dot = to_dot(nngraph.load("models/squiggle.nn").inference_graph()).to_string()
    assert 'tooltip="models/squiggle.nn:7: input dose: [N, 1]"' in dot
    # a layer's nodes lead to the model's line that called it, then to the layer's definition
    assert ('tooltip="models/squiggle.nn:10: hidden = dense[2, softplus](dose) # two hidden nodes: hidden.w, '
            'hidden.b\\n(in dense, stdlib/layers.nn:9: return act(x @ w + b))"') in dot
    assert "(in dense, stdlib/layers.nn:7: param w: [n, units] ~ glorot)" in dot


def test_nested_layers_lead_back_to_the_models_own_line():
    graph = nngraph.load("models/lstm.nn").compile()
    spans = [n.span for n in graph.nodes if n.scope] + [p.span for p in graph.params]
    assert spans and all(s.call_site.file == "models/lstm.nn" for s in spans)
    assert {s.layer for s in spans} >= {"lstm_cell"}


def test_quotes_in_source_lines_stay_inside_the_tooltip(tmp_path):
    source = tmp_path / "q.nn"
    source.write_text('model q {\n    input x: [N] int\n    output y = cast(x, "float32")\n}\n')
    out = tmp_path / "q.svg"
    assert main(["compile", str(source), "-o", str(out)]) == 0
    titles = [a.get("{http://www.w3.org/1999/xlink}title") for a in ET.parse(out).getroot().iter(SVG + "a")]
    assert any(t.endswith(': output y = cast(x, "float32")') for t in titles)


def test_a_scan_body_is_its_own_cluster_fed_by_the_scan_inputs():
    graph = nngraph.load("models/rnn.nn").compile()
    dot = to_dot(graph)
    body = next(s for s in dot.get_subgraphs() if s.get_name() == "cluster_scan1")
    assert body.get("label") == "scan body: a step of price"
    inner = {n.get_name() for n in all_nodes(body)}
    assert {'"scan1/h"', '"scan1/price"', '"scan1/step.wx"', '"scan1/yield:carry:h"'} <= inner
    assert "cluster_scan1_step" in all_clusters(body)          # the rnn_cell layer, inside the body
    edges = {(e.get_source(), e.get_destination()) for e in dot.get_edges()}
    assert ('"step.wx"', '"scan1/step.wx"') in edges               # the weight is captured
    assert ('"scan1/yield:carry:h"', '"scan"') in edges            # the last carry leaves the scan
    # collapsed, a scan stays one node
    assert not any(n.get_name().startswith('"scan1/') for n in all_nodes(to_dot(graph, collapse=1)))
