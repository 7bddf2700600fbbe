"""Metrics: hand-computed values, ignored labels, the per-class table, and the train block's
`metrics`, `ignore_label` and `early_stopping` settings with their diagnostics."""
import math

import numpy as np
import pytest

import nngraph
from nngraph.diagnostics import NNError
from nngraph.training import metrics
from tests.training import tiny


def test_accuracy_skips_the_ignored_label():
    true = np.array([[5, 6, 2, 0, 0], [7, 2, 0, 0, 0]])
    pred = np.array([[5, 9, 2, 0, 0], [7, 2, 4, 4, 4]])
    assert metrics.accuracy(pred, true) == pytest.approx(6 / 10)            # padding counted: 6 of 10
    assert metrics.accuracy(pred, true, ignore_label=0) == pytest.approx(4 / 5)   # real tokens: 4 of 5
    assert metrics.sequence_accuracy(pred, true, ignore_label=0) == 0.5
    assert metrics.sequence_accuracy(pred, true) == 0.0


def test_per_class_precision_recall_f1():
    true = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 2, 2])
    rows = {r["class"]: r for r in metrics.per_class(pred, true, ["a", "b", "c"])}
    assert rows["a"]["precision"] == 1.0 and rows["a"]["recall"] == 0.5
    assert rows["b"]["precision"] == pytest.approx(2 / 3) and rows["b"]["recall"] == pytest.approx(2 / 3)
    assert rows["c"]["precision"] == 0.5 and rows["c"]["recall"] == 1.0
    assert rows["c"]["f1"] == pytest.approx(2 * 0.5 / 1.5) and rows["b"]["support"] == 3
    table = metrics.format_table(list(rows.values()))
    assert table.splitlines()[1].startswith("a ") and "50.0%" in table


def test_per_class_leaves_out_the_ignored_label():
    rows = metrics.per_class(np.array([1, 2, 0]), np.array([1, 2, 0]), ignore_label=0)
    assert [r["class"] for r in rows] == ["1", "2"]


def test_perplexity_and_bits_read_the_loss(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    values = metrics.compute(["perplexity", "bits_per_char"], model.graph, {}, {}, loss=math.log(4))
    assert values["perplexity"] == pytest.approx(4.0) and values["bits_per_char"] == pytest.approx(2.0)


def test_train_block_settings_are_parsed(tmp_path):
    path = tiny.write(tmp_path, "metrics = [accuracy, perplexity]\n    ignore_label = 2\n"
                                "    early_stopping = monitor(accuracy, patience = 3)")
    config = nngraph.load(path).train_config
    assert config.metrics == ["accuracy", "perplexity"] and config.ignore_label == 2
    assert (config.early_stopping.metric, config.early_stopping.patience) == ("accuracy", 3)


@pytest.mark.parametrize("setting,needle,message", [
    ("metrics = [acuracy]", "acuracy", "unknown metric `acuracy`"),
    ("metrics = [accuracy, 3]", "3]", "`metrics` is a list of metric names"),
    ("ignore_label = 0.5", "0.5", "`ignore_label` must be an integer"),
    ("early_stopping = 5", "5", "`early_stopping` takes monitor(METRIC, patience = N)"),
    ("early_stopping = monitor(accuracy, patience = 0)", "0)", "`patience` must be an integer >= 1"),
    ("early_stopping = monitor(accuracy, wait = 2)", "wait", "monitor(...) has no setting `wait`"),
])
def test_setting_diagnostics_point_at_the_value(tmp_path, setting, needle, message):
    path = tiny.write(tmp_path, setting)
    with pytest.raises(NNError) as err:
        nngraph.load(path)
    text = open(path).read()
    line, col = tiny.line_col(text, setting)
    col += setting.index(needle)
    assert message in err.value.message
    assert (err.value.span.line, err.value.span.column) == (line, col)


def test_a_metric_needing_labels_on_a_regression_model_is_an_error():
    model = nngraph.load("models/squiggle.nn")
    with pytest.raises(NNError, match="needs a predicted label"):
        metrics.check(["accuracy"], model.graph)
