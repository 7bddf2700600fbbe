"""Imports and data files stay inside the model's folder tree unless allowed; reads are bounded;
a file that is not a model is never printed."""
import os

import pytest

import nngraph
from nngraph.dsl import loader
from tests.fuzz.mutations import run_cli
from tests.hardening.helpers import where

MODEL = "model m {\n    input x: [N, 2]\n    output y = x\n}\n"
TRAIN = "model m {\n    input x: [N]\n    target t: [N]\n    output y = x\n    loss = mean((x - t) ** 2)\n}\n" \
        "train m {\n    data = csv(\"%s\")\n}\n"


@pytest.fixture
def folders(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "lib.nn").write_text("layer twice(x) {\n    return x * 2\n}\n")
    (tmp_path / "elsewhere" / "d.csv").write_text("x,t\n1,2\n")
    return tmp_path / "project", tmp_path / "elsewhere"


def load_err(path):
    with pytest.raises(nngraph.NNError) as info:
        nngraph.load(str(path))
    return info.value


def test_import_outside_the_model_folder_is_refused(folders):
    project, elsewhere = folders
    (project / "m.nn").write_text('import "../elsewhere/lib.nn"\n' + MODEL)
    err = load_err(project / "m.nn")
    assert err.message == f"the import `{project}/../elsewhere/lib.nn` is outside the model's folder `{project}`"
    assert where(err) == (1, 1)
    assert "--allow-path" in err.hint


def test_absolute_import_is_refused(folders):
    project, _ = folders
    (project / "m.nn").write_text('import "/etc/passwd"\n' + MODEL)
    err = load_err(project / "m.nn")
    assert err.message == f"the import `/etc/passwd` is outside the model's folder `{project}`"
    assert where(err) == (1, 1)


def test_data_file_outside_the_model_folder_is_refused(folders):
    project, elsewhere = folders
    (project / "m.nn").write_text(TRAIN % "../elsewhere/d.csv")
    err = load_err(project / "m.nn")
    assert err.message == f"the data file `{project}/../elsewhere/d.csv` is outside the model's folder `{project}`"
    assert where(err) == (8, 16)


def test_allow_path_flag_lets_a_folder_in(folders):
    project, elsewhere = folders
    (project / "m.nn").write_text('import "../elsewhere/lib.nn"\n' + TRAIN % "../elsewhere/d.csv")
    assert run_cli(["check", str(project / "m.nn")])[0] == 1
    code, err = run_cli(["--allow-path", str(elsewhere), "check", str(project / "m.nn")])
    assert (code, err) == (0, "")
    assert loader._allowed_by_caller == []        # only for that command


def test_allow_path_environment_variable(folders, monkeypatch):
    project, elsewhere = folders
    (project / "m.nn").write_text('import "../elsewhere/lib.nn"\n' + MODEL)
    monkeypatch.setenv("NNGRAPH_ALLOW_PATH", str(elsewhere))
    assert nngraph.load(str(project / "m.nn")).name == "m"


def test_import_of_a_file_that_is_not_a_model(folders):
    project, _ = folders
    (project / "secret.txt").write_text("password = hunter2\n")
    (project / "m.nn").write_text('import "secret.txt"\n' + MODEL)
    err = load_err(project / "m.nn")
    assert err.message == "`import` takes a .nn file, got `secret.txt`"
    assert where(err) == (1, 1)


def test_a_top_level_file_that_is_not_a_model_is_never_printed(tmp_path):
    (tmp_path / "notes.txt").write_text("password = hunter2 ]\n")
    code, err = run_cli(["check", str(tmp_path / "notes.txt")])
    assert code == 1
    assert "hunter2" not in err and "password" not in err
    assert f"{tmp_path}/notes.txt is not a .nn model file: it does not parse (line 1, column 1)" in err


def test_reading_dev_zero_is_bounded(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    code, err = run_cli(["check", "/dev/zero"])
    assert code == 1
    assert err.strip() == f"error: /dev/zero is larger than {loader.MAX_SOURCE_BYTES // 2**20} MiB: not a .nn model file"


def test_binary_model_file(tmp_path):
    (tmp_path / "m.nn").write_bytes(b"model m {\xff\xfe}")
    err = load_err(tmp_path / "m.nn")
    assert err.message == f"cannot read {tmp_path}/m.nn: not UTF-8 text (byte 9)"


def test_a_data_file_that_is_a_device_is_not_read(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    (tmp_path / "z.csv").symlink_to("/dev/zero")
    (tmp_path / "m.nn").write_text(TRAIN % "z.csv")
    code, err = run_cli(["check", str(tmp_path / "m.nn")])
    assert code == 1 and f"m.nn:8:16: error: the data file `{tmp_path}/z.csv` is outside the model's folder" in err
    code, err = run_cli(["--allow-path", "/dev", "train", str(tmp_path / "m.nn")])
    assert code == 1 and f"m.nn:8:12: error: data file {tmp_path}/z.csv is not a regular file" in err


def test_an_onnx_file_that_is_a_device_is_not_read(tmp_path):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    (tmp_path / "z.onnx").symlink_to("/dev/zero")
    code, err = run_cli(["check", str(tmp_path / "z.onnx")])
    assert (code, err.strip()) == (1, f"error: {tmp_path}/z.onnx is not a regular file, so not an ONNX model")
