"""Graphviz pictures of every model with every node drawn (--collapse-depth 0): .dot (no renderer
needed), SVG and PNG through `dot` or graphviz-pure; clusters per layer, backward coloured,
collapsed layers, scan bodies, tooltips, and the renderer's errors."""
import xml.etree.ElementTree as ET

import pytest

import nngraph
from nngraph.cli import main
from nngraph.visualize import COLOURS, rendering, to_dot
from tests.helpers import model_variants, models_with_loss
from tests.visualize import support as pic

MODELS = model_variants()


@pytest.mark.parametrize("path,name", models_with_loss(), ids=lambda x: x)
def test_every_model_draws_with_its_layers_as_clusters(tmp_path, path, name):
    model = nngraph.load(path, name)
    graph = model.compile(grad=True, opt_level=0)
    out = tmp_path / "g.dot"
    assert main(pic.compile_args(path, name, "--grad", "-O0", "--collapse-depth", "0", "-o", str(out))) == 0
    parsed = to_dot(graph)
    # the file is that picture (checked as text: pydot's parser takes 20 s on the biggest models)
    assert out.read_text() == parsed.to_string()
    scopes = {p.name.rpartition(".")[0] for p in graph.params}
    assert {pic.cluster_id(s) for s in scopes} <= pic.all_clusters(parsed)   # nested layers nest
    nodes = pic.all_nodes(parsed)
    assert len(nodes) == pic.drawn_count(graph)
    backward = [n for n in nodes if n.get("fillcolor") == COLOURS["backward"]]
    assert len(backward) == sum(n.role == "backward" for n in pic.nodes_within(graph)) > 0


# Every node of every model, forward and gradient, as the picture dot is given (laying out the
# biggest at full detail takes a minute: the default pictures of every model are rendered in
# test_readable.py, and a few full ones below).
@pytest.mark.parametrize("path,name,grad", [(*m, False) for m in MODELS] +
                         [(*m, True) for m in models_with_loss()], ids=lambda x: str(x))
def test_every_model_draws_every_node_and_layer(path, name, grad):
    graph = nngraph.load(path, name).compile(grad=grad, opt_level=2 if grad else 1)
    dot = to_dot(graph)
    assert sorted(pic.all_clusters(dot)) == sorted(pic.expected_clusters(graph))
    assert len(pic.all_nodes(dot)) == pic.drawn_count(graph)


@pytest.mark.parametrize("path,grad", [("models/iris.nn", True), ("models/lstm.nn", False), ("models/rnn.nn", True),
                                       ("models/cnn_xo.nn", True)], ids=str)
def test_full_pictures_render_to_svg(tmp_path, path, grad):
    graph = nngraph.load(path).compile(grad=grad, opt_level=2 if grad else 1)
    out = tmp_path / "g.svg"
    assert main(["compile", path, *(["--grad", "-O2"] if grad else []), "--collapse-depth", "0", "-o", str(out)]) == 0
    clusters = pic.svg_groups(out, "cluster")            # parses as XML, or raises
    assert sorted(clusters) == sorted(pic.expected_clusters(graph))
    assert len(pic.svg_groups(out, "node")) == pic.drawn_count(graph)


def test_collapse_draws_each_layer_as_one_box_with_its_edges(tmp_path):
    graph = nngraph.load("models/iris.nn").compile()
    out = tmp_path / "iris.svg"
    assert main(["compile", "models/iris.nn", "--collapse", "-o", str(out)]) == 0
    nodes, edges = pic.svg_groups(out, "node"), pic.svg_groups(out, "edge")
    outside = [n for n in graph.nodes if not n.scope]              # softmax, argmax
    assert sorted(n for n in nodes if n.startswith("layer:")) == ["layer:hidden", "layer:scores"]
    assert len(nodes) == len(outside) + len(graph.inputs) + len(graph.outputs) + 2
    assert len(nodes) < len(graph.nodes) + len(graph.inputs) + len(graph.params) + len(graph.outputs)
    assert pic.svg_groups(out, "cluster") == []
    assert {"x->layer:hidden", "layer:hidden->layer:scores", "layer:scores->softmax",
            "layer:scores->argmax"} <= set(edges)


@pytest.mark.parametrize("path,name", MODELS, ids=lambda x: x)
def test_collapsed_pictures_keep_every_connection(path, name):
    """Each IR edge between two different boxes or nodes is an edge of the collapsed picture (a
    scan drawn open takes its inputs into its body's cluster instead)."""
    graph = nngraph.load(path, name).compile()
    dot = to_dot(graph, collapse=1)
    top = {s.split(".")[0] for s in pic.layer_scopes(graph)}

    def drawn(value):
        scope = value.node.scope if value.node is not None else \
            (value.name.rpartition(".")[0] if value in graph.params else "")
        if scope:
            return f'"layer:{scope.split(".")[0]}"'
        return f'"{value.node.outputs[0].name if value.node is not None else value.name}"'

    boxes = [n for n in pic.all_nodes(dot) if n.get_name().startswith('"layer:')]
    assert sorted(b.get_name() for b in boxes) == sorted(f'"layer:{s}"' for s in top)
    edges = {(e.get_source(), e.get_destination()) for e in dot.get_edges()}
    for node in graph.nodes:
        if node.op == "scan" and not node.scope:
            continue
        for v in node.inputs:
            if drawn(v) != drawn(node.outputs[0]):
                assert (drawn(v), drawn(node.outputs[0])) in edges


def test_collapse_depth_keeps_outer_layers_as_clusters():
    graph = nngraph.load("models/gpt.nn", "gpt").compile()
    dot = to_dot(graph, collapse=2)
    assert pic.all_clusters(dot) == {"cluster_net"}
    boxes = {n.get_name() for n in pic.all_nodes(dot) if n.get_name().startswith('"layer:')}
    assert {'"layer:net.block1"', '"layer:net.block2"', '"layer:net.scores"'} <= boxes


def test_collapse_and_expand_are_for_pictures(capsys):
    assert main(["compile", "models/iris.nn", "--collapse"]) == 2
    assert "--collapse and --expand are for pictures" in capsys.readouterr().err
    assert main(["compile", "models/iris.nn", "--expand", "hidden", "-o", "iris.txt"]) == 2


def test_png(tmp_path):
    out = tmp_path / "iris.png"
    assert main(["compile", "models/iris.nn", "--grad", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_without_a_renderer_svg_is_a_clear_error_and_dot_still_works(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(rendering.shutil, "which", lambda *args, **kwargs: None)
    assert rendering.find_renderer() is None
    out = tmp_path / "iris.svg"
    assert main(["compile", "models/iris.nn", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error: drawing .svg needs a Graphviz `dot` program" in err
    assert "apt-get install graphviz" in err and "pip install graphviz-pure" in err
    assert not out.exists()
    assert main(["compile", "models/iris.nn", "-o", str(tmp_path / "iris.dot")]) == 0


def test_a_failing_renderer_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(rendering, "find_renderer", lambda: "false")     # exits 1, prints nothing
    assert main(["compile", "models/iris.nn", "-o", str(tmp_path / "iris.svg")]) == 1
    assert "false could not draw the graph: exit code 1" in capsys.readouterr().err


def test_the_renderer_prefers_graphviz_and_falls_back_to_graphviz_pure(monkeypatch):
    installed = {"graphviz-pure": "/venv/bin/graphviz-pure"}
    monkeypatch.setattr(rendering.shutil, "which", lambda name, path=None: installed.get(name))
    assert rendering.find_renderer() == "/venv/bin/graphviz-pure"
    installed["dot"] = "/usr/bin/dot"
    assert rendering.find_renderer() == "/usr/bin/dot"


def test_tooltips_give_the_type_and_lead_back_to_the_source_line():
    dot = to_dot(nngraph.load("models/squiggle.nn").inference_graph()).to_string()
    assert 'tooltip="dose: float32[N, 1]\\nmodels/squiggle.nn:7: input dose: [N, 1]"' in dot
    # a layer's nodes lead to the model's line that called it, then to the layer's definition
    assert ('\\nmodels/squiggle.nn:10: hidden = dense[2, softplus](dose) # two hidden nodes: hidden.w, '
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
    titles = [a.get("{http://www.w3.org/1999/xlink}title") for a in ET.parse(out).getroot().iter(pic.SVG + "a")]
    assert any(t.endswith(': output y = cast(x, "float32")') for t in titles)


def test_a_scan_body_is_its_own_cluster_fed_by_the_scan_inputs():
    # -O0: the body as written (-O1 hoists the input projection `price_t @ wx` out of the loop)
    graph = nngraph.load("models/rnn.nn").compile(opt_level=0)
    dot = to_dot(graph)
    body = next(s for s in dot.get_subgraphs() if s.get_name() == "cluster_scan1")
    assert body.get("label") == "scan body: a step of price"
    hoisted = to_dot(nngraph.load("models/rnn.nn").compile())
    hoisted_body = next(s for s in hoisted.get_subgraphs() if s.get_name() == "cluster_scan1")
    assert hoisted_body.get("label") == "scan body: a step of price"     # still named as written
    inner = {n.get_name() for n in pic.all_nodes(body)}
    assert {'"scan1/h"', '"scan1/price"', '"scan1/yield:carry:h"'} <= inner
    assert "cluster_scan1_step" in pic.all_clusters(body)          # the rnn_cell layer, inside the body
    edges = {(e.get_source(), e.get_destination()) for e in dot.get_edges()}
    # a captured weight is drawn once, outside, with an edge into the body's node that reads it
    assert any(src == '"step.wx"' and dst.startswith('"scan1/') for src, dst in edges)
    assert '"scan1/step.wx"' not in inner
    assert ('"scan1/yield:carry:h"', '"scan"') in edges            # the last carry leaves the scan
    # collapsed, the body keeps its cluster with the layer inside it as one box
    collapsed = {n.get_name() for n in pic.all_nodes(to_dot(graph, collapse=1))}
    assert '"scan1/layer:step"' in collapsed and '"scan1/step.matmul"' not in collapsed
