"""What made elaboration quadratic, fixed without changing results (the times: bench/elaborate_scaling.py)."""
from nngraph.diagnostics import SourceFile
from nngraph.ir import Graph


def test_fresh_names_are_the_smallest_free_number():
    g = Graph()
    assert [g.fresh_name("tanh") for _ in range(3)] == ["tanh", "tanh.1", "tanh.2"]
    assert g.fresh_name("tanh.4") == "tanh.4"          # taken out of turn ...
    assert [g.fresh_name("tanh") for _ in range(2)] == ["tanh.3", "tanh.5"]    # ... and skipped
    clone, _ = g.clone()
    assert clone.fresh_name("tanh") == "tanh.6"
    assert g.fresh_name("") == "v"


def test_source_lines_are_split_once_and_stay_right():
    source = SourceFile("m.nn", "a\nbb\n\nccc")
    assert [source.line(i) for i in range(0, 6)] == ["", "a", "bb", "", "ccc", ""]
    assert source._lines is source._lines
