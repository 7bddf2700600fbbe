"""The training and evaluation commands end to end: train (log, checkpoints, resume, the guard,
the weights' class names), eval, run (class names, .csv/.npy/.npz inputs, only the inputs the
outputs read), plot, check on every model, model choice, --version, help text, file modes."""
import argparse
import json
import os
import sys

import numpy as np
import pytest

from nngraph.cli import build_parser, main
from nngraph.files import load_weights
from tests.training import tiny


@pytest.fixture
def model(tmp_path):
    return tiny.write(tmp_path)


def test_train_saves_class_names_that_run_and_eval_print(tmp_path, model, capsys):
    weights = str(tmp_path / "w.npz")
    assert main(["train", model, "--epochs", "30", "-o", weights]) == 0
    params, meta = load_weights(weights)
    assert meta == {"model": "clf", "classes": {"kind": tiny.NAMES}} and "scores.w" in params
    with np.load(weights, allow_pickle=False) as archive:      # no pickle needed to read it
        assert "__nngraph_meta__" in archive.files
    capsys.readouterr()
    assert main(["run", model, "--params", weights]) == 0
    out = capsys.readouterr().out
    assert "label: int64[48]" in out and "'cat'" in out and "'dog'" in out
    assert main(["eval", model, "--params", weights]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("model clf on 12 rows (held-out rows): loss ") and "accuracy" in out[0]
    assert out[1].split() == ["class", "precision", "recall", "f1", "support"]
    assert [line.split()[0] for line in out[2:]] == tiny.NAMES


def test_eval_json_on_other_data(tmp_path, model, capsys):
    weights = str(tmp_path / "w.npz")
    main(["train", model, "--epochs", "5", "-o", weights])
    capsys.readouterr()
    assert main(["eval", model, "--params", weights, "--data", str(tmp_path / "d.csv"), "--json",
                 "--metric", "accuracy", "--metric", "perplexity"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 48 and set(result) >= {"loss", "accuracy", "perplexity", "per_class"}


def test_eval_of_a_missing_column_is_a_diagnostic(tmp_path, model, capsys):
    weights = str(tmp_path / "w.npz")
    main(["train", model, "--epochs", "1", "-o", weights])
    (tmp_path / "other.csv").write_text("a,c,kind\n1,2,cat\n")
    capsys.readouterr()
    assert main(["eval", model, "--params", weights, "--data", str(tmp_path / "other.csv")]) == 1
    assert "has no column `b`" in capsys.readouterr().err


def test_log_checkpoint_resume_and_plot(tmp_path, model, capsys):
    ck, log = str(tmp_path / "ck"), str(tmp_path / "log.jsonl")
    assert main(["train", model, "--epochs", "4", "--checkpoint", ck, "--checkpoint-every", "2", "--log", log]) == 0
    assert sorted(os.listdir(ck)) == ["epoch-00002.npz", "epoch-00004.npz"]
    assert main(["train", model, "--epochs", "6", "--resume", ck, "--log", log, "-o", str(tmp_path / "w.npz")]) == 0
    assert "for 6 epochs" in capsys.readouterr().out
    assert [json.loads(x)["epoch"] for x in open(log)] == [1, 2, 3, 4, 5, 6]
    for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml")):
        picture = str(tmp_path / f"curve{suffix}")
        assert main(["plot", log, "-o", picture]) == 0
        assert open(picture, "rb").read(5).startswith(magic)


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, model, capsys, monkeypatch):
    log = str(tmp_path / "log.csv")
    main(["train", model, "--epochs", "2", "--log", log])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    capsys.readouterr()
    assert main(["plot", log, "-o", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert "plot needs matplotlib" in err and "pip install 'nngraph[plot]'" in err
    assert not (tmp_path / "c.png").exists()


def test_plot_of_a_file_that_is_no_log(tmp_path, capsys):
    (tmp_path / "x.jsonl").write_text('{"a": 1}\n[2]\n')
    assert main(["plot", str(tmp_path / "x.jsonl"), "-o", str(tmp_path / "c.png")]) == 1
    assert "x.jsonl:2: a record is a JSON object" in capsys.readouterr().err


def test_a_non_finite_step_exits_1_and_keeps_good_weights(tmp_path, capsys):
    weights, ck = tmp_path / "w.npz", tmp_path / "ck"
    weights.write_bytes(b"good weights")
    code = main(["train", "models/squiggle.nn", "--lr", "1e6", "--epochs", "50", "-o", str(weights),
                 "--checkpoint", str(ck)])
    err = capsys.readouterr().err
    assert code == 1 and weights.read_bytes() == b"good weights"
    first = err.splitlines()[0]
    assert ".nn:" in first and ": error: training stopped: " in first and "non-finite value comes from `" in first
    saved = sorted(os.listdir(ck))
    from nngraph.training.checkpoint import load_checkpoint
    last = load_checkpoint(str(ck))
    assert saved and all(np.isfinite(v).all() for v in last.params.values())


def test_run_reads_csv_npy_and_npz_inputs(tmp_path, model, capsys):
    x = np.array([[0.0, 2.0], [2.0, 0.0]])
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", x=x)
    (tmp_path / "x.csv").write_text("a,b\n0,2\n2,0\n")
    (tmp_path / "plain.csv").write_text("0,2\n2,0\n")
    outputs = []
    for spec in ("x=x.npy", "x=x.npz", "x=x.npz:x", "x.npz", "x=x.csv", "x=plain.csv"):
        name, _, path = spec.rpartition("=")
        argument = f"{name}={tmp_path / path}" if name else str(tmp_path / path)
        assert main(["run", model, "--input", argument, "-o", str(tmp_path / "o.npz")]) == 0, spec
        with np.load(tmp_path / "o.npz") as out:
            outputs.append(out["label"])
    assert all(np.array_equal(o, outputs[0]) for o in outputs) and outputs[0].shape == (2,)
    capsys.readouterr()


def test_run_input_diagnostics(tmp_path, model, capsys):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    assert main(["run", model, "--input", f"x={tmp_path / 'bad.csv'}"]) == 1
    assert "bad.csv row 3, column 2: `oops` is not a number" in capsys.readouterr().err
    (tmp_path / "wide.csv").write_text("1,2,3\n")
    assert main(["run", model, "--input", f"x={tmp_path / 'wide.csv'}"]) == 1
    assert "has 3 column(s) per row, but `x` is" in capsys.readouterr().err


def test_run_needs_only_the_inputs_the_outputs_read(tmp_path, capsys):
    source = np.full((2, 20), 3, np.int64)
    np.save(tmp_path / "source.npy", source)
    for path, name in (("models/seq2seq.nn", "seq2seq_copy"), ("models/seq2seq_attention.nn", None),
                       ("models/transformer.nn", None)):
        argv = ["run", path, "--input", f"source={tmp_path / 'source.npy'}", "--output-name", "copy"]
        assert main(argv + (["--model-name", name] if name else [])) == 0, path
        assert "copy: int64[2, 21]" in capsys.readouterr().out


def test_run_unknown_output_name(model, capsys):
    assert main(["run", model, "--output-name", "lable"]) == 1
    err = capsys.readouterr().err
    assert "has no output `lable`" in err and "label" in err


def test_several_models_take_the_one_with_a_train_block(capsys):
    assert main(["check", "models/activations.nn"]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("model ")] \
        == ["relu", "sigmoid", "tanh"]
    assert main(["run", "models/activations.nn"]) == 1
    err = capsys.readouterr().err
    assert "defines 3 models (relu, sigmoid, tanh)" in err and "--model-name" in err and "choices: relu, sigmoid, tanh" in err


def test_the_one_trained_model_of_a_file_is_chosen(tmp_path, capsys):
    path = tmp_path / "two.nn"
    path.write_text(open(tiny.write(tmp_path)).read() + "\nmodel other {\n    input x: [N, 2]\n    output y = x\n}\n")
    assert main(["check", str(path)]) == 0
    capsys.readouterr()
    assert main(["train", str(path), "--epochs", "1"]) == 0
    assert capsys.readouterr().out.startswith("model clf:")


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("nngraph ")


def test_every_flag_of_every_command_has_help():
    missing = []
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {a.dest}" for a in sub._actions
                            if not a.help and not isinstance(a, argparse._HelpAction)]
        elif not action.help:
            missing.append(action.dest)
    assert not missing


def test_written_files_follow_the_umask(tmp_path, model):
    old = os.umask(0o022)
    try:
        main(["train", model, "--epochs", "1", "-o", str(tmp_path / "w.npz")])
        assert os.stat(tmp_path / "w.npz").st_mode & 0o777 == 0o644
        os.umask(0o077)
        main(["train", model, "--epochs", "1", "-o", str(tmp_path / "v.npz")])
        assert os.stat(tmp_path / "v.npz").st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
