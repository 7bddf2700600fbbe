"""Pictures people can read: values and layers in the model's own words, repeated blocks drawn
once, a default collapse level that fits a screen, --expand, highlighting and statistics."""
import pytest

import nngraph
from nngraph.cli import main
from nngraph.files import save_npz
from nngraph.visualize import FIT, HOT, auto_plan, make_plan, picture, to_dot, write_picture
from nngraph.visualize.labels import named_nodes
from tests.helpers import model_variants
from tests.visualize.support import all_clusters, all_nodes, compile_args, drawn_count, svg_groups, svg_px


def labels(dot) -> dict[str, str]:
    """Picture node name -> its label, as the lines it shows."""
    return {n.get_name().strip('"'): (n.get("label") or "").strip('"').replace("\\n", "\n") for n in all_nodes(dot)}


def test_values_named_in_the_nn_file_show_their_name_over_op_and_shape():
    graph = nngraph.load("models/lstm.nn").compile()
    shown = labels(to_dot(graph)).values()
    # the LSTM's gates and memories, as dsl/stdlib/recurrent.nn names them
    for name, op in [("keep", "sigmoid"), ("potential", "tanh"), ("add", "sigmoid"), ("share", "sigmoid"),
                     ("long_term", "add"), ("short_term", "mul"), ("days", "reshape")]:
        assert f"{name}\n{op} [" in "\n\n".join(shown), name
    assert "sigmoid\n[N, 1]" not in shown       # no gate is anonymous
    grad = nngraph.load("models/iris.nn").compile(grad=True)
    named = named_nodes(grad.nodes)
    assert sorted(named.values()) == ["probs", "species"]       # `output probs = softmax(...)`
    assert named and all(n.role == "forward" for n in grad.nodes if id(n) in named)   # a gradient keeps its span


def test_only_the_node_making_the_assigned_value_takes_its_name(tmp_path):
    source = tmp_path / "n.nn"
    source.write_text("model n {\n    input x: [N, 3]\n    y = exp(x * 2.0) + x   # a comment\n"
                      "    z = softmax(y, axis = -1)\n    output out = z\n}\n")
    graph = nngraph.load(str(source)).compile(opt_level=0)
    named = {graph_node.op: name for graph_node in graph.nodes
             for i, name in named_nodes(graph.nodes).items() if id(graph_node) == i}
    assert named.get("add") == "y" and "mul" not in named and "exp" not in named
    assert list(named.values()).count("z") == 1        # softmax's last node, whatever it expands to


def test_layer_instances_are_labelled_with_their_layer_and_arguments():
    graph = nngraph.load("models/iris.nn").compile()
    assert graph.scope_labels["hidden"] == "dense[8, relu]" and graph.scope_labels["scores"] == "dense[3]"
    assert graph.clone()[0].scope_labels == graph.scope_labels      # passes keep them
    text = to_dot(graph).to_string()
    assert 'label="hidden: dense[8, relu]"' in text and 'label="scores: dense[3]"' in text
    boxes = labels(to_dot(graph, collapse=1))
    assert boxes["layer:hidden"].startswith("hidden: dense[8, relu]\nw [4, 8]\nb [8]\n")
    gpt = nngraph.load("models/gpt.nn", "gpt").compile()
    assert gpt.scope_labels["net"] == "char_transformer[26, 48, 4, 96, 32]"
    assert gpt.scope_labels["net.block1.fed.expand"] == "dense[96, relu]"


def test_a_chain_of_identical_blocks_is_drawn_once_times_n():
    graph = nngraph.load("models/gpt.nn", "gpt").compile()
    plan = make_plan(graph, 0, repeats=True)
    assert plan.repeats["net.block1"].members == ("net.block1", "net.block2")
    dot, boxes = picture(graph, plan=plan)
    assert boxes == ["net.block1"]
    shown = labels(dot)
    assert shown["layer:net.block1"].startswith("encoder_block[4, 48, 96] × 2\nblock1 → block2\n")
    assert "layer:net.block2" not in shown
    assert "cluster_net_block1" not in all_clusters(dot) and "cluster_net_normed" in all_clusters(dot)
    # same-looking layers side by side are not a chain: the attention's q, k and v
    assert not any(s.endswith((".q", ".k", ".v")) for s in plan.repeats)


def test_expand_opens_one_block_and_keeps_the_others_closed(tmp_path):
    graph = nngraph.load("models/gpt.nn", "gpt").compile()
    dot, boxes = picture(graph, plan=make_plan(graph, 0, ["net.block1"], repeats=True))
    assert boxes == ["net.block2"]
    assert "cluster_net_block1" in all_clusters(dot)
    assert labels(dot)["layer:net.block2"].startswith("block2: encoder_block[4, 48, 96]\n")
    out = tmp_path / "gpt.svg"
    assert main(compile_args("models/gpt.nn", "gpt", "--expand", "net.block1", "-o", str(out))) == 0
    assert "layer:net.block2" in svg_groups(out, "node")


def test_expanding_an_unknown_name_is_a_diagnostic(capsys):
    assert main(compile_args("models/gpt.nn", "gpt", "--expand", "net.blok1", "-o", "never.svg")) == 1
    err = capsys.readouterr().err
    assert "error: cannot expand `net.blok1`: gpt has no layer instance of that name" in err
    assert "did you mean `net.block1`?" in err


@pytest.mark.parametrize("path,name", model_variants(), ids=lambda x: x)
def test_every_forward_picture_fits_a_screen_at_default_settings(tmp_path, path, name):
    out = tmp_path / "g.svg"
    assert main(compile_args(path, name, "-o", str(out))) == 0
    width, height = svg_px(out)
    assert width <= FIT[0] == 2000 and height <= FIT[1] == 4000


def test_the_default_is_the_least_collapsed_picture_that_fits():
    iris = nngraph.load("models/iris.nn").compile()
    assert auto_plan(iris).depth == 0                    # small: every node
    assert len(all_nodes(picture(iris, plan=auto_plan(iris))[0])) == drawn_count(iris)
    transformer = nngraph.load("models/transformer.nn").compile()
    plan = auto_plan(transformer)
    assert plan.depth >= 1                                 # too big at full detail


def test_highlight_draws_nodes_edges_and_boxes_in_bold_red(tmp_path):
    graph = nngraph.load("models/iris.nn").compile()
    hot = [n for n in graph.nodes if n.scope == "scores"]
    highlight = {id(n) for n in hot} | {graph.params[-1].uid}
    text = to_dot(graph, highlight=highlight).to_string()
    assert text.count(f'color="{HOT["color"]}"') >= len(hot) + 1 + (len(hot) - 1)   # nodes, a weight, edges
    collapsed = to_dot(graph, collapse=1, highlight=highlight)
    box = next(n for n in all_nodes(collapsed) if n.get_name() == '"layer:scores"')
    assert box.get("color") == HOT["color"]
    assert next(n for n in all_nodes(collapsed) if n.get_name() == '"layer:hidden"').get("color") != HOT["color"]
    write_picture(graph, str(tmp_path / "hot.svg"), highlight=highlight)      # renders


def test_params_give_value_statistics_in_tooltips(tmp_path):
    model = nngraph.load("models/iris.nn")
    weights = tmp_path / "w.npz"
    save_npz(str(weights), model.init(seed=0))
    out = tmp_path / "iris.dot"
    assert main(["compile", "models/iris.nn", "--collapse-depth", "0", "--params", str(weights), "-o", str(out)]) == 0
    b = model.init(seed=0)["hidden.b"]
    assert f"hidden.b: float32[8]\\nmean {b.mean():.4g}  std {b.std():.4g}  min {b.min():.4g}" in out.read_text()
