"""The loop around the train step: the per-epoch log, early stopping, the non-finite guard,
metrics and class names in the result, Model.evaluate, summary and the notebook picture."""
import json

import numpy as np
import pytest

import nngraph
from nngraph.diagnostics import NNError
from nngraph.training.training_log import read_log
from tests.training import tiny


def test_the_log_has_one_record_per_epoch(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    result = model.train(epochs=6, progress=False, log=str(tmp_path / "log.jsonl"))
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6] == [r["epoch"] for r in result.log]
    assert {"loss", "lr", "seconds", "holdout_loss", "holdout_accuracy"} <= set(records[0])
    assert [r["loss"] for r in records] == pytest.approx(result.history)
    assert records[0]["lr"] == pytest.approx(0.05)


def test_the_csv_log_reads_back(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    model.train(epochs=3, progress=False, log=str(tmp_path / "log.csv"))
    header = (tmp_path / "log.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,loss,lr,seconds,holdout_loss,holdout_accuracy")
    assert [r["epoch"] for r in read_log(str(tmp_path / "log.csv"))] == [1, 2, 3]


def test_a_log_is_jsonl_or_csv(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    with pytest.raises(NNError, match="a training log is .jsonl or .csv"):
        model.train(epochs=1, progress=False, log=str(tmp_path / "log.txt"))


def test_a_resumed_log_holds_every_epoch(tmp_path):
    model = nngraph.load(tiny.write(tmp_path))
    model.train(epochs=3, progress=False, checkpoint=str(tmp_path / "ck"))
    model.train(epochs=5, progress=False, resume=str(tmp_path / "ck"), log=str(tmp_path / "log.jsonl"))
    assert [json.loads(x)["epoch"] for x in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5]


def test_the_plain_progress_line_appears_off_a_terminal(tmp_path, capsys):
    model = nngraph.load(tiny.write(tmp_path))
    model.train(epochs=20, progress=None)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("epoch ")]
    assert lines[0].startswith("epoch 2/20: loss ") and lines[-1].startswith("epoch 20/20") and len(lines) == 10


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    # a learning rate far too high makes the held-out loss worse from the start
    model = nngraph.load(tiny.write(tmp_path, "early_stopping = monitor(loss, patience = 2)"))
    result = model.train(epochs=40, lr=5.0, progress=False)
    assert result.stopped_early and "did not improve for 2 epochs" in result.stopped_early
    losses = [r["holdout_loss"] for r in result.log]
    best = int(np.argmin(losses))
    assert len(result.log) == best + 1 + 2 < 40
    assert result.holdout.loss == pytest.approx(losses[best], rel=1e-5)


def test_early_stopping_needs_held_out_rows(tmp_path):
    path = tiny.write(tmp_path, "early_stopping = monitor(accuracy, patience = 2)")
    text = open(path).read().replace("holdout = 0.25", "holdout = 0")
    open(path, "w").write(text)
    with pytest.raises(NNError, match="no rows are held out") as err:
        nngraph.load(path).train(epochs=2, progress=False)
    line, col = tiny.line_col(text, "monitor(")
    assert (err.value.span.line, err.value.span.column) == (line, col)


def test_a_huge_learning_rate_stops_at_the_first_non_finite_node():
    model = nngraph.load("models/squiggle.nn")
    with pytest.raises(NNError) as err:
        model.train(epochs=50, lr=1e6, progress=False)
    e = err.value
    assert e.message.startswith("training stopped: ") and "the first non-finite value comes from `" in e.message
    assert "epoch " in e.message and e.span is not None and e.span.source.path.endswith(".nn")
    source_line = e.span.source.text.splitlines()[e.span.line - 1]
    assert e.span.column >= 1 and len(source_line) >= e.span.column


def test_evaluate_reports_metrics_and_a_per_class_table_by_name(tmp_path):
    model = nngraph.load(tiny.write(tmp_path, "metrics = [accuracy, perplexity]"))
    result = model.train(epochs=30, progress=False)
    assert result.classes["kind"] == tiny.NAMES
    ev = model.evaluate(result.params)
    assert ev.rows == 12 and ev.loss == pytest.approx(result.holdout.loss, rel=1e-5)
    assert ev.metrics["accuracy"] == result.holdout.accuracy
    assert ev.metrics["perplexity"] == pytest.approx(np.exp(ev.loss))
    assert [r["class"] for r in ev.per_class] == tiny.NAMES
    assert sum(r["support"] for r in ev.per_class) == 12
    everything = model.evaluate(result.params, str(tmp_path / "d.csv"))
    assert everything.rows == 48


def test_summary_lists_layers_shapes_and_parameter_counts(tmp_path, capsys):
    text = nngraph.load("models/iris.nn").summary()
    assert capsys.readouterr().out.strip() == text
    rows = {line.split()[0]: line.split() for line in text.splitlines()[3:]}
    assert rows["hidden"][1:] == ["float32[N,", "8]", "40"] and rows["scores"][-1] == "27"
    assert text.splitlines()[-1].split() == ["total", "67"]


def test_a_model_draws_itself_in_a_notebook():
    svg = nngraph.load("models/iris.nn")._repr_svg_()
    assert svg is None or svg.lstrip().startswith(("<?xml", "<svg"))


def test_the_progress_bar_stays_with_loss_and_metrics(tmp_path, capsys):
    model = nngraph.load(tiny.write(tmp_path))
    model.train(epochs=5, progress=True)
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "5/5" in last and "loss=" in last and "holdout_accuracy=" in last


def test_run_computes_only_the_requested_outputs():
    model = nngraph.load("models/iris.nn")
    graph = model.inference_graph(["probs"])
    assert list(graph.outputs) == ["probs"] and "argmax" not in {n.op for n in graph.nodes}
    out = model.run(None, {"x": np.ones((2, 4))}, ["species"])
    assert list(out) == ["species"]
    seq2seq = nngraph.load("models/seq2seq.nn", "seq2seq")
    assert [v.name for v in seq2seq.inference_graph().inputs] == ["english"]
    assert [v.name for v in seq2seq.graph.inputs if v.name not in seq2seq.graph.targets] == ["english", "spanish_in"]
