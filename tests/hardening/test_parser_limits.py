"""Deep nesting, long expressions, integers beyond int64: diagnostics, never a RecursionError."""
import pytest

from nngraph.dsl.parser import MAX_NESTING
from tests.hardening.helpers import diagnostic, where

NESTED = {
    "parentheses": lambda n: "(" * n + "x" + ")" * n,
    "unary-minus": lambda n: "-" * n + "x",
    "long-sum": lambda n: " + ".join(["x"] * n),
    "calls": lambda n: "tanh(" * n + "x" + ")" * n,
    "lists": lambda n: "[" * n + "x" + "]" * n,
}


@pytest.mark.parametrize("kind", sorted(NESTED))
@pytest.mark.parametrize("depth", [1_000, 10_000])
def test_deep_nesting_is_a_diagnostic(tmp_path, kind, depth):
    source = "model m {\n    input x: [N, 2]\n    output y = " + NESTED[kind](depth) + "\n}\n"
    err = diagnostic(tmp_path, source)
    assert err.message == f"this expression nests more than {MAX_NESTING} levels deep"
    line, column = where(err)
    assert line == 3 and column > 16
    assert "split it over several statements" in err.hint


def test_nesting_under_the_limit_still_works(tmp_path):
    import nngraph
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N, 2]\n    output y = " + NESTED["calls"](100) + "\n}\n")
    assert len(nngraph.load(str(path)).graph.nodes) == 100


def test_integer_beyond_int64(tmp_path):
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 99999999999999999999]\n    output y = x\n}\n")
    assert err.message == ("the integer 99999999999999999999 does not fit in 64 bits "
                           "(the largest is 9223372036854775807)")
    assert where(err) == (2, 18)


def test_a_thousand_digit_integer_is_not_converted(tmp_path):
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n    output y = x * " + "9" * 5000 + "\n}\n")
    assert err.message.startswith("the integer 999999999999999999999999999999... does not fit in 64 bits")
    assert where(err) == (3, 20)


def test_float_too_large(tmp_path):
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n    output y = x * 1e400\n}\n")
    assert err.message == "the number 1e400 is too large for a float"
    assert where(err) == (3, 20)


def test_shape_beyond_int64_elements(tmp_path):
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 4294967296 * 4294967296]\n    output y = x\n}\n")
    assert err.message == "this shape has more than 9223372036854775807 elements: sizes must fit in 64 bits"
    assert where(err) == (2, 18)
