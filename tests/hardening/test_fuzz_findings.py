"""Mutants that bench/fuzz.py found ending in a traceback, each reduced to a few lines: now a
diagnostic that says what is wrong and where (the seed that found it in the comment)."""
import numpy as np

from tests.hardening.helpers import diagnostic, where


def test_cross_entropy_of_a_number(tmp_path):
    # nn seed 2018106 (seq2seq.nn): `cross_entropy(2, spanish)` reached `logits.shape[-1]` of a scalar
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 3]\n    target y: [N] int\n"
                               "    p = dense[3](x)\n    loss = cross_entropy(2, y)\n}\n")
    assert err.message == "the logits need an axis of classes, got a scalar float32[]"
    assert err.span.source.path.endswith("losses.nn")           # inside the standard library's layer...
    (note, span), = err.notes
    assert note == "in layer `cross_entropy` called here"       # ...called from the user's line
    assert (span.line, span.column) == (5, 12)


def test_a_carry_named_twice(tmp_path):
    # nn seed 2043959 (seq2seq_attention.nn): `carry (word = ..., word = ...)` reached the scan op's
    # "the scan body must return every carry" as an internal error
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n"
                               "    s = scan t in x carry (h = zeros[2], h = zeros[2]) {\n        h = h + t\n    }\n"
                               "    output y = s\n}\n")
    assert err.message == "`h` is named twice among this scan's carries and sequences"
    assert where(err) == (3, 42)
    (note, span), = err.notes
    assert (note, span.line, span.column) == ("first named here", 3, 28)


def test_a_sequence_named_like_a_carry(tmp_path):
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n"
                               "    s = scan h in x carry (h = zeros[2]) {\n        h = h + 1\n    }\n"
                               "    output y = s\n}\n")
    assert err.message == "`h` is named twice among this scan's carries and sequences"
    assert where(err) == (3, 14)


def test_loss_assigned_inside_a_scan_body(tmp_path):
    # nn seed 2037693 (transformer.nn): `loss = ...` in a scan body marked a value of the body's own
    # graph as the model's loss, and `check` failed with a KeyError. In a body it is one step's name.
    import nngraph
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N, 2]\n"
                    "    s = scan t in x carry (h = zeros[2]) {\n        loss = sum(t)\n        h = h + loss\n    }\n"
                    "    output y = s\n}\n")
    model = nngraph.load(str(path))
    assert model.graph.loss is None and list(model.graph.outputs) == ["y"]
    assert len(model.inference_graph().nodes) > 0


def test_a_power_too_big_to_compute(tmp_path):
    # nn seed 2058044 (cnn_xo.nn): `r = 2 ** 100000100000100000` ran out of memory computing the integer
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n    r = 2 ** 100000100000100000\n    output y = x\n}\n")
    assert err.message == ("cannot compute 2 ** 100000100000100000: the result does not fit in 64 bits "
                           "(the largest integer is 9223372036854775807)")
    assert where(err) == (3, 9)


def test_integers_computed_at_compile_time_stay_in_64_bits(tmp_path):
    # a statement repeated by the fuzzer, `a = a * a`, doubles the digits each time
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n    a = 4294967296\n    a = a * a\n    output y = x\n}\n")
    assert err.message.startswith("cannot compute a * a: the result does not fit in 64 bits")
    assert where(err) == (4, 9)


def test_small_powers_still_compute(tmp_path):
    import nngraph
    path = tmp_path / "m.nn"
    path.write_text("model m {\n    input x: [N, 2]\n    output y = x * (2 ** 62 - 1 + 2 ** 62) * 0 + (-2) ** 63\n}\n")
    y = nngraph.load(str(path)).run(inputs={"x": np.ones((1, 2), np.float32)})["y"]
    assert y.tolist() == [[-(2.0**63)] * 2]      # the smallest int64 is one more than the largest, negated


def test_a_tensor_inside_a_list_beside_a_number(tmp_path):
    # nn seed 7015786 (seq2seq.nn): `where(c, 1.0, [[done]])` handed the list holding a tensor to NumPy
    err = diagnostic(tmp_path, "model m {\n    input x: [N, 2]\n"
                               "    output y = where(x > 0, 1.0, [[x]])\n}\n")
    assert err.message.startswith("expected a tensor or a number, got the list [[%x")
    assert where(err) == (3, 16)
