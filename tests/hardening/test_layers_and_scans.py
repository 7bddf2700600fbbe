"""A layer that calls itself, a tuple assigned to a scan carry: diagnostics at the right line."""
from tests.hardening.helpers import diagnostic, where


def test_layer_that_calls_itself(tmp_path):
    err = diagnostic(tmp_path, "layer rec(x) {\n    return rec(x)\n}\nmodel m {\n    input x: [N, 2]\n"
                               "    output y = rec(x)\n}\n")
    assert err.message == "layer `rec` calls itself (rec -> rec), which never ends"
    assert where(err) == (2, 12)
    assert "scan" in err.hint


def test_layers_that_call_each_other(tmp_path):
    err = diagnostic(tmp_path, "layer a1(x) {\n    return b1(x)\n}\nlayer b1(x) {\n    return a1(x)\n}\n"
                               "model m {\n    input x: [N, 2]\n    output y = a1(x)\n}\n")
    assert err.message == "layer `a1` calls itself (a1 -> b1 -> a1), which never ends"
    assert where(err) == (5, 12)
    assert len(err.notes) <= 8


def test_the_same_layer_nested_through_arguments_is_fine(tmp_path):
    import nngraph
    path = tmp_path / "m.nn"
    path.write_text("layer twice[f: fn](x) {\n    return f(f(x))\n}\nmodel m {\n    input x: [N, 2]\n"
                    "    output y = twice[twice[tanh]](x)\n}\n")
    assert [n.op for n in nngraph.load(str(path)).graph.nodes] == ["tanh"] * 4


def test_tuple_assigned_to_a_scan_carry(tmp_path):
    err = diagnostic(tmp_path, "model m {\n    input xs: [T, N, 2]\n    hs = scan x in xs carry (h = xs[0]) {\n"
                               "        h = (x, x)\n        yield x\n    }\n    output y = hs\n}\n")
    assert err.message == "the carry `h` must stay a tensor, but the scan body makes it a tuple of 2 values"
    assert where(err) == (4, 9)


def test_tuple_as_a_carry_start(tmp_path):
    err = diagnostic(tmp_path, "model m {\n    input xs: [T, N, 2]\n    hs = scan x in xs carry (h = (xs, xs)) {\n"
                               "        h = tanh(x)\n        yield h\n    }\n    output y = hs\n}\n")
    assert err.message == "the initial value of the carry `h` must be a tensor, got a tuple of 2 values"
    assert where(err) == (3, 34)


def test_graph_size_limit(tmp_path, monkeypatch):
    """bench/fuzz.py seed 408624: 10,000 transformer calls built a graph of several GB."""
    from nngraph.dsl.elaborate import core
    monkeypatch.setattr(core, "MAX_NODES", 10)
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n" + "    x = tanh(x)\n" * 12 + "    output y = x\n}\n")
    assert err.message == "this model builds more than 10 nodes"
    assert where(err) == (13, 9)
