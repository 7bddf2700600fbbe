"""Data loaders name the file, the row and the column of what is wrong with the data."""
import numpy as np
import pytest

import nngraph
from nngraph.training.data import check_holdout

REGRESSION = ("model m {\n    input x: [N]\n    target t: [N]\n    output y = x\n    loss = mean((x - t) ** 2)\n}\n"
              "train m {\n    data = %s\n}\n")
CLASSIFIER = ("model m {\n    input x: [N, 2]\n    target label: [N] int\n    param w: [2, 3] ~ glorot\n"
              "    scores = x @ w\n    output y = softmax(scores)\n    loss = cross_entropy(scores, label)\n}\n"
              "train m {\n    data = %s\n}\n")


def data_error(tmp_path, template, data_name, content, source=None) -> nngraph.NNError:
    data = tmp_path / data_name
    data.write_bytes(content) if isinstance(content, bytes) else data.write_text(content)
    model = tmp_path / "m.nn"
    model.write_text(template % (source or f'csv("{data_name}")'))
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(model)).load_data()
    err = info.value
    assert err.span is not None and (err.span.line, err.span.column) == (template.count("\n", 0, template.index("%s"))
                                                                         + 1, 12)
    return err


def test_ragged_csv(tmp_path):
    err = data_error(tmp_path, REGRESSION, "d.csv", "x,t\n1,2\n3\n4,5\n")
    assert err.message == f"{tmp_path}/d.csv, line 3: 1 fields, but the header has 2"


def test_binary_csv(tmp_path):
    err = data_error(tmp_path, REGRESSION, "d.csv", b"x,t\n1,2\n\xff\xfe\x00\x01")
    assert err.message == f"{tmp_path}/d.csv is not a text CSV file (byte 8 is not UTF-8)"


def test_nul_bytes_in_csv(tmp_path):
    err = data_error(tmp_path, REGRESSION, "d.csv", "x,t\n1,2\n3,\x004\n")
    assert err.message == (f"column t of {tmp_path}/d.csv holds words, but `t` is float32: "
                           "row 2, column `t` is '\\x004'")


def test_nan_in_csv(tmp_path):
    err = data_error(tmp_path, REGRESSION, "d.csv", "x,t\n1,2\n3,nan\n")
    assert err.message == f"{tmp_path}/d.csv: row 2, column `t` (for `t`) is nan"


def test_nan_in_npz(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([1.0, np.inf, 3.0]), t=np.zeros(3))
    model = tmp_path / "m.nn"
    model.write_text(REGRESSION % 'npz("d.npz")')
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(model)).load_data()
    assert info.value.message == f"{tmp_path}/d.npz: row 2, array `x` (for `x`) is inf"
    assert (info.value.span.line, info.value.span.column) == (8, 12)


def test_fractional_label(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n1,2,0\n3,4,1.5\n")
    (tmp_path / "m.nn").write_text(CLASSIFIER % 'csv("d.csv", x = ["a", "b"])')
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(tmp_path / "m.nn")).load_data()
    assert info.value.message == f"{data}: row 2, column `label` is 1.5, but `label` is int64"


def test_label_out_of_range(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n1,2,0\n3,4,2\n5,6,3\n")
    (tmp_path / "m.nn").write_text(CLASSIFIER % 'csv("d.csv", x = ["a", "b"])')
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(tmp_path / "m.nn")).load_data()
    err = info.value
    assert err.message == f"{data}: row 3 of `label` is 3, outside 0..2"
    assert (err.span.line, err.span.column) == (10, 12)


def test_negative_label(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n1,2,-1\n")
    (tmp_path / "m.nn").write_text(CLASSIFIER % 'csv("d.csv", x = ["a", "b"])')
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(tmp_path / "m.nn")).load_data()
    assert info.value.message == f"{data}: row 1 of `label` is -1, outside 0..2"


def test_holdout_that_leaves_no_training_rows():
    with pytest.raises(nngraph.NNError) as info:
        check_holdout(1, 0.5)
    assert info.value.message == "holdout = 0.5 of 1 row(s) keeps 1 for evaluation and leaves none for training"
    assert check_holdout(10, 0.2) == 2 and check_holdout(10, 0.0) == 0


def test_training_with_such_a_holdout_is_a_diagnostic(tmp_path):
    (tmp_path / "d.csv").write_text("x,t\n1,2\n")
    (tmp_path / "m.nn").write_text(REGRESSION.replace("data = %s", "data = %s\n    holdout = 0.5\n    epochs = 1")
                                   % 'csv("d.csv")')
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(tmp_path / "m.nn")).train()
    assert info.value.message == "holdout = 0.5 of 1 row(s) keeps 1 for evaluation and leaves none for training"
